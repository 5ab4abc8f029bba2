"""The corner plot, read through matplotlib's objects (not pixels): its grid, axis labels
with units, 16/50/84 percentile titles and truth lines."""

import numpy as np
import pytest
import xarray as xr
from matplotlib.colors import to_rgba

from starmix.workflows.plots import common as plots


@pytest.fixture
def idata():
    rng = np.random.default_rng(3)
    chains, draws = 2, 2000
    pm = np.stack([rng.normal(-2.9, 0.01, (chains, draws)),
                   rng.normal(-3.85, 0.02, (chains, draws))], -1)
    w = rng.dirichlet([30, 70], (chains, draws))
    posterior = xr.Dataset(
        {"cluster_pm": (("chain", "draw", "axis"), pm),
         "cluster_pm_dispersion": (("chain", "draw"), rng.normal(0.1, 0.005, (chains, draws))),
         "w": (("chain", "draw", "component"), w)},
        coords={"axis": ["pmra", "pmdec"], "component": ["cluster", "field_1"]})
    return xr.DataTree.from_dict({"posterior": posterior})


def test_posterior_columns_name_each_coordinate_and_select_the_component(idata):
    samples, names = plots.posterior_columns(
        idata, ["cluster_pm", "cluster_pm_dispersion", "w"], {"component": "cluster"})
    assert names == ["cluster_pm[pmra]", "cluster_pm[pmdec]", "cluster_pm_dispersion",
                     "w[cluster]"]
    assert samples.shape == (4000, 4)
    post = idata["posterior"]
    np.testing.assert_array_equal(samples[:, 1],
                                  post["cluster_pm"].sel(axis="pmdec").values.ravel())
    np.testing.assert_array_equal(samples[:, 3],
                                  post["w"].sel(component="cluster").values.ravel())


def test_axis_labels_carry_units_and_name_the_weights_component():
    assert plots.axis_label("cluster_pm[pmdec]") == "cluster μ_δ [mas/yr]"
    assert plots.axis_label("cluster_parallax") == "cluster ϖ [mas]"
    assert plots.axis_label("w[cluster]") == "weight w (cluster)"
    assert plots.axis_label("unknown[a]") == "unknown (a)"  # no entry: its own name


def test_quantile_title_gives_the_median_and_the_16_84_spread():
    values = np.random.default_rng(0).normal(1.2345, 0.0123, 200_000)
    title = plots._quantile_title("x", values)
    assert title == "x\n= 1.234 +0.012 -0.012" or title == "x\n= 1.235 +0.012 -0.012"
    skewed = np.concatenate([np.zeros(1), np.linspace(0, 1, 1001) ** 2])
    low, mid, high = np.percentile(skewed, [16, 50, 84])
    assert plots._quantile_title("y", skewed) == (
        f"y\n= {mid:.2f} +{high - mid:.2f} -{mid - low:.2f}")


def test_corner_plot_has_the_grid_labels_titles_and_truth_lines(idata):
    truths = {"cluster_pm[pmra]": -2.9, "cluster_pm[pmdec]": -3.85, "w[cluster]": 0.3}
    figure = plots.corner_plot(idata, ["cluster_pm", "cluster_pm_dispersion", "w"],
                               coords={"component": "cluster"}, truths=truths, title="t")
    axes = np.array(figure.axes).reshape(4, 4)
    # the lower triangle and the diagonal are drawn, the upper triangle is hidden
    assert all(not axes[i, j].get_frame_on() and not axes[i, j].get_lines()
               for i in range(4) for j in range(i + 1, 4))
    assert [axes[3, j].get_xlabel() for j in range(4)] == [
        "cluster μ_α* [mas/yr]", "cluster μ_δ [mas/yr]", "cluster σ_μ [mas/yr]",
        "weight w (cluster)"]
    assert [axes[i, 0].get_ylabel() for i in range(1, 4)] == [
        "cluster μ_δ [mas/yr]", "cluster σ_μ [mas/yr]", "weight w (cluster)"]
    samples, _ = plots.posterior_columns(idata, ["cluster_pm", "cluster_pm_dispersion", "w"],
                                         {"component": "cluster"})
    for index in range(4):
        median = np.percentile(samples[:, index], 50)
        title = axes[index, index].get_title()
        assert title.startswith(plots.axis_label(
            ["cluster_pm[pmra]", "cluster_pm[pmdec]", "cluster_pm_dispersion",
             "w[cluster]"][index]))
        assert abs(float(title.split("= ")[1].split(" ")[0]) - median) < 0.01
    red = to_rgba("tab:red")

    def red_vertical_lines(axis):
        return [line.get_xdata()[0] for line in axis.get_lines()
                if to_rgba(line.get_color()) == red and len(set(line.get_xdata())) == 1]

    assert red_vertical_lines(axes[0, 0]) == [pytest.approx(-2.9)]
    assert red_vertical_lines(axes[3, 3]) == [pytest.approx(0.3)]
    assert red_vertical_lines(axes[2, 2]) == []  # no truth given for the dispersion
    assert figure.legends and figure.legends[0].get_texts()[0].get_text() == "true value"
    assert figure._suptitle.get_text() == "t"
    plots.close(figure)


def test_corner_plot_without_truths_has_no_red_lines_nor_legend(idata):
    figure = plots.corner_plot(idata, ["cluster_pm_dispersion", "w"],
                               coords={"component": "cluster"})
    red = to_rgba("tab:red")
    assert not any(to_rgba(line.get_color()) == red
                   for axis in figure.axes for line in axis.get_lines())
    assert not figure.legends
    plots.close(figure)
