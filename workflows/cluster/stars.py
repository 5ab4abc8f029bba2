"""Steps 1-3 of the cluster workflow: the stars to fit, where they come from, and what the
fit starts from (:class:`Stars`).

:func:`load_stars` reads (or simulates) the Gaia table and resolves the cluster's centre and
published values; :func:`select_stars` validates the table for the model, applies the
quality cuts, fixes the footprint (the cone the data were selected from) and finds the
starting candidates (proper motions in mas/yr, parallax in mas).
"""

from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from starmix.models import CLUSTER_MODELS
from starmix.workflows.cluster.fit import starting_candidates
from starmix.workflows.cluster.identification import published_reference
from starmix.workflows.cluster.inputs import (
    ClusterInput,
    check_inside,
    footprint_for,
    load_cluster_table,
    prepare_stars,
    resolve_cluster_center,
)
from starmix.workflows.runs.run import Run


@dataclass
class Stars:
    """The fitted stars and what the run knows about them before fitting.

    ``provenance``: where the table came from (the record's ``data``); ``selection``: the
    cuts and their counts; ``center``: the cluster centre (SkyCoord) or None, found as
    ``center_origin`` says; ``reference``: published values or None; ``footprint``: the
    cone or None; ``candidates``: starting points of the fit; ``guess``: the first
    candidate's values (with the stars' median parallax where the model needs one)."""

    table: Table
    provenance: dict
    reference: object = None
    center: object = None
    center_origin: str | None = None
    selection: dict | None = None
    footprint: object = None
    candidates: list | None = None
    guess: dict | None = None

    def record(self) -> dict:
        """The run record's entries about the stars."""
        return {"data": self.provenance, "selection": self.selection,
                "center": None if self.center is None else {
                    "ra": self.center.ra.deg, "dec": self.center.dec.deg,
                    "origin": self.center_origin},
                "published": None if self.reference is None else vars(self.reference),
                "footprint": None if self.footprint is None else self.footprint.record(),
                "starting_candidates": [c.record() for c in self.candidates],
                "initial_guess": self.guess}


def load_stars(run: Run, inputs: ClusterInput) -> Stars:
    """Step 1: the published values (``--reference`` or the catalogue's), the centre and the
    table, as read (nothing cut yet)."""
    reference = inputs.reference or published_reference(inputs.cluster, inputs.catalogue)
    center, center_origin = resolve_cluster_center(inputs, reference)
    table, provenance = load_cluster_table(inputs)
    run.say(f"{len(table)} stars from {provenance['source']}")
    if "correlations" in provenance:
        run.say(f"correlations: {provenance['correlations']}")
    return Stars(table, provenance, reference, center, center_origin)


def select_stars(run: Run, inputs: ClusterInput, stars: Stars, seed: int) -> Stars:
    """Steps 2-3: validation and quality cuts (``seed``: the subsample of ``max_stars``),
    the footprint (every star must lie inside it), and the starting candidates."""
    table, selection = prepare_stars(stars.table, inputs, stars.center, seed, run.say)
    footprint = footprint_for(table, inputs, stars.center)
    if footprint is not None:
        check_inside(table, footprint)
        run.say(f"footprint: {footprint.radius_arcmin:g} arcmin around "
                f"({footprint.ra:.4f}, {footprint.dec:.4f}), {footprint.origin}")
    candidates = starting_candidates(table, stars.reference)
    guess = candidates[0].guess()
    if "parallax" in CLUSTER_MODELS[inputs.model].prior_center_axes:
        guess.setdefault("parallax", float(np.median(np.asarray(table["parallax"]))))
    run.say(f"{len(table)} stars to fit; {len(candidates)} starting candidate(s): "
            + "; ".join(f"pm ({c.pmra:.2f}, {c.pmdec:.2f}) mas/yr from {c.origin}"
                        for c in candidates))
    return Stars(table, stars.provenance, stars.reference, stars.center, stars.center_origin,
                 selection, footprint, candidates, guess)
