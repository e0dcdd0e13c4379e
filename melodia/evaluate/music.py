"""Does generated music sound like real music? Per-excerpt statistics of two sets of MIDI files.

Both sets go through the same path: each file is encoded and decoded with one encoding (piano by
default), so both sides carry the same quantisation (10 ms, 32 velocity bins, sustain pedal
folded into note lengths); the notes of all non-drum tracks are merged; leading silence is
dropped; and the music is cut into consecutive, non-overlapping excerpts of ``excerpt_s``
seconds (30). A final piece shorter than half an excerpt is dropped, so a generated 30 s file
is one excerpt. Excerpts with fewer than ``min_notes`` notes are left out.

Each excerpt gets the statistics of :data:`STAT_NAMES` (see :func:`excerpt_stats`), and the two
sets are compared statistic by statistic (:func:`~melodia.evaluate.distributions.kde_overlap`),
by pooled histograms, and by a two-sample classifier (:func:`compare`; the report is
:class:`~melodia.evaluate.report.MusicReport`).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from melodia.encoding import get_encoding
from melodia.errors import MelodiaError, MidiReadError
from melodia.evaluate import keys, stats
from melodia.evaluate.structure import STRUCTURE_NAMES, structure_stats
from melodia.midi import NOTE_DTYPE, Score

log = logging.getLogger(__name__)

#: Per-excerpt statistics, in report order (the classifier's features).
STAT_NAMES = ("note_density", "polyphony", "silence_share", "pitch_mean", "pitch_std",
              "pitch_range", "length_median", "long_2s", "long_4s", "velocity_mean",
              "velocity_std", "ioi_median", "pitch_class_entropy", "semitone_clash",
              "key_correlation", "key_stability", "key_changes_per_min", "melodic_repetition",
              "chord_repetition") + STRUCTURE_NAMES

#: Bin edges of the pooled histograms (values outside are clipped into the end bins).
HISTOGRAM_EDGES = {
    "pitch_class": np.arange(13) - 0.5,  # note counts per pitch class C..B
    "velocity": np.arange(0, 129, 8),  # note counts in 16 velocity bands
    "duration": np.geomspace(0.01, 10.0, 25),  # note lengths in seconds, log-spaced
    "ioi": np.geomspace(0.01, 5.0, 25),  # gaps between distinct onsets in seconds, log-spaced
}


@dataclass
class MusicEvalConfig:
    """How excerpts are cut and measured. Defaults are those of ``melodia evaluate --generated``."""

    excerpt_s: float = 30.0  # excerpt length; real files give consecutive excerpts of this length
    max_excerpts: int | None = None  # per file, the first ones (None = all)
    encoding: str = "piano"  # round trip both sides through this encoding: piano or band
    min_notes: int = 8  # excerpts with fewer notes are left out
    grid_s: float = stats.GRID_S  # frame spacing for polyphony and clashes
    key_window_s: float = 5.0  # window of the local keys behind key stability
    key_hop_s: float = 2.5
    key_profile: str = "krumhansl"  # music21 key profile: krumhansl, aarden, bellman, temperley
    repetition_n: int = 4  # n-gram length of the repetition statistics
    folds: int = 5  # cross-validation folds of the classifier test
    seed: int = 0  # subsampling and fold assignment of the classifier test
    workers: int = 1  # processes measuring files (0 = one per CPU)

    def __post_init__(self) -> None:
        if self.excerpt_s <= 0 or self.grid_s <= 0:
            raise ValueError("excerpt_s and grid_s must be > 0")
        if self.max_excerpts is not None and self.max_excerpts < 1:
            raise ValueError("max_excerpts must be >= 1 (or None for all)")
        if not 0 < self.key_hop_s <= self.key_window_s:
            raise ValueError("need 0 < key_hop_s <= key_window_s")
        if self.key_profile not in keys.PROFILES:
            raise ValueError(f"key_profile must be one of {sorted(keys.PROFILES)}")
        if self.repetition_n < 1 or self.folds < 2 or self.min_notes < 1 or self.workers < 0:
            raise ValueError("need repetition_n >= 1, folds >= 2, min_notes >= 1, workers >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MusicEvalConfig":
        return cls(**data)


@dataclass
class Excerpt:
    """Notes of one excerpt, times in seconds from its start; notes may ring past ``duration_s``."""

    source: str
    start_s: float  # where the excerpt starts in the (round-tripped) file
    duration_s: float
    notes: np.ndarray = field(default_factory=lambda: np.empty(0, NOTE_DTYPE))


# ---------------------------------------------------------------------------------- excerpts


def score_notes(score: Score) -> np.ndarray:
    """The notes of all non-drum tracks of ``score`` in one array, by onset then pitch."""
    parts = [t.notes for t in score.tracks if not t.is_drum]
    notes = np.concatenate(parts) if parts else np.empty(0, NOTE_DTYPE)
    return notes[np.lexsort((notes["pitch"], notes["start_s"]))]


def cut_excerpts(notes: np.ndarray, excerpt_s: float, *, max_excerpts: int | None = None,
                 source: str = "", span_s: tuple[float, float] | None = None) -> list[Excerpt]:
    """Consecutive excerpts of ``excerpt_s`` from the first onset to the last note end; a final
    piece shorter than half an excerpt is dropped. A note belongs to the excerpt of its onset.

    ``span_s = (first onset, last end)`` cuts on another span instead (that of a whole band,
    so the parts of several instruments fall into the same excerpts, some of them empty)."""
    if not len(notes) and span_s is None:
        return []
    origin, end = span_s if span_s is not None else (float(notes["start_s"].min()),
                                                      float(notes["end_s"].max()))
    total_s = end - origin
    count = int(total_s // excerpt_s) + (total_s % excerpt_s >= excerpt_s / 2)
    if max_excerpts is not None:
        count = min(count, max_excerpts)
    index = ((notes["start_s"] - origin) // excerpt_s).astype(np.int64)
    out = []
    for i in range(count):
        part = notes[index == i].copy()
        start = origin + i * excerpt_s
        part["start_s"] -= start
        part["end_s"] -= start
        out.append(Excerpt(source, start, min(excerpt_s, total_s - i * excerpt_s), part))
    return out


def file_excerpts(path: str | Path, *, excerpt_s: float = 30.0, encoding: str = "piano",
                  max_excerpts: int | None = None) -> list[Excerpt]:
    """Round-trip a MIDI file through ``encoding`` and cut it into excerpts (:func:`cut_excerpts`).

    Raises
    ------
    MidiReadError
        The file cannot be read.
    """

    enc = get_encoding(encoding)
    score = enc.decode(enc.encode_file(path))
    return cut_excerpts(score_notes(score), excerpt_s, max_excerpts=max_excerpts,
                        source=str(path))


# -------------------------------------------------------------------------------- statistics


def _as_excerpt(music: Excerpt | Score | np.ndarray, duration_s: float | None) -> Excerpt:
    if isinstance(music, Excerpt):
        return music
    notes = score_notes(music) if isinstance(music, Score) else np.asarray(music)
    if duration_s is None and len(notes):  # the whole piece, from its first onset
        origin = float(notes["start_s"].min())
        shifted = notes.copy()
        shifted["start_s"] -= origin
        shifted["end_s"] -= origin
        return Excerpt("", origin, float(shifted["end_s"].max()), shifted)
    return Excerpt("", 0.0, duration_s or 0.0, notes)


def excerpt_stats(music: Excerpt | Score | np.ndarray, duration_s: float | None = None, *,
                  config: MusicEvalConfig | None = None) -> dict[str, float]:
    """The statistics of :data:`STAT_NAMES` for one excerpt.

    Parameters
    ----------
    music : Excerpt, Score or note array
        A score or note array is measured whole, from its first onset to its last note end,
        unless ``duration_s`` is given (then times count from 0).
    config : MusicEvalConfig, optional
        Frame grid, key windows and profile, repetition n-gram length (defaults otherwise).

    Returns
    -------
    dict
        Name -> value; ``nan`` where a statistic is undefined (e.g. no notes).
    """
    config = config or MusicEvalConfig()
    ex = _as_excerpt(music, duration_s)
    notes, dur = ex.notes, ex.duration_s
    roll = stats.piano_roll(notes, dur, config.grid_s)
    ks = keys.key_stats(notes, dur, keys.key_profiles(config.key_profile),
                        window_s=config.key_window_s, hop_s=config.key_hop_s)
    out = {"note_density": stats.note_density(notes, dur), "polyphony": stats.polyphony(roll),
           "silence_share": stats.silence_share(roll), **stats.pitch_stats(notes),
           **stats.length_stats(notes), **stats.velocity_stats(notes),
           "ioi_median": stats.inter_onset_interval(notes),
           "pitch_class_entropy": stats.pitch_class_entropy(notes),
           "semitone_clash": stats.semitone_clash(roll), **ks.to_dict(),
           "melodic_repetition": stats.melodic_repetition(notes, config.repetition_n),
           "chord_repetition": stats.chord_repetition(notes, config.repetition_n),
           **structure_stats(notes, dur, config.repetition_n)}
    return {name: float(out[name]) for name in STAT_NAMES}


def excerpt_histograms(excerpt: Excerpt) -> dict[str, np.ndarray]:
    """Counts over :data:`HISTOGRAM_EDGES` of one excerpt's pitch classes, velocities, note lengths
    and inter-onset intervals (summed over excerpts for the pooled histograms)."""
    notes = excerpt.notes
    values = {"pitch_class": notes["pitch"] % 12, "velocity": notes["velocity"],
              "duration": notes["end_s"] - notes["start_s"],
              "ioi": np.diff(stats.onset_times(notes))}
    out = {}
    for name, edges in HISTOGRAM_EDGES.items():
        v = np.clip(np.asarray(values[name], float), edges[0], edges[-1])
        out[name] = np.histogram(v, bins=edges)[0]
    return out


# ------------------------------------------------------------------------------- collection


@dataclass
class ExcerptSet:
    """Statistics of every excerpt of a set of files, and their pooled histograms."""

    values: np.ndarray  # [excerpts, len(STAT_NAMES)]
    sources: list[str]  # the file of each excerpt
    starts_s: list[float]  # where each excerpt starts in its file
    histograms: dict[str, np.ndarray]
    files: int = 0
    skipped: list[str] = field(default_factory=list)  # unreadable files, with the reason
    names: tuple[str, ...] = STAT_NAMES  # the statistic of each column

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]


def midi_files(source: str | Path | Iterable[str | Path]) -> list[Path]:
    """A folder (searched recursively for .mid/.midi), one file, or a list of files and folders."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
        if not path.exists():
            raise MelodiaError(f"{path} does not exist")
        return [path]
    return [f for s in source for f in midi_files(s)]


def _measure_file(path: Path, config: MusicEvalConfig) -> tuple[list, list, dict, str | None]:
    """Statistics (rows, excerpt starts), summed histograms and an error message of one file."""

    try:
        excerpts = file_excerpts(path, excerpt_s=config.excerpt_s, encoding=config.encoding,
                                 max_excerpts=config.max_excerpts)
    except MidiReadError as err:
        return [], [], {}, str(err)
    excerpts = [e for e in excerpts if len(e.notes) >= config.min_notes]
    rows = [list(excerpt_stats(e, config=config).values()) for e in excerpts]
    hists = [excerpt_histograms(e) for e in excerpts]
    summed = {k: sum(h[k] for h in hists) for k in HISTOGRAM_EDGES} if hists else {}
    return rows, [e.start_s for e in excerpts], summed, None


def _measure_star(args: tuple[Path, MusicEvalConfig]) -> tuple[list, list, dict, str | None]:
    return _measure_file(*args)


def measure_files(files: Sequence[str | Path], config: MusicEvalConfig | None = None, *,
                  progress: bool = False, desc: str = "measuring") -> ExcerptSet:
    """Cut every file into excerpts and measure them, in ``config.workers`` processes."""
    from tqdm.auto import tqdm

    config = config or MusicEvalConfig()
    keys.key_profiles(config.key_profile)  # load music21 once here; forked workers inherit it
    files = [Path(f) for f in files]
    workers = config.workers or os.cpu_count() or 1
    jobs = [(f, config) for f in files]
    if workers > 1 and len(files) > 1:
        with ProcessPoolExecutor(min(workers, len(files))) as pool:
            chunk = max(1, len(files) // (4 * workers))
            results = list(tqdm(pool.map(_measure_star, jobs, chunksize=chunk), total=len(files),
                                desc=desc, unit="file", disable=not progress, leave=False))
    else:
        results = [_measure_star(j) for j in tqdm(jobs, desc=desc, unit="file",
                                                  disable=not progress, leave=False)]
    rows, sources, starts, skipped = [], [], [], []
    hist = {k: np.zeros(len(e) - 1, np.int64) for k, e in HISTOGRAM_EDGES.items()}
    for path, (r, s, h, error) in zip(files, results):
        if error:
            log.warning("skipping %s", error)
            skipped.append(error)
        rows += r
        starts += s
        sources += [str(path.resolve())] * len(r)
        for k, counts in h.items():
            hist[k] += counts
    values = np.array(rows, float).reshape(len(rows), len(STAT_NAMES))
    return ExcerptSet(values, sources, starts, hist, files=len(files), skipped=skipped)


__all__ = ["Excerpt", "ExcerptSet", "HISTOGRAM_EDGES", "MusicEvalConfig", "STAT_NAMES",
           "cut_excerpts", "excerpt_histograms", "excerpt_stats", "file_excerpts",
           "measure_files", "midi_files", "score_notes"]
