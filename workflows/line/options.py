"""The outlier-line workflow's own command-line options (``starmix run outlier-line``);
the sampling, gate and output options are shared (:mod:`starmix.workflows.cli`)."""


def add_options(parser) -> None:
    """Add the data and model options to ``parser`` (an argparse parser); defaults are None
    so that a config file can fill them (the input type's defaults apply last)."""
    data = parser.add_argument_group("data (default: the built-in simulated reference data)")
    data.add_argument("--data", help="CSV, ECSV or FITS table of points")
    data.add_argument("--x", help="column of x (default x)")
    data.add_argument("--y", help="column of y (default y)")
    data.add_argument("--yerr", help="column of the 1-sigma y error (default y_err)")
    data.add_argument("--xerr", help="column of the 1-sigma x error (optional)")
    data.add_argument("--xycorr", help="column of the x-y error correlation (optional)")
    data.add_argument("--drop-invalid", action="store_true", default=None,
                      help="drop (and count) rows with text, NaN/inf, errors <= 0 or "
                           "|correlation| > 1 instead of stopping")
    parser.add_argument("--intrinsic-scatter", action="store_true", default=None,
                      help="fit an intrinsic scatter about the line")
