"""Structure statistics of one excerpt: does anything come back?

The surface statistics (:mod:`melodia.evaluate.stats`) say how music sounds moment to moment;
these say whether its material returns, which is what real playing does and an LSTM forgets.
Onsets struck within ``GROUP_S`` (30 ms) of each other form one *onset group* (a chord, or a
melody note with its accompaniment); gaps are measured between groups.

Piano (every excerpt):

- ``motif_recurrence``: share of the 4-interval windows of the top line (the highest pitch of
  each onset group) whose interval pattern occurs at least twice in the excerpt;
- ``rhythm_recurrence``: the same share for 4 successive gaps between onset groups, each gap in
  half-octave log bins from 10 ms (:func:`gap_bins`);
- ``chroma_return``: for each 2 s window (hop 1 s) from 6 s on, the best cosine similarity of its
  pitch-class profile (weighted by sounding time) with any window that ended at least 2 s before
  it starts; the mean over windows with sound;
- ``ioi_entropy``: entropy in bits of the gap bins;
- ``chord_share``: share of onset groups of 3 or more notes.

Band (per part, :func:`bar_return`): the share of bars whose set of (16th-grid position, pitch)
has Jaccard similarity >= 0.8 with an earlier bar of the same part, in 4/4 at the file's tempo.

>>> import numpy as np
>>> from melodia.midi import make_notes
>>> riff = [60, 62, 64, 65, 67, 65, 64, 62]
>>> notes = make_notes(np.arange(64) * 0.25, np.arange(64) * 0.25 + 0.2, riff * 8, [80] * 64)
>>> motif_recurrence(notes), rhythm_recurrence(notes), chord_share(notes)
(1.0, 1.0, 0.0)
"""

from __future__ import annotations

import math

import numpy as np

from melodia.evaluate.stats import grid_positions, onset_group_index, recurring_share

GROUP_S = 0.03  # onsets this close together are struck together
GAP_FLOOR_S = 0.01  # the first gap bin: 10 ms (the piano encoding's step)
CHROMA_WINDOW_S, CHROMA_HOP_S, CHROMA_FROM_S, CHROMA_GAP_S = 2.0, 1.0, 6.0, 2.0
BAR_JACCARD = 0.8  # a bar this similar to an earlier one returns

STRUCTURE_NAMES = ("motif_recurrence", "rhythm_recurrence", "chroma_return", "ioi_entropy",
                   "chord_share")


def onset_groups(notes: np.ndarray, tolerance_s: float = GROUP_S
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, firsts, times)``: the notes' order by onset, where each onset group starts in
    that order, and each group's onset time."""
    order, firsts = onset_group_index(notes, tolerance_s)
    return order, firsts, notes["start_s"][order][firsts]


def gap_bins(notes: np.ndarray, tolerance_s: float = GROUP_S) -> np.ndarray:
    """Each gap between successive onset groups as a half-octave log bin: bin ``k`` holds gaps
    of ``10 ms * 2 ** (k / 2)`` up to the next bin (gaps under 10 ms fall in bin 0)."""
    if not len(notes):
        return np.empty(0, np.int64)
    gaps = np.diff(onset_groups(notes, tolerance_s)[2])
    return np.floor(2 * np.log2(np.maximum(gaps, GAP_FLOOR_S) / GAP_FLOOR_S)).astype(np.int64)


def motif_recurrence(notes: np.ndarray, n: int = 4) -> float:
    """Share of the top line's ``n``-interval windows whose pattern recurs in the excerpt."""
    if not len(notes):
        return math.nan
    order, firsts, _ = onset_groups(notes)
    top = np.maximum.reduceat(notes["pitch"][order].astype(np.int64), firsts)
    return recurring_share(np.diff(top), n)


def rhythm_recurrence(notes: np.ndarray, n: int = 4) -> float:
    """Share of the windows of ``n`` successive gap bins that recur in the excerpt."""
    return recurring_share(gap_bins(notes), n)


def ioi_entropy(notes: np.ndarray) -> float:
    """Entropy in bits of the distribution of gap bins (0: one gap length throughout)."""
    bins = gap_bins(notes)
    if not len(bins):
        return math.nan
    p = np.bincount(bins) / len(bins)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no "-0.0"


def chord_share(notes: np.ndarray, size: int = 3) -> float:
    """Share of onset groups of at least ``size`` notes."""
    if not len(notes):
        return math.nan
    firsts = onset_groups(notes)[1]
    sizes = np.diff(np.append(firsts, len(notes)))
    return float((sizes >= size).mean())


def chroma_profiles(notes: np.ndarray, starts_s: np.ndarray, window_s: float) -> np.ndarray:
    """``[windows, 12]``: seconds each pitch class sounds in ``[start, start + window_s)``."""
    out = np.zeros((len(starts_s), 12))
    if not len(notes):
        return out
    pc = notes["pitch"].astype(np.int64) % 12
    for i, start in enumerate(starts_s):
        overlap = (np.minimum(notes["end_s"], start + window_s)
                   - np.maximum(notes["start_s"], start))
        out[i] = np.bincount(pc, weights=np.maximum(overlap, 0.0), minlength=12)
    return out


def chroma_return(notes: np.ndarray, duration_s: float, *, window_s: float = CHROMA_WINDOW_S,
                  hop_s: float = CHROMA_HOP_S, from_s: float = CHROMA_FROM_S,
                  gap_s: float = CHROMA_GAP_S) -> float:
    """Mean over windows from ``from_s`` on (with sound) of the best cosine similarity of the
    window's pitch-class profile with any window that ended ``gap_s`` or more before it starts."""
    starts = np.arange(0.0, duration_s - window_s + 1e-9, hop_s)
    if not len(starts) or not len(notes):
        return math.nan
    profiles = chroma_profiles(notes, starts, window_s)
    norms = np.linalg.norm(profiles, axis=1)
    unit = np.divide(profiles, norms[:, None], out=np.zeros_like(profiles),
                     where=norms[:, None] > 0)
    best = [float((unit[starts + window_s <= start - gap_s + 1e-9] @ unit[i]).max(initial=0.0))
            for i, start in enumerate(starts) if start >= from_s - 1e-9 and norms[i] > 0]
    return float(np.mean(best)) if best else math.nan


def structure_stats(notes: np.ndarray, duration_s: float, n: int = 4) -> dict[str, float]:
    """The :data:`STRUCTURE_NAMES` statistics of one excerpt."""
    return {"motif_recurrence": motif_recurrence(notes, n),
            "rhythm_recurrence": rhythm_recurrence(notes, n),
            "chroma_return": chroma_return(notes, duration_s),
            "ioi_entropy": ioi_entropy(notes), "chord_share": chord_share(notes)}


def bar_return(notes: np.ndarray, tempos: np.ndarray | None, *, offset_s: float = 0.0,
               per_quarter: int = 4, beats_per_bar: int = 4,
               threshold: float = BAR_JACCARD) -> float:
    """Share of a part's bars (after its first) whose set of (grid position, pitch) has Jaccard
    similarity ``>= threshold`` with an earlier bar; ``nan`` with fewer than two bars.

    Onsets snap to the nearest ``1 / per_quarter`` of a quarter note under the tempo map
    ``tempos`` (``TEMPO_DTYPE``; None: 120 qpm); ``offset_s`` is where the excerpt starts in its
    file, so bars count from the file's start. Bars without notes are not counted.
    """
    if not len(notes):
        return math.nan
    pos = np.rint(grid_positions(notes["start_s"] + offset_s, tempos, per_quarter))
    bar, slot = np.divmod(pos.astype(np.int64), per_quarter * beats_per_bar)
    bars: dict[int, set[tuple[int, int]]] = {}
    for b, s, p in zip(bar.tolist(), slot.tolist(), notes["pitch"].tolist()):
        bars.setdefault(b, set()).add((s, p))
    ordered = [bars[b] for b in sorted(bars)]
    if len(ordered) < 2:
        return math.nan
    returns = sum(any(len(cur & old) >= threshold * len(cur | old) for old in ordered[:i])
                  for i, cur in enumerate(ordered) if i)
    return returns / (len(ordered) - 1)


__all__ = ["BAR_JACCARD", "GROUP_S", "STRUCTURE_NAMES", "bar_return", "chord_share",
           "chroma_profiles", "chroma_return", "gap_bins", "ioi_entropy", "motif_recurrence",
           "onset_groups", "rhythm_recurrence", "structure_stats"]
