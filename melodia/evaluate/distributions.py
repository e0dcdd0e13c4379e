"""How far apart two sets of excerpts are: distribution overlaps and a two-sample classifier.

- :func:`kde_overlap`: the overlapping area of two statistic distributions (as in MGEval, Yang
  & Lerch 2018): each set's values are smoothed by a Gaussian kernel density estimate, both
  densities are normalised to integrate to 1 on a common grid, and the area under their minimum
  is integrated. 1.0 = identical, 0.0 = disjoint.
- :func:`histogram_intersection`: ``sum(min(p, q))`` of two normalised histograms.
- :func:`classifier_accuracy`: how well a standardised logistic regression tells the two sets
  apart from their statistics, by stratified k-fold cross-validation on balanced classes.
  0.5 = indistinguishable, 1.0 = always told apart.

scipy and scikit-learn are optional: ``pip install 'melodia[eval]'``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from melodia.errors import MelodiaError

log = logging.getLogger(__name__)

INSTALL_HINT = "music statistics need scipy and scikit-learn: pip install 'melodia[eval]'"
GRID_POINTS = 1024
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def require_eval_extra() -> None:
    """Raise a :class:`MelodiaError` naming the extra to install when scipy or sklearn is missing."""
    try:
        import scipy.stats  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        raise MelodiaError(INSTALL_HINT) from None


def _narrow_width(values: np.ndarray, scale: float) -> float:
    """Kernel width for a set whose values are all equal: a thousandth of the pooled spread."""
    return 1e-3 * scale if scale > 0 else 1e-3 * max(1.0, abs(float(values[0])))


def _density(values: np.ndarray, grid: np.ndarray, scale: float) -> np.ndarray:
    """Gaussian KDE of ``values`` on ``grid`` (Scott's bandwidth); a narrow Gaussian when all
    values are equal, where scipy's estimate is singular."""
    from scipy import stats

    if len(values) > 1 and np.ptp(values) > 0:
        return stats.gaussian_kde(values)(grid)
    width = _narrow_width(values, scale)
    return stats.norm.pdf(grid, loc=float(values[0]), scale=width)


def kde_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlapping area (0..1) of the kernel density estimates of two samples; nan values are
    dropped, and the result is nan when a side has no value left."""
    a = np.asarray(a, float)[np.isfinite(a)]
    b = np.asarray(b, float)[np.isfinite(b)]
    if not len(a) or not len(b):
        return math.nan
    pooled = np.concatenate([a, b])
    scale = float(np.std(pooled))
    pad = 3.0 * scale if scale > 0 else 8 * _narrow_width(pooled, scale)
    parts = [np.linspace(pooled.min() - pad, pooled.max() + pad, GRID_POINTS)]
    for v in (a, b):  # a set of equal values is a spike: sample it finely
        if np.ptp(v) == 0:
            w = _narrow_width(v, scale)
            parts.append(np.linspace(v[0] - 8 * w, v[0] + 8 * w, 801))
    grid = np.unique(np.concatenate(parts))
    p, q = _density(a, grid, scale), _density(b, grid, scale)
    p, q = p / _trapezoid(p, grid), q / _trapezoid(q, grid)
    return float(min(1.0, _trapezoid(np.minimum(p, q), grid)))


def histogram_intersection(p: np.ndarray, q: np.ndarray) -> float:
    """``sum(min(p, q))`` of two count histograms over the same bins, each normalised to sum 1."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    return float(np.minimum(p / p.sum(), q / q.sum()).sum())


def impute_median(x: np.ndarray) -> np.ndarray:
    """Replace nan by the column's median (0 for a column with no value)."""
    x = np.array(x, float)
    with np.errstate(all="ignore"):
        finite = np.isfinite(x)
        medians = np.array([np.median(col[ok]) if ok.any() else 0.0
                            for col, ok in zip(x.T, finite.T)])
    return np.where(finite, x, medians)


def balanced_indices(n_a: int, n_b: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept from each set: all of the smaller one, a seeded random subset of the larger."""
    rng = np.random.default_rng(seed)
    n = min(n_a, n_b)
    pick = [np.sort(rng.choice(m, n, replace=False)) if m > n else np.arange(m)
            for m in (n_a, n_b)]
    return pick[0], pick[1]


def classifier_accuracy(a: np.ndarray, b: np.ndarray, *, folds: int = 5,
                        seed: int = 0) -> tuple[float, float]:
    """Cross-validated accuracy (mean, std over folds) of telling rows of ``a`` from rows of ``b``.

    The larger set is subsampled (seeded) to the size of the smaller, so chance is exactly 0.5;
    missing values get the column median; features are standardised inside each fold before an
    L2-regularised logistic regression. With fewer than two rows per set the result is nan.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ia, ib = balanced_indices(len(a), len(b), seed)
    n = len(ia)
    if n < 2:
        log.warning("the classifier test needs at least 2 excerpts per set, got %d", n)
        return math.nan, math.nan
    x = impute_median(np.concatenate([np.asarray(a, float)[ia], np.asarray(b, float)[ib]]))
    y = np.concatenate([np.zeros(n), np.ones(n)])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(n_splits=min(folds, n), shuffle=True, random_state=seed)
    scores = cross_val_score(model, x, y, cv=cv, scoring="accuracy")
    return float(scores.mean()), float(scores.std())


__all__ = ["INSTALL_HINT", "balanced_indices", "classifier_accuracy", "histogram_intersection",
           "impute_median", "kde_overlap", "require_eval_extra"]
