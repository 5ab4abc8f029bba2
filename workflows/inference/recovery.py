"""Recovery checks against a simulation's truth: parameter bias and membership quality."""

import numpy as np
from astropy.table import Table
from scipy.stats import rankdata

RELIABILITY_BINS = np.linspace(0, 1, 11)
RELIABILITY_MIN_STARS = 50
RELIABILITY_TOLERANCE = 0.1


def roc_auc(probability: np.ndarray, is_member: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney form, ties averaged)."""
    is_member = np.asarray(is_member, bool)
    n_pos, n_neg = is_member.sum(), (~is_member).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(probability)
    return float((ranks[is_member].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_recall(probability, is_member, threshold: float = 0.5) -> tuple[float, float]:
    predicted = np.asarray(probability) > threshold
    is_member = np.asarray(is_member, bool)
    true_positive = (predicted & is_member).sum()
    precision = true_positive / predicted.sum() if predicted.any() else float("nan")
    recall = true_positive / is_member.sum() if is_member.any() else float("nan")
    return float(precision), float(recall)


def reliability_table(probability, is_member, bins=RELIABILITY_BINS) -> Table:
    """Per bin of predicted P: star count, mean P, fraction of true members (with its
    binomial error) and whether the bin is within tolerance (bins of >= 50 stars only)."""
    probability = np.asarray(probability)
    is_member = np.asarray(is_member, bool)
    index = np.clip(np.digitize(probability, bins) - 1, 0, len(bins) - 2)
    rows = []
    for k in range(len(bins) - 1):
        chosen = index == k
        n = int(chosen.sum())
        mean_p = float(probability[chosen].mean()) if n else float("nan")
        fraction = float(is_member[chosen].mean()) if n else float("nan")
        error = float(np.sqrt(max(fraction * (1 - fraction), 1 / max(n, 1)) / n)) if n else np.nan
        judged = n >= RELIABILITY_MIN_STARS
        rows.append((bins[k], bins[k + 1], n, mean_p, fraction, error,
                     bool(abs(fraction - mean_p) <= RELIABILITY_TOLERANCE) if judged else None))
    return Table(rows=rows, names=("p_low", "p_high", "n_stars", "mean_p", "member_fraction",
                                   "fraction_error", "within_0.1"))


def membership_quality(probability, is_member) -> dict:
    precision, recall = precision_recall(probability, is_member)
    reliability = reliability_table(probability, is_member)
    judged = [row["within_0.1"] for row in reliability if row["within_0.1"] is not None]
    return {"roc_auc": roc_auc(probability, is_member), "precision_at_0.5": precision,
            "recall_at_0.5": recall, "reliability_ok": bool(all(judged)),
            "brier_score": float(np.mean((np.asarray(probability) - is_member) ** 2))}, reliability


def parameter_bias(summary: Table, truth: dict) -> dict:
    """(posterior mean - truth) / posterior sd for every parameter with a known truth."""
    rows = {row["parameter"]: row for row in summary}
    return {name: {"truth": value, "mean": float(rows[name]["mean"]),
                   "sd": float(rows[name]["sd"]),
                   "bias_in_sd": float((rows[name]["mean"] - value) / rows[name]["sd"])}
            for name, value in truth.items() if name in rows}
