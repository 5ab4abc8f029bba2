"""Probabilistic graphical models of the starmix models, drawn with daft (daft-pgm)."""

import matplotlib

matplotlib.use("Agg")

import daft  # noqa: E402


def outlier_line_pgm():
    """PGM of the outlier-line mixture; returns the matplotlib figure."""
    pgm = daft.PGM(dpi=150)
    pgm.add_node("m", r"$m$", 0.5, 3.0)
    pgm.add_node("b", r"$b$", 1.5, 3.0)
    pgm.add_node("w", r"$w$", 2.5, 3.0)
    pgm.add_node("s_out", r"$\sigma_\mathrm{out}$", 3.5, 3.0)
    pgm.add_node("x", r"$x_n$", 0.5, 1.9, fixed=True)
    pgm.add_node("y_hat", r"$\hat{y}_n$", 1.5, 1.9)
    pgm.add_node("sigma_y", r"$\sigma_{y,n}$", 3.5, 1.9, fixed=True)
    pgm.add_node("y", r"$y_n$", 2.5, 1.0, observed=True)
    for parent, child in [
        ("m", "y_hat"),
        ("b", "y_hat"),
        ("x", "y_hat"),
        ("y_hat", "y"),
        ("w", "y"),
        ("s_out", "y"),
        ("sigma_y", "y"),
    ]:
        pgm.add_edge(parent, child)
    pgm.add_plate([0.1, 0.5, 3.8, 1.9], label=r"$n = 1, \ldots, N$", shift=-0.1)
    pgm.render()
    return pgm.figure
