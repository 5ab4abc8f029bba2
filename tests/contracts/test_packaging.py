"""Every package of the code base is named in pyproject.toml, so a wheel (not only an
editable install) holds it: a new room left out of the list installs without it."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = {"starmix"}
    for top in ("models", "data", "workflows"):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            if "__pycache__" not in parts:
                found.add(".".join(("starmix", *parts)))
    assert found - listed == set(), f"packages missing from pyproject.toml: {found - listed}"
    assert listed - found == set(), f"pyproject.toml lists packages that do not exist: " \
                                    f"{listed - found}"
