"""Band music instrument by instrument: the statistics of :mod:`melodia.evaluate.music` per group.

Each file is read, round-tripped through the band encoding (10 ms steps, 32 velocity bins, at
most 16 instruments), and its tracks are split into the groups of :func:`melodia.features.band.group_of`
(drums = the drum-channel tracks, then bass, guitar, keys, strings, winds, synth, other), plus
``all``: every non-drum note merged, as the piano evaluation measures a file. All groups of a
file are cut on the same excerpts (``excerpt_s`` from the band's first onset), so excerpt ``i``
of the bass and of the drums cover the same seconds; an excerpt of a group with fewer than
``min_notes`` notes is left out of that group.

Pitched groups get :data:`~melodia.evaluate.music.STAT_NAMES` plus ``grid16`` and
``bar_return``; drums get :data:`DRUM_STAT_NAMES` (no key, pitch-class or clash statistics, no
note lengths, which mean nothing for a drum hit). ``grid16`` is the share of distinct onsets
within ``grid_tolerance_s`` (20 ms) of a 16th-note position of the file's own tempo map, the grid
starting at time 0 (:func:`melodia.evaluate.stats.grid_share`); ``bar_return`` the share of the
group's bars that return (:func:`melodia.evaluate.structure.bar_return`: Jaccard >= 0.8 of
(16th position, pitch) sets with an earlier bar, 4/4 at the file's tempo).

:func:`compare_by_group` compares two sets group by group (overlaps and the classifier test of
:func:`~melodia.evaluate.report.compare_sets`) where both sides have ``min_excerpts`` excerpts
of the group, from at least ``folds`` (5) files each (the classifier's folds keep a file's
excerpts together), and says why the other groups were skipped.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from melodia.encoding import get_encoding
from melodia.errors import MelodiaError, MidiReadError
from melodia.evaluate import distributions, keys, stats
from melodia.evaluate.music import (HISTOGRAM_EDGES, STAT_NAMES, ExcerptSet, MusicEvalConfig,
                                    cut_excerpts, excerpt_histograms, excerpt_stats, midi_files)
from melodia.evaluate.report import MusicReport, _fmt, _label, compare_sets
from melodia.evaluate.structure import bar_return
from melodia.midi import Score, read_midi
from melodia.midi.instruments import GROUPS, group_of

log = logging.getLogger(__name__)

ALL = "all"  # every non-drum note of a file, merged
BAND_GROUPS = (ALL,) + GROUPS  # report order
BAND_STAT_NAMES = STAT_NAMES + ("grid16", "bar_return")
DRUM_STAT_NAMES = ("note_density", "polyphony", "silence_share", "pitch_mean", "pitch_std",
                   "pitch_range", "velocity_mean", "velocity_std", "ioi_median",
                   "chord_repetition", "rhythm_recurrence", "ioi_entropy", "grid16",
                   "bar_return")


def stat_names(group: str) -> tuple[str, ...]:
    """The statistics measured for ``group``."""
    return DRUM_STAT_NAMES if group == "drums" else BAND_STAT_NAMES


@dataclass
class BandEvalConfig(MusicEvalConfig):
    """:class:`MusicEvalConfig` for band music: band encoding, plus the grid and group settings."""

    encoding: str = "band"  # the band encoding keeps programs and the drum channel
    grid_tolerance_s: float = stats.GRID_TOLERANCE_S  # onsets this close are on the 16th grid
    min_excerpts: int = 5  # a group is compared when both sides have this many excerpts of it

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.encoding != "band":
            raise ValueError("instrument groups need the band encoding (encoding='band')")
        if self.grid_tolerance_s <= 0 or self.min_excerpts < 2:
            raise ValueError("need grid_tolerance_s > 0 and min_excerpts >= 2")


@dataclass
class GroupExcerpts:
    """One group's measured excerpts of one file."""

    windows: list[int]  # which of the file's excerpts (0, 1, ...)
    starts_s: list[float]
    values: np.ndarray  # [excerpts, len(stat_names(group))]
    histograms: dict[str, np.ndarray]  # summed over the excerpts


@dataclass
class BandFile:
    """A file measured group by group; ``error`` says why it could not be read."""

    source: str
    windows: int = 0  # excerpts cut from the file (shared by its groups)
    groups: dict[str, GroupExcerpts] = field(default_factory=dict)
    error: str | None = None


# ------------------------------------------------------------------------------- measuring


def split_groups(score: Score) -> dict[str, np.ndarray]:
    """Notes of ``score`` by evaluation group (sorted by onset then pitch), ``all`` included."""
    parts: dict[str, list[np.ndarray]] = {}
    for track in score.tracks:
        if len(track.notes):
            group = "drums" if track.is_drum else group_of(track.program)
            parts.setdefault(group, []).append(track.notes)
            if not track.is_drum:
                parts.setdefault(ALL, []).append(track.notes)
    out = {}
    for group in BAND_GROUPS:
        if group in parts:
            notes = np.concatenate(parts[group])
            out[group] = notes[np.lexsort((notes["pitch"], notes["start_s"]))]
    return out


def measure_score(score: Score, config: BandEvalConfig, *, tempos: np.ndarray | None = None,
                  source: str = "") -> BandFile:
    """Cut ``score`` into excerpts shared by its groups and measure each group's excerpts.

    ``tempos`` is the tempo map behind ``grid16`` (default: the score's own).
    """
    tempos = score.tempos if tempos is None else tempos
    groups = split_groups(score)
    if not groups:
        return BandFile(source)
    every = np.concatenate(list(groups.values()))
    span = (float(every["start_s"].min()), float(every["end_s"].max()))
    out = BandFile(source)
    for group, notes in groups.items():
        excerpts = cut_excerpts(notes, config.excerpt_s, max_excerpts=config.max_excerpts,
                                source=source, span_s=span)
        out.windows = len(excerpts)
        kept = [(i, e) for i, e in enumerate(excerpts) if len(e.notes) >= config.min_notes]
        if not kept:
            continue
        names = stat_names(group)
        rows, hists = [], []
        for _, e in kept:
            s = excerpt_stats(e, config=config)
            onsets = e.start_s + stats.onset_times(e.notes)
            s["grid16"] = stats.grid_share(onsets, tempos, tolerance_s=config.grid_tolerance_s)
            s["bar_return"] = bar_return(e.notes, tempos, offset_s=e.start_s)
            rows.append([s[n] for n in names])
            h = excerpt_histograms(e)
            if group == "drums":
                del h["pitch_class"]  # drum "pitches" are kit pieces, not pitch classes
            hists.append(h)
        out.groups[group] = GroupExcerpts([i for i, _ in kept], [e.start_s for _, e in kept],
                                          np.array(rows, float),
                                          {k: sum(h[k] for h in hists) for k in hists[0]})
    return out


def measure_band_file(path: str | Path, config: BandEvalConfig) -> BandFile:
    """Read a file, round-trip it through the band encoding and measure it (:func:`measure_score`);
    ``grid16`` uses the file's own tempo map, not the encoding's binned one."""

    try:
        score = read_midi(path)
    except MidiReadError as err:
        return BandFile(str(path), error=str(err))
    enc = get_encoding(config.encoding)
    decoded = enc.decode(enc.encode(score))
    return measure_score(decoded, config, tempos=score.tempos, source=str(Path(path).resolve()))


def _measure_star(args: tuple[Path, BandEvalConfig]) -> BandFile:
    return measure_band_file(*args)


def measure_band_files(files: Sequence[str | Path], config: BandEvalConfig | None = None, *,
                       progress: bool = False, desc: str = "measuring") -> list[BandFile]:
    """:func:`measure_band_file` over files, in ``config.workers`` processes."""
    from tqdm.auto import tqdm

    config = config or BandEvalConfig()
    keys.key_profiles(config.key_profile)  # load music21 once here; forked workers inherit it
    jobs = [(Path(f), config) for f in files]
    workers = config.workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            chunk = max(1, len(jobs) // (4 * workers))
            return list(tqdm(pool.map(_measure_star, jobs, chunksize=chunk), total=len(jobs),
                             desc=desc, unit="file", disable=not progress, leave=False))
    return [_measure_star(j) for j in tqdm(jobs, desc=desc, unit="file", disable=not progress,
                                           leave=False)]


def group_set(measured: Sequence[BandFile], group: str) -> ExcerptSet:
    """The excerpts of one group over measured files, as :func:`compare_sets` takes them."""
    names = stat_names(group)
    parts = [(f, f.groups[group]) for f in measured if group in f.groups]
    values = (np.concatenate([g.values for _, g in parts]) if parts
              else np.empty((0, len(names))))
    edges = {k: e for k, e in HISTOGRAM_EDGES.items() if not (group == "drums"
                                                             and k == "pitch_class")}
    hist = {k: np.zeros(len(e) - 1, np.int64) for k, e in edges.items()}
    for _, g in parts:
        for k in hist:
            hist[k] += g.histograms[k]
    return ExcerptSet(values, [f.source for f, g in parts for _ in g.windows],
                      [s for _, g in parts for s in g.starts_s], hist, files=len(measured),
                      skipped=[f.error for f in measured if f.error], names=names)


# ------------------------------------------------------------------------------- comparing


@dataclass
class BandReport:
    """Generated against reference band music, one :class:`MusicReport` per instrument group."""

    generated: str
    reference: str
    reports: dict[str, MusicReport]
    skipped_groups: dict[str, str]  # group -> why it was not compared
    config: BandEvalConfig
    skipped_files: list[str] = field(default_factory=list)

    def __getitem__(self, group: str) -> MusicReport:
        return self.reports[group]

    def table(self) -> str:
        """A summary row per group, then each group's statistics side by side."""
        c = self.config
        lines = [f"generated: {self.generated}", f"reference: {self.reference}",
                 f"excerpts of {c.excerpt_s:g} s with >= {c.min_notes} notes of the group; "
                 f"grid16 tolerance {1000 * c.grid_tolerance_s:g} ms", "",
                 f"{'group':<9}{'gen exc':>8}{'ref exc':>8}{'gen files':>10}{'ref files':>10}"
                 f"{'overlap':>9}{'classifier':>11}{'+-':>7}"]
        for group, r in self.reports.items():
            lines.append(f"{group:<9}{r.generated_excerpts:>8}{r.reference_excerpts:>8}"
                         f"{r.generated_files:>10}{r.reference_files:>10}"
                         f"{_fmt(r.mean_overlap):>9}{_fmt(r.classifier_accuracy):>11}"
                         f"{_fmt(r.classifier_std):>7}")
        lines.append("(overlap: mean KDE overlap, 1 = same; classifier: cross-validated accuracy "
                     "telling the sets apart, 0.5 = indistinguishable)")
        for group, why in self.skipped_groups.items():
            lines.append(f"skipped {group}: {why}")
        for group, r in self.reports.items():
            lines += ["", f"[{group}]", f"{'statistic':<22}{'generated':>11}{'reference':>11}"
                      f"{'overlap':>9}"]
            lines += [f"{s.name:<22}{_fmt(s.generated_mean):>11}{_fmt(s.reference_mean):>11}"
                      f"{_fmt(s.overlap):>9}" for s in r.stats]
        if self.skipped_files:
            lines.append(f"\nskipped {len(self.skipped_files)} unreadable file(s)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: every group's :meth:`MusicReport.to_dict`, and the skipped groups."""
        return {"generated": self.generated, "reference": self.reference,
                "groups": {g: r.to_dict() for g, r in self.reports.items()},
                "skipped_groups": dict(self.skipped_groups), "config": self.config.to_dict(),
                "skipped_files": list(self.skipped_files)}


def compare_measured(gen: Sequence[BandFile], ref: Sequence[BandFile], config: BandEvalConfig,
                     *, generated: str = "generated", reference: str = "reference",
                     groups: Iterable[str] | None = None) -> BandReport:
    """Compare two sets of measured files group by group (see :func:`compare_by_group`)."""
    reports, skipped = {}, {}
    for group in groups or BAND_GROUPS:
        g, r = group_set(gen, group), group_set(ref, group)
        if not len(g.values) and not len(r.values):
            continue
        if min(len(g.values), len(r.values)) < config.min_excerpts:
            skipped[group] = (f"{len(g.values)} generated and {len(r.values)} reference "
                              f"excerpts with >= {config.min_notes} notes (need "
                              f">= {config.min_excerpts} on both sides)")
            continue
        files = (len(set(g.sources)), len(set(r.sources)))
        if min(files) < config.folds:
            skipped[group] = (f"in {files[0]} generated and {files[1]} reference files (need "
                              f">= {config.folds} on both sides, one per classifier fold)")
            continue
        report = compare_sets(g, r, config, generated=generated, reference=reference)
        report.generated_files = len(set(g.sources))  # files that have this group
        report.reference_files = len(set(r.sources))
        reports[group] = report
    errors = [f.error for f in list(gen) + list(ref) if f.error]
    return BandReport(generated, reference, reports, skipped, config, errors)


def compare_by_group(generated: str | Path | Iterable[str | Path],
                     reference: str | Path | Iterable[str | Path], *, excerpt_s: float = 30.0,
                     seed: int = 0, max_excerpts: int | None = None, workers: int = 1,
                     min_excerpts: int = 5, groups: Iterable[str] | None = None,
                     config: BandEvalConfig | None = None,
                     progress: bool = False) -> BandReport:
    """Compare generated band MIDI with real band MIDI, instrument group by group.

    Parameters
    ----------
    generated, reference : folder, file, or list of files and folders
        Folders are searched recursively for ``.mid`` and ``.midi`` files.
    excerpt_s : float
        Excerpt length in seconds (default 30), shared by the groups of a file.
    seed, max_excerpts, workers
        As in :func:`~melodia.evaluate.report.compare`.
    min_excerpts : int
        A group is compared only when both sides have at least this many excerpts of it
        (default 5), from at least ``config.folds`` (5) files; the others are listed in ``BandReport.skipped_groups`` with the counts.
    groups : iterable of str, optional
        Groups to compare, of :data:`BAND_GROUPS` (default all, ``all`` first).
    config : BandEvalConfig, optional
        All settings at once; overrides the keyword arguments above.

    Returns
    -------
    BandReport
        ``reports[group]`` is a :class:`MusicReport` (statistics, overlaps, classifier test).
    """
    distributions.require_eval_extra()
    if config is None:
        config = BandEvalConfig(excerpt_s=excerpt_s, seed=seed, max_excerpts=max_excerpts,
                                workers=workers, min_excerpts=min_excerpts)
    unknown = set(groups or ()) - set(BAND_GROUPS)
    if unknown:
        raise MelodiaError(f"unknown groups {sorted(unknown)}; choose from {BAND_GROUPS}")
    sides = []
    for name, source in (("generated", generated), ("reference", reference)):
        files = midi_files(source)
        if not files:
            raise MelodiaError(f"no MIDI files in {_label(source)} ({name})")
        log.info("measuring %d %s file(s)", len(files), name)
        sides.append(measure_band_files(files, config, progress=progress, desc=name))
    report = compare_measured(*sides, config, generated=_label(generated),
                              reference=_label(reference), groups=groups)
    if not report.reports:
        raise MelodiaError("no instrument group has enough excerpts on both sides: "
                           + "; ".join(f"{g}: {w}" for g, w in report.skipped_groups.items()))
    return report


__all__ = ["ALL", "BAND_GROUPS", "BAND_STAT_NAMES", "BandEvalConfig", "BandFile", "BandReport",
           "DRUM_STAT_NAMES", "GroupExcerpts", "compare_by_group", "compare_measured",
           "group_set", "measure_band_file", "measure_band_files", "measure_score",
           "split_groups", "stat_names"]
