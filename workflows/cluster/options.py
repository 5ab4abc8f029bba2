"""The cluster workflow's own command-line options (``starmix run cluster``); the
sampling, gate and output options are shared (:mod:`starmix.workflows.cli`)."""

from starmix.models import CLUSTER_MODELS
from starmix.workflows.base import Example


def reproduce_examples() -> tuple[Example, ...]:
    """``starmix reproduce``'s cluster runs: the simulated NGC 6819 field with each model."""
    return tuple(Example(model, f"NGC 6819, {model} model (simulated field)",
                         f"starmix run ngc6819 --model {model}", {"model": model},
                         prefix="ngc6819_", caption_prefix=f"{model} model: ",
                         out=f"ngc6819-{model}") for model in CLUSTER_MODELS)


def add_options(parser) -> None:
    """Add the model, data, quality-cut and model options to ``parser`` (an argparse
    parser); defaults are None so that a config file can fill them (the input type's
    defaults apply last)."""
    parser.add_argument("--model", choices=sorted(CLUSTER_MODELS),
                         help="pmra, parallax, pm2d (default), pmplx (proper motion and "
                              "parallax, no positions needed) or joint")
    source = parser.add_argument_group("data (default: the simulated NGC 6819 field)")
    source.add_argument("--data", help="Gaia table: FITS(.gz), CSV, ECSV or VOTable")
    source.add_argument("--columns", help="renames, e.g. 'Plx=parallax,pmRA=pmra' "
                                          "(VizieR names are mapped automatically)")
    source.add_argument("--cluster", help="cluster name: its published values start the fit "
                                          "and are compared in the figures (without a name "
                                          "the fit starts from the field's proper-motion "
                                          "overdensities; default for the simulated field: "
                                          "NGC6819)")
    source.add_argument("--catalogue", help="cluster catalogue (VizieR TSV such as "
                                            "Cantat-Gaudin+2020's table 1, or CSV/FITS) to "
                                            "look --cluster up in before the built-in list")
    source.add_argument("--center", nargs=2, type=float, metavar=("RA", "DEC"),
                        help="cluster centre in degrees (overrides --cluster's)")
    source.add_argument("--assign-errors", action="store_true", default=None,
                        help="give stars Gaia errors from G where the file has none (its "
                             "own error columns are kept)")
    source.add_argument("--error-model", choices=["dr3", "dr2"], default=None,
                        help="the errors --assign-errors gives: dr3 (pygaia, default) or dr2 "
                             "(Brown et al. 2018, Table 3)")
    source.add_argument("--drop-invalid", action="store_true", default=None,
                        help="drop (and count) invalid rows instead of stopping")
    source.add_argument("--zero-point", action="store_true", default=None,
                        help="subtract the Lindegren et al. (2021) parallax zero-point "
                             "(needs nu_eff_used_in_astrometry, pseudocolour, ecl_lat, "
                             "astrometric_params_solved; the 'zeropoint' extra)")
    source.add_argument("--sim-seed", type=int, help="seed of the simulated field (default 42)")
    source.add_argument("--n-cluster", type=int, help="simulated members (default 6170)")
    source.add_argument("--n-field", type=int, help="simulated field stars (default 10830)")
    cuts = parser.add_argument_group("quality cuts (recorded in the run record)")
    cuts.add_argument("--ruwe-max", type=float, help="keep RUWE below this (default 1.4)")
    cuts.add_argument("--g-max", type=float, help="keep G at or below this (default 20)")
    cuts.add_argument("--parallax-over-error-min", type=float, help="off by default")
    cuts.add_argument("--radius", type=float, dest="radius_arcmin",
                      help="keep stars within this many arcmin of the centre (off by default)")
    source.add_argument("--footprint", nargs=3, type=float,
                        metavar=("RA", "DEC", "RADIUS"),
                        help="the cone the data were selected from (degrees, arcmin), for the "
                             "joint model's field density (default: recorded by simulate and "
                             "fetch-gaia, else estimated from the stars)")
    cuts.add_argument("--max-stars", type=int,
                      help="fit a seeded random subsample of this many stars (quick looks)")
    shape = parser.add_argument_group("model options")
    shape.add_argument("--field-components", help="field Gaussians K, 1-5, or 'auto' (LOO "
                                                  "over K = 1, 2, 3); default 2")
    shape.add_argument("--parallax-field", choices=["exponential", "beta", "gaussian"],
                       help="parallax model's field density (default exponential); "
                            "gaussian: K Gaussians (--field-components), with detection")
    shape.add_argument("--parallax-offset", action="store_true", default=None,
                       help="fit a global parallax offset (parallax model)")
    shape.add_argument("--radial-velocity", nargs=2, type=float, metavar=("MEAN", "SD"),
                       help="radial-velocity prior in km/s for the joint model's 3D motion "
                            "(default: the named cluster's, NGC 6819: 2.45 1.0; else a broad "
                            "generic prior)")
    shape.add_argument("--magnitude-prior", action="store_true", default=None,
                       help="let the cluster's weight depend on G (logistic in G): fewer "
                            "faint field stars taken for members; needs phot_g_mean_mag")
    shape.add_argument("--cluster-halo", action="store_true", default=None,
                       help="give the cluster a second, wider Gaussian (up to 0.5 mas/yr) "
                            "with its mean: for members spread past one Gaussian (pm2d, "
                            "pmplx, joint)")
    shape.add_argument("--log-likelihood", choices=["auto", "all", "thin", "none"],
                       help="pointwise log-likelihood per draw in posterior.nc: all, thin "
                            "(every k-th draw, at most 1e8 values), none; default auto: all "
                            "up to 1e8 values (25,000 stars x 4,000 draws), else thin")
    shape.add_argument("--no-detection", dest="detection", action="store_false", default=None,
                       help="skip the detection step (field-only models and PSIS-LOO)")
    shape.add_argument("--detection-method", choices=["laplace", "nuts"],
                       help="how the detection step fits the field-only models: laplace "
                            "(default; a Laplace approximation corrected by importance "
                            "sampling, NUTS where its Pareto k says it is poor) or nuts")
