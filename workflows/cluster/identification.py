"""Which overdensity is the cluster: published starting values, or ranked candidates.

* A named cluster (``--cluster``, looked up in ``--catalogue FILE`` first, then in the
  built-in list of :mod:`starmix.data.clusters`) starts from its published mean proper motion and
  parallax: the prior centre of the cluster's mean and the start of the MAP search.
* Without published values, :func:`candidate_overdensities` lists up to
  ``N_CANDIDATES`` local excesses of stars in proper motion over a smooth background
  (counts in 0.2 mas/yr cells smoothed by 1 cell, against the same smoothed by 6 cells);
  the workflow searches the MAP from each and keeps the one of highest log posterior.
  The densest cell of the whole field, the old rule, is the field's own peak on most
  real fields (NGC 188: a field overdensity at (-1.2, 0.8) mas/yr was fitted as the
  cluster).
"""

from dataclasses import asdict, dataclass

import numpy as np
from astropy.table import Table
from scipy.ndimage import gaussian_filter, maximum_filter

from starmix.data.catalogue import read_catalogue
from starmix.data.clusters import ClusterReference, cluster_reference, normalise_name

N_CANDIDATES = 5
CELL = 0.2  # mas/yr
NEAR = 0.5  # mas/yr: stars this close to a candidate give its parallax


@dataclass(frozen=True)
class Candidate:
    """A starting guess: proper motion (mas/yr), parallax (mas, if known), the excess of
    stars over the background near it, and where it came from."""

    pmra: float
    pmdec: float
    parallax: float | None
    excess: float
    origin: str

    def guess(self) -> dict:
        found = {"pmra": self.pmra, "pmdec": self.pmdec}
        if self.parallax is not None:
            found["parallax"] = self.parallax
        return found

    def record(self) -> dict:
        return asdict(self)


def published_reference(name: str | None, catalogue: str | None) -> ClusterReference | None:
    """The cluster's published values: ``catalogue`` (a file) first, then the built-in list."""
    if name is None:
        return None
    if catalogue is not None:
        found = read_catalogue(catalogue).get(normalise_name(name))
        if found is not None:
            return found
    return cluster_reference(name)


def published_candidate(reference: ClusterReference, table: Table) -> Candidate:
    """The published values as the one candidate, with the excess of stars near them."""
    pmra, pmdec = np.asarray(table["pmra"], float), np.asarray(table["pmdec"], float)
    near = np.hypot(pmra - reference.pmra, pmdec - reference.pmdec) < NEAR
    return Candidate(reference.pmra, reference.pmdec, reference.parallax,
                     float(near.sum()), f"published ({reference.source})")


def candidate_overdensities(table: Table, n: int = N_CANDIDATES) -> list[Candidate]:
    """Up to ``n`` local excesses in proper motion, most significant first (see the module
    docstring); parallax is the median of stars within 0.5 mas/yr when the table has it."""
    pmra, pmdec = np.asarray(table["pmra"], float), np.asarray(table["pmdec"], float)
    lo = np.percentile(np.stack([pmra, pmdec]), 0.5, axis=1)
    hi = np.percentile(np.stack([pmra, pmdec]), 99.5, axis=1)
    bins = np.ceil((hi - lo) / CELL).astype(int).clip(1, 600)
    counts, x_edges, y_edges = np.histogram2d(pmra, pmdec, bins=bins,
                                              range=list(zip(lo, hi, strict=True)))
    local = gaussian_filter(counts, 1.0, mode="constant")
    background = gaussian_filter(counts, 6.0, mode="constant")
    significance = (local - background) / np.sqrt(background + 1.0)
    peaks = (significance == maximum_filter(significance, size=5)) & (significance > 0)
    order = np.argsort(significance[peaks])[::-1][:n]
    cells = np.argwhere(peaks)[order]
    candidates = []
    for i, j in cells:
        centre = ((x_edges[i] + x_edges[i + 1]) / 2, (y_edges[j] + y_edges[j + 1]) / 2)
        near = np.hypot(pmra - centre[0], pmdec - centre[1]) < NEAR
        parallax = None
        if "parallax" in table.colnames and near.any():
            parallax = float(np.clip(np.median(np.asarray(table["parallax"], float)[near]),
                                     0.05, None))
        excess = float((local[i, j] - background[i, j]) * np.pi * (NEAR / CELL) ** 2)
        candidates.append(Candidate(float(centre[0]), float(centre[1]), parallax,
                                    round(excess, 1), "proper-motion overdensity"))
    if not candidates:  # a featureless field: its densest cell, which detection then judges
        i, j = np.unravel_index(np.argmax(counts), counts.shape)
        centre = ((x_edges[i] + x_edges[i + 1]) / 2, (y_edges[j] + y_edges[j + 1]) / 2)
        near = np.hypot(pmra - centre[0], pmdec - centre[1]) < NEAR
        parallax = (float(np.median(np.asarray(table["parallax"], float)[near]))
                    if "parallax" in table.colnames else None)
        candidates.append(Candidate(float(centre[0]), float(centre[1]), parallax, 0.0,
                                    "densest proper-motion cell"))
    return candidates


def start_values(candidate: Candidate, n_components: int, n_stars: int) -> dict:
    """Constrained starting values for the MAP search from ``candidate``: the cluster's
    mean at the candidate, its weight at the candidate's excess fraction (0.002 to 0.5;
    ``cluster_logit`` its log-odds for magnitude-dependent weights), the field weights
    equal. Models take the entries that are their free variables."""
    fraction = float(np.clip(candidate.excess / max(n_stars, 1), 0.002, 0.5))
    weights = np.full(n_components, (1 - fraction) / (n_components - 1))
    weights[0] = fraction
    values = {"cluster_pm": [candidate.pmra, candidate.pmdec], "cluster_pmra": candidate.pmra,
              "w": weights, "cluster_logit": float(np.log(fraction / (1 - fraction))),
              "field_weights": np.full(n_components - 1, 1 / (n_components - 1))}
    if candidate.parallax is not None:
        values["cluster_parallax"] = max(candidate.parallax, 0.02)
    return values
