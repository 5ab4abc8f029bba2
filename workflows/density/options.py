"""The density workflows' own command-line options (``starmix run density`` and
``starmix run ages``); the sampling, gate and output options are shared
(:mod:`starmix.workflows.cli`)."""


def add_density_options(parser, ages: bool) -> None:
    data = parser.add_argument_group(
        "data (default: " + ("a built-in simulated table of two age columns" if ages else
                             "a built-in simulated 1-D sample with errors and known truth")
        + ")")
    data.add_argument("--data", help="table file: CSV, ECSV, FITS, VOTable or whitespace text "
                                     "with a '#' header (.dat, .txt)")
    data.add_argument("--columns", help=("the two age columns (default Joyce_age,Bensby_age)"
                                         if ages else "1 to 3 comma-separated columns to fit"))
    data.add_argument("--errors", help="1-sigma error of each column: a column name or a "
                                       "constant, comma-separated (default: no errors)")
    data.add_argument("--drop-invalid", action="store_true", default=None,
                      help="drop (and count) rows with text, NaN/inf or errors <= 0")
    shape = parser.add_argument_group("density options")
    scale = shape.add_mutually_exclusive_group()
    scale.add_argument("--log", action="store_true", default=None,
                       help="fit ln(value) (positive quantities; errors carried to first "
                            "order)" + (" (the default here)" if ages else ""))
    if ages:
        scale.add_argument("--linear", dest="log", action="store_false",
                           help="fit the ages themselves, not ln(age)")
    shape.add_argument("--lower", type=float, help="lower physical limit: values below are "
                                                   "counted and reported" +
                       (" (default 0 Gyr)" if ages else ""))
    shape.add_argument("--upper", type=float, help="upper physical limit: values above are "
                                                   "counted and reported" +
                       (" (default 13.8 Gyr, the age of the Universe)" if ages else ""))
    shape.add_argument("--truncate", action="store_true", default=None,
                       help="cut the intrinsic density at --lower/--upper (one column; values "
                            "beyond need errors)")
    shape.add_argument("--components", type=int,
                       help="fixed number of Gaussians K (default: K by PSIS-LOO)")
    shape.add_argument("--max-components", type=int,
                       help="largest K tried by PSIS-LOO (default 4, at most 6)")
    shape.add_argument("--synthetic-sets", type=int,
                       help="synthetic samples written, each from its own posterior draw "
                            "(default 20)")
    if not ages:
        data.add_argument("--example", choices=["mixture", "two-galaxies"],
                          help="built-in data without --data: mixture (default; 1-D, 300 "
                               "values with errors, known truth) or two-galaxies (the 2-D "
                               "lesson: a sphere and an inclined disc, 3,000 points each)")
    if ages:
        shape.add_argument("--comparison-draws", type=int,
                           help="posterior draws in the two-sample comparison (default 1000)")


def add_density(parser) -> None:
    """``starmix run density``'s options."""
    add_density_options(parser, ages=False)


def add_ages(parser) -> None:
    """``starmix run ages``'s options."""
    add_density_options(parser, ages=True)
