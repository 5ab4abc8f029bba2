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


def cluster_pgm(model, gaussian_field: bool = True):
    """PGM of a cluster-vs-field mixture: weights, cluster and field parameters, and per
    star the observation with its fixed error (co)variance; plates over stars and over the
    K field components (``gaussian_field=False``: the parallax model's one field density
    with its length scale L). ``model``: a :class:`models.ClusterModel`, whose labels
    are drawn."""
    cluster_label, data_label, error_label = model.pgm_labels
    gaussian_field = gaussian_field or model.name != "parallax"
    field_label = r"$m_k, \Sigma_k$" if gaussian_field else r"$L$"
    pgm = daft.PGM(dpi=150)
    pgm.add_node("w", r"$w$", 1.0, 3.0)
    pgm.add_node("cluster", cluster_label, 2.4, 3.0, scale=1.6, aspect=1.6)
    pgm.add_node("field", field_label, 4.2, 3.0, scale=1.3, aspect=1.2)
    pgm.add_node("data", data_label, 2.4, 1.2, observed=True, scale=1.6, aspect=1.6)
    pgm.add_node("error", error_label, 4.0, 1.2, fixed=True)
    for parent in ("w", "cluster", "field", "error"):
        pgm.add_edge(parent, "data")
    pgm.add_plate([0.4, 0.4, 4.3, 1.5], label=r"stars $i = 1, \ldots, N$", shift=-0.1)
    if gaussian_field:
        pgm.add_plate([3.5, 2.4, 1.4, 1.2], label=r"$k = 1..K$", shift=-0.1)
    pgm.render()
    return pgm.figure
