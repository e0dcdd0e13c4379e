"""The comparison of two sets of excerpts: :func:`compare` and its :class:`MusicReport`."""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from melodia.errors import MelodiaError
from melodia.evaluate import distributions
from melodia.evaluate.distributions import kde_overlap
from melodia.evaluate.music import (HISTOGRAM_EDGES, ExcerptSet, MusicEvalConfig, measure_files,
                                    midi_files)
from melodia.output.plot import plot_distributions

log = logging.getLogger(__name__)

#: What each statistic measures, for tables and ``--help``.
STAT_HELP = {
    "note_density": "notes per second",
    "polyphony": "mean pitches sounding, 50 ms frames with sound",
    "silence_share": "share of 50 ms frames with no sound",
    "pitch_mean": "mean MIDI pitch (60 = middle C)",
    "pitch_std": "standard deviation of pitch, semitones",
    "pitch_range": "highest - lowest pitch, semitones",
    "length_median": "median note length, s (pedal included)",
    "long_2s": "share of notes longer than 2 s",
    "long_4s": "share of notes longer than 4 s",
    "velocity_mean": "mean velocity (1-127)",
    "velocity_std": "standard deviation of velocity",
    "ioi_median": "median gap between distinct onsets, s",
    "pitch_class_entropy": "pitch-class entropy, bits (max 3.58)",
    "semitone_clash": "share of sounding frames with a minor 2nd",
    "key_correlation": "Krumhansl-Schmuckler key correlation",
    "key_stability": "share of 5 s windows in the global key",
    "key_changes_per_min": "local key changes per minute",
    "melodic_repetition": "share of top-line 4-interval patterns repeated",
    "chord_repetition": "share of 4-onset chord patterns repeated",
    "motif_recurrence": "share of top-line 4-interval motifs that recur (30 ms groups)",
    "rhythm_recurrence": "share of 4-gap rhythms that recur",
    "chroma_return": "how closely 2 s of harmony returns to earlier",
    "ioi_entropy": "entropy of gaps between onset groups, bits",
    "chord_share": "share of onset groups of 3+ notes",
    "grid16": "share of onsets within 20 ms of the 16th grid",
    "bar_return": "share of bars that return (Jaccard >= 0.8)",
}


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass
class StatComparison:
    """One statistic over the two sets of excerpts."""

    name: str
    generated_mean: float
    generated_std: float
    reference_mean: float
    reference_std: float
    overlap: float  # overlapping area of the two KDEs, 0..1

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if k == "name" else _finite(v)) for k, v in vars(self).items()}


@dataclass
class MusicReport:
    """Generated against reference music, statistic by statistic (see :func:`compare`)."""

    generated: str
    reference: str
    stats: list[StatComparison]
    histograms: dict[str, float]  # pooled-histogram intersections, 0..1
    classifier_accuracy: float  # 0.5 = indistinguishable
    classifier_std: float
    generated_excerpts: int
    reference_excerpts: int
    generated_files: int = 0
    reference_files: int = 0
    config: MusicEvalConfig = field(default_factory=MusicEvalConfig)
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict, repr=False)
    skipped: list[str] = field(default_factory=list)

    @property
    def mean_overlap(self) -> float:
        """Mean KDE overlap over the statistics that have one."""
        v = [s.overlap for s in self.stats if math.isfinite(s.overlap)]
        return float(np.mean(v)) if v else math.nan

    def table(self) -> str:
        """A plain-text table: one row per statistic, then the summary figures."""
        lines = [f"generated: {self.generated} ({self.generated_excerpts} excerpts of "
                 f"{self.config.excerpt_s:g} s from {self.generated_files} files)",
                 f"reference: {self.reference} ({self.reference_excerpts} excerpts from "
                 f"{self.reference_files} files)", "",
                 f"{'statistic':<22}{'generated':>11}{'reference':>11}{'overlap':>9}  meaning"]
        for s in self.stats:
            lines.append(f"{s.name:<22}{_fmt(s.generated_mean):>11}{_fmt(s.reference_mean):>11}"
                         f"{_fmt(s.overlap):>9}  {STAT_HELP.get(s.name, '')}")
        lines += ["", "histogram intersection (pooled over excerpts, 1 = same shape):"]
        lines += [f"  {name:<20}{_fmt(v):>9}" for name, v in self.histograms.items()]
        lines += ["", f"mean KDE overlap      {_fmt(self.mean_overlap):>9}   "
                  "(1 = same distributions)",
                  f"classifier accuracy   {_fmt(self.classifier_accuracy):>9}   "
                  f"(+- {_fmt(self.classifier_std)} over {self.config.folds} folds; "
                  "0.5 = indistinguishable, 1 = always told apart)"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable file(s)")
        return "\n".join(lines)

    def plot(self, out: str | Path) -> Path:
        """Save overlaid histograms of every statistic (needs matplotlib: ``melodia[plot]``)."""

        return plot_distributions(self.values.get("generated", {}),
                                  self.values.get("reference", {}), out,
                                  overlaps={s.name: s.overlap for s in self.stats})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary, with every excerpt's statistics under ``values`` (nan -> None)."""
        return {"generated": self.generated, "reference": self.reference,
                "generated_excerpts": self.generated_excerpts,
                "reference_excerpts": self.reference_excerpts,
                "generated_files": self.generated_files, "reference_files": self.reference_files,
                "stats": [s.to_dict() for s in self.stats],
                "histograms": {k: _finite(v) for k, v in self.histograms.items()},
                "mean_overlap": _finite(self.mean_overlap),
                "classifier_accuracy": _finite(self.classifier_accuracy),
                "classifier_std": _finite(self.classifier_std),
                "config": self.config.to_dict(), "skipped": list(self.skipped),
                "values": {side: {k: [_finite(x) for x in v] for k, v in cols.items()}
                           for side, cols in self.values.items()}}


def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def _label(source: str | Path | Iterable) -> str:
    return str(source) if isinstance(source, (str, Path)) else "(list of files)"


def _side_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations, ignoring nan (an all-nan column gives nan)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=0), np.nanstd(values, axis=0)


def compare_sets(gen: ExcerptSet, ref: ExcerptSet, config: MusicEvalConfig, *,
                 generated: str = "generated", reference: str = "reference") -> MusicReport:
    """Compare two measured sets of excerpts (see :func:`compare`)."""
    if not len(gen.values) or not len(ref.values):
        empty = "generated" if not len(gen.values) else "reference"
        raise MelodiaError(f"no {empty} excerpt with at least {config.min_notes} notes to measure")
    if tuple(gen.names) != tuple(ref.names):
        raise MelodiaError("the two sets of excerpts were measured with different statistics")
    g_mean, g_std = _side_stats(gen.values)
    r_mean, r_std = _side_stats(ref.values)
    rows = [StatComparison(n, float(g_mean[i]), float(g_std[i]), float(r_mean[i]),
                           float(r_std[i]), kde_overlap(gen.values[:, i], ref.values[:, i]))
            for i, n in enumerate(gen.names)]
    hists = {k: distributions.histogram_intersection(gen.histograms[k], ref.histograms[k])
             for k in HISTOGRAM_EDGES if k in gen.histograms and k in ref.histograms}
    acc, acc_std = distributions.classifier_accuracy(
        gen.values, ref.values, groups_a=gen.sources, groups_b=ref.sources, folds=config.folds,
        seed=config.seed)
    values = {side: {n: s.values[:, i].tolist() for i, n in enumerate(s.names)}
              for side, s in (("generated", gen), ("reference", ref))}
    return MusicReport(generated, reference, rows, hists, acc, acc_std, len(gen.values),
                       len(ref.values), gen.files, ref.files, config, values,
                       gen.skipped + ref.skipped)


def compare(generated: str | Path | Iterable[str | Path],
            reference: str | Path | Iterable[str | Path], *, excerpt_s: float = 30.0,
            encoding: str = "piano", seed: int = 0, max_excerpts: int | None = None,
            workers: int = 1, config: MusicEvalConfig | None = None,
            progress: bool = False) -> MusicReport:
    """Compare generated MIDI with real MIDI, excerpt by excerpt.

    Parameters
    ----------
    generated, reference : folder, file, or list of files and folders
        Folders are searched recursively for ``.mid`` and ``.midi`` files.
    excerpt_s : float
        Excerpt length in seconds (default 30); real files give consecutive excerpts.
    encoding : {"piano", "band"}
        Both sides are encoded and decoded with it before they are measured.
    seed : int
        Seed of the classifier test's subsampling and folds.
    max_excerpts : int, optional
        At most this many excerpts per file (the first ones).
    workers : int
        Processes that measure files (0 = one per CPU; default 1).
    config : MusicEvalConfig, optional
        All settings at once; overrides the keyword arguments above.

    Returns
    -------
    MusicReport
        Per statistic: both means and the KDE overlap; pooled-histogram intersections; the
        cross-validated accuracy of a classifier telling the sets apart (0.5 = indistinguishable).
    """
    distributions.require_eval_extra()
    if config is None:
        config = MusicEvalConfig(excerpt_s=excerpt_s, encoding=encoding, seed=seed,
                                 max_excerpts=max_excerpts, workers=workers)
    sides = []
    for name, source in (("generated", generated), ("reference", reference)):
        files = midi_files(source)
        if not files:
            raise MelodiaError(f"no MIDI files in {_label(source)} ({name})")
        log.info("measuring %d %s file(s)", len(files), name)
        sides.append(measure_files(files, config, progress=progress, desc=name))
    return compare_sets(*sides, config, generated=_label(generated), reference=_label(reference))


__all__ = ["MusicReport", "STAT_HELP", "StatComparison", "compare", "compare_sets"]
