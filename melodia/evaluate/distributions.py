"""How far apart two sets of excerpts are: distribution overlaps and a two-sample classifier.

- :func:`kde_overlap`: the overlapping area of two statistic distributions (as in MGEval, Yang
  & Lerch 2018): each set's values are smoothed by a Gaussian kernel density estimate, both
  densities are normalised to integrate to 1 on a common grid, and the area under their minimum
  is integrated. 1.0 = identical, 0.0 = disjoint.
- :func:`histogram_intersection`: ``sum(min(p, q))`` of two normalised histograms.
- :func:`classifier_accuracy`: how well a standardised logistic regression tells the two sets
  apart from their statistics, by k-fold cross-validation on balanced classes with the excerpts
  of one file kept in one fold. 0.5 = indistinguishable, 1.0 = always told apart.

scipy and scikit-learn are optional: ``pip install 'melodia[eval]'``.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np

from melodia.errors import MelodiaError

log = logging.getLogger(__name__)

INSTALL_HINT = "music statistics need scipy and scikit-learn: pip install 'melodia[eval]'"
GRID_POINTS = 1024
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def require_eval_extra() -> None:
    """Raise a :class:`MelodiaError` naming the extra to install if scipy or sklearn is missing."""
    try:
        import scipy.stats  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        raise MelodiaError(INSTALL_HINT) from None


def _kernel(values: np.ndarray, scale: float):
    """``(density function, kernel width)`` of one sample: scipy's Gaussian KDE (Scott's
    bandwidth), or, for a sample whose values are (nearly) all equal, where scipy's estimate is
    singular, one Gaussian a thousandth of the pooled spread wide."""
    from scipy import stats

    if np.ptp(values) > 1e-9 * max(1.0, float(np.abs(values).max())):
        kde = stats.gaussian_kde(values)
        return kde, float(np.sqrt(kde.covariance[0, 0]))
    width = 1e-3 * scale if scale > 0 else 1e-3 * max(1.0, abs(float(values[0])))
    centre = float(values.mean())
    return (lambda x: stats.norm.pdf(x, loc=centre, scale=width)), width


def kde_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlapping area (0..1) of the kernel density estimates of two samples; nan values are
    dropped, and the result is nan when a side has no value left.

    Both densities are evaluated on one grid over the pooled range (plus three pooled standard
    deviations each side), refined around a sample whose kernel is narrower than the grid, then
    normalised to integrate to 1, and ``min(p, q)`` is integrated by the trapezoid rule.
    """
    a = np.asarray(a, float)[np.isfinite(a)]
    b = np.asarray(b, float)[np.isfinite(b)]
    if not len(a) or not len(b):
        return math.nan
    pooled = np.concatenate([a, b])
    scale = float(np.std(pooled))
    kernels = [_kernel(v, scale) for v in (a, b)]
    pad = 3.0 * scale + 8 * min(w for _, w in kernels)
    lo, hi = float(pooled.min()) - pad, float(pooled.max()) + pad
    parts = [np.linspace(lo, hi, GRID_POINTS)]
    for v, (_, width) in zip((a, b), kernels):
        if width < 4 * (hi - lo) / GRID_POINTS:  # too narrow for the grid: sample it finely
            parts.append(np.linspace(v.min() - 8 * width, v.max() + 8 * width, 1024))
    grid = np.unique(np.concatenate(parts))
    p, q = (density(grid) for density, _ in kernels)
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


def _enough_groups(y: np.ndarray, groups: np.ndarray, folds: int) -> np.ndarray:
    """Groups with at least ``folds`` of them in each class: where a class has fewer (one long
    reference file, say), each of its groups is cut into ``folds`` runs of consecutive rows, so
    neighbouring excerpts of a piece still stay together."""
    groups = np.asarray(groups).copy()
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        if len(np.unique(groups[rows])) >= folds:
            continue
        offset = groups.max() + 1
        for g in np.unique(groups[rows]):
            members = rows[groups[rows] == g]
            block = np.arange(len(members)) * folds // max(len(members), 1)
            groups[members] = offset + block
            offset += folds
    return groups


def _folds(y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int):
    """Stratified folds that keep each group (source file) whole when there are enough groups."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    n_min = int(min(np.sum(y == 0), np.sum(y == 1)))
    if groups is not None:
        groups = _enough_groups(y, groups, folds)
    if groups is not None and len(np.unique(groups)) >= 2:
        k = min(folds, len(np.unique(groups)), n_min)
        if k >= 2:
            cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            return list(cv.split(np.zeros(len(y)), y, groups))
    cv = StratifiedKFold(n_splits=min(folds, n_min), shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y))


def classifier_accuracy(a: np.ndarray, b: np.ndarray, *, groups_a: Sequence | None = None,
                        groups_b: Sequence | None = None, folds: int = 5,
                        seed: int = 0) -> tuple[float, float]:
    """Cross-validated accuracy of telling ``a``'s rows from ``b``'s: (accuracy, std over folds).

    The larger set is subsampled (seeded) to the size of the smaller, so chance is 0.5. Folds are
    stratified and, given ``groups_a``/``groups_b`` (e.g. the source file of each excerpt), keep
    a group's rows in one fold, so excerpts of one piece (or one file on both sides) never sit on
    both sides of a split. The accuracy is over all out-of-fold predictions (with balanced
    classes, the same as balanced accuracy, even where grouped folds are not balanced); the std
    is that of the per-fold accuracies. Missing values get the column median;
    features are standardised inside each fold before an L2-regularised logistic regression.
    With fewer than two rows per set the result is nan.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ia, ib = balanced_indices(len(a), len(b), seed)
    n = len(ia)
    if n < 2:
        log.warning("the classifier test needs at least 2 excerpts per set, got %d", n)
        return math.nan, math.nan
    x = impute_median(np.concatenate([np.asarray(a, float)[ia], np.asarray(b, float)[ib]]))
    y = np.concatenate([np.zeros(n), np.ones(n)])
    groups = None
    if groups_a is not None and groups_b is not None:
        names = np.concatenate([np.asarray(groups_a, str)[ia], np.asarray(groups_b, str)[ib]])
        groups = np.unique(names, return_inverse=True)[1].reshape(-1)
    correct, per_fold = np.zeros(len(y), bool), []
    for train, test in _folds(y, groups, folds, seed):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(x[train], y[train])
        correct[test] = model.predict(x[test]) == y[test]
        per_fold.append(correct[test].mean())
    return float(correct.mean()), float(np.std(per_fold))


__all__ = ["INSTALL_HINT", "balanced_indices", "classifier_accuracy", "histogram_intersection",
           "impute_median", "kde_overlap", "require_eval_extra"]
