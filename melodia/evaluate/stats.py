"""Statistics of one excerpt of music: small pure functions of a note array (``NOTE_DTYPE``).

Every function takes the excerpt's notes, with times in seconds measured from the start of the
excerpt, and (where time matters) ``duration_s``, the length of the excerpt; notes may ring past
``duration_s`` and are cut there wherever sounding time is measured. A statistic that is
undefined for an excerpt (an inter-onset interval of a single onset) is ``nan``.

Frame statistics (polyphony, semitone clashes) sample the music on a grid of ``grid_s`` seconds
(50 ms): frame ``k`` is the instant ``(k + 0.5) * grid_s``, and a note sounds there when
``start_s <= t < end_s``; so a note shorter than one frame may fall between two samples.
Key statistics live in :mod:`melodia.evaluate.keys`.
"""

from __future__ import annotations

import math

import numpy as np

GRID_S = 0.05  # frame spacing of the piano roll behind polyphony and clashes
ONSET_TOLERANCE_S = 0.005  # closer onsets count as one (the piano encoding's step is 10 ms)
LONG_NOTES_S = (2.0, 4.0)  # note lengths whose exceedance shares are reported
GRID_TOLERANCE_S = 0.02  # an onset this close to a grid position counts as on the grid
DEFAULT_QPM = 120.0  # tempo of a file without a tempo map (MIDI's default)


def piano_roll(notes: np.ndarray, duration_s: float, grid_s: float = GRID_S) -> np.ndarray:
    """Boolean ``[frames, 128]``: pitch ``p`` sounds at frame ``k`` (at ``(k + 0.5) grid_s``)."""
    frames = max(int(math.ceil(duration_s / grid_s - 1e-9)), 0)
    counts = np.zeros((frames + 1, 128), np.int32)
    if frames and len(notes):
        first = np.ceil(notes["start_s"] / grid_s - 0.5).astype(np.int64)
        stop = np.ceil(notes["end_s"] / grid_s - 0.5).astype(np.int64)
        first, stop = np.clip(first, 0, frames), np.clip(stop, 0, frames)
        keep = stop > first
        pitch = notes["pitch"][keep].astype(np.int64)
        np.add.at(counts, (first[keep], pitch), 1)
        np.add.at(counts, (stop[keep], pitch), -1)
    return np.cumsum(counts, axis=0)[:frames] > 0


def note_density(notes: np.ndarray, duration_s: float) -> float:
    """Notes per second: note onsets in the excerpt divided by its length."""
    return len(notes) / duration_s if duration_s > 0 else math.nan


def polyphony(roll: np.ndarray) -> float:
    """Mean number of distinct pitches sounding, over the frames where at least one sounds."""
    voices = roll.sum(axis=1)
    sounding = voices > 0
    return float(voices[sounding].mean()) if sounding.any() else math.nan


def silence_share(roll: np.ndarray) -> float:
    """Share of frames where nothing sounds."""
    return float((roll.sum(axis=1) == 0).mean()) if len(roll) else math.nan


def semitone_clash(roll: np.ndarray) -> float:
    """Share of sounding frames where two pitches exactly one semitone apart sound together.

    Only adjacent keys count (C4 with C#4), not the same pitch classes in other octaves (C4 with
    C#5, a minor ninth).
    """
    sounding = roll.any(axis=1)
    if not sounding.any():
        return math.nan
    clash = (roll[:, 1:] & roll[:, :-1]).any(axis=1)
    return float(clash[sounding].mean())


def pitch_stats(notes: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation of MIDI pitch over notes, and range (highest - lowest)."""
    if not len(notes):
        return {"pitch_mean": math.nan, "pitch_std": math.nan, "pitch_range": math.nan}
    pitch = notes["pitch"].astype(float)
    return {"pitch_mean": float(pitch.mean()), "pitch_std": float(pitch.std()),
            "pitch_range": float(pitch.max() - pitch.min())}


def length_stats(notes: np.ndarray) -> dict[str, float]:
    """Median note length in seconds and the shares of notes longer than 2 s and 4 s.

    Lengths are the notes' own (sustain pedal applied by the encoding), not cut at the excerpt end.
    """
    if not len(notes):
        return {"length_median": math.nan, **{f"long_{int(s)}s": math.nan for s in LONG_NOTES_S}}
    length = notes["end_s"] - notes["start_s"]
    out = {"length_median": float(np.median(length))}
    out.update({f"long_{int(s)}s": float((length > s).mean()) for s in LONG_NOTES_S})
    return out


def velocity_stats(notes: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation of MIDI velocity (1-127) over notes."""
    if not len(notes):
        return {"velocity_mean": math.nan, "velocity_std": math.nan}
    velocity = notes["velocity"].astype(float)
    return {"velocity_mean": float(velocity.mean()), "velocity_std": float(velocity.std())}


def onset_times(notes: np.ndarray, tolerance_s: float = ONSET_TOLERANCE_S) -> np.ndarray:
    """Distinct onset times, ascending; an onset within ``tolerance_s`` of the previous kept one
    joins it (so the notes of a chord share one onset)."""
    starts = np.sort(notes["start_s"])
    if len(starts) < 2:
        return starts
    new = np.concatenate([[True], np.diff(starts) > tolerance_s])
    return starts[new]


def inter_onset_interval(notes: np.ndarray) -> float:
    """Median gap in seconds between successive distinct onset times."""
    onsets = onset_times(notes)
    return float(np.median(np.diff(onsets))) if len(onsets) > 1 else math.nan


def pitch_class_entropy(notes: np.ndarray) -> float:
    """Shannon entropy in bits of the pitch-class histogram (each note counts once).

    0 when every note has one pitch class, ``log2(12) = 3.585`` when all twelve are equally common.
    """
    if not len(notes):
        return math.nan
    counts = np.bincount(notes["pitch"].astype(np.int64) % 12, minlength=12)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum() + 0.0)


def onset_group_index(notes: np.ndarray,
                       tolerance_s: float = ONSET_TOLERANCE_S) -> tuple[np.ndarray, np.ndarray]:
    """Notes' order by onset, and the start (in that order) of each distinct onset's group."""
    order = np.argsort(notes["start_s"], kind="stable")
    starts = notes["start_s"][order]
    new = np.concatenate([[True], np.diff(starts) > tolerance_s])
    return order, np.flatnonzero(new)


def top_line(notes: np.ndarray) -> np.ndarray:
    """The highest pitch struck at each distinct onset, in time order."""
    if not len(notes):
        return np.empty(0, np.int64)
    order, firsts = onset_group_index(notes)
    return np.maximum.reduceat(notes["pitch"][order].astype(np.int64), firsts)


def onset_pitch_sets(notes: np.ndarray) -> np.ndarray:
    """``[onsets, 2]`` uint64 bit masks of the pitches struck at each distinct onset (pitches
    0-63 in the first column, 64-127 in the second), in time order."""
    if not len(notes):
        return np.empty((0, 2), np.uint64)
    order, firsts = onset_group_index(notes)
    pitch = notes["pitch"][order].astype(np.uint64)
    low = np.where(pitch < 64, np.uint64(1) << (pitch % np.uint64(64)), np.uint64(0))
    high = np.where(pitch >= 64, np.uint64(1) << (pitch % np.uint64(64)), np.uint64(0))
    return np.stack([np.bitwise_or.reduceat(low, firsts),
                     np.bitwise_or.reduceat(high, firsts)], axis=1)


def recurring_share(items: np.ndarray, n: int) -> float:
    """Share of the n-grams of ``items`` (all ``len - n + 1`` positions; an item may be a row)
    whose exact n-gram occurs at least twice in the sequence; ``nan`` without any n-gram."""
    items = np.asarray(items)
    if len(items) < n:
        return math.nan
    items = items.reshape(len(items), -1)
    windows = np.lib.stride_tricks.sliding_window_view(items, n, axis=0)
    grams = windows.reshape(len(windows), -1)
    _, inverse, counts = np.unique(grams, axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.reshape(-1)] > 1).mean())


def melodic_repetition(notes: np.ndarray, n: int = 4) -> float:
    """Share of top-line interval n-grams that recur within the excerpt.

    The top line is the highest pitch struck at each distinct onset; its intervals are the
    semitone steps between successive top pitches, so a pattern recurs even when transposed.
    With ``n = 4`` a pattern spans five onsets, about one to two seconds of piano music.
    """
    return recurring_share(np.diff(top_line(notes)), n)


def chord_repetition(notes: np.ndarray, n: int = 4) -> float:
    """Share of n-grams of successive onset pitch sets (exact pitches) that recur in the excerpt."""
    return recurring_share(onset_pitch_sets(notes), n)


def grid_positions(times_s: np.ndarray, tempos: np.ndarray | None,
                   per_quarter: int = 4) -> np.ndarray:
    """Positions of ``times_s`` in grid units (``per_quarter`` per quarter note; 4 = 16th notes)
    under a tempo map (``TEMPO_DTYPE``: ``time_s``, ``qpm``), counted from position 0 at time 0.

    Before the first tempo change the first tempo holds (120 qpm with no tempo map); after the
    last one its tempo holds for ever.
    """
    times_s = np.asarray(times_s, float)
    knots_s, knots_pos, slope = _tempo_knots(tempos, per_quarter)
    pos = np.interp(times_s, knots_s, knots_pos)
    beyond = times_s > knots_s[-1]
    pos[beyond] = knots_pos[-1] + (times_s[beyond] - knots_s[-1]) * slope
    return pos


def grid_times(positions: np.ndarray, tempos: np.ndarray | None,
               per_quarter: int = 4) -> np.ndarray:
    """Inverse of :func:`grid_positions`: the times in seconds of grid positions (>= 0)."""
    positions = np.asarray(positions, float)
    knots_s, knots_pos, slope = _tempo_knots(tempos, per_quarter)
    times = np.interp(positions, knots_pos, knots_s)
    beyond = positions > knots_pos[-1]
    times[beyond] = knots_s[-1] + (positions[beyond] - knots_pos[-1]) / slope
    return times


def _tempo_knots(tempos: np.ndarray | None, per_quarter: int) -> tuple[np.ndarray, ...]:
    """Times of the tempo changes from 0 on, the grid position at each, and the last slope
    (grid units per second)."""
    if tempos is None or not len(tempos):
        time_s, qpm = np.zeros(1), np.full(1, DEFAULT_QPM)
    else:
        order = np.argsort(tempos["time_s"], kind="stable")
        time_s, qpm = tempos["time_s"][order].astype(float), tempos["qpm"][order].astype(float)
    first = qpm[time_s <= 0][-1] if (time_s <= 0).any() else qpm[0]
    later = time_s > 0
    knots_s = np.concatenate([[0.0], time_s[later]])
    rate = np.concatenate([[first], qpm[later]]) / 60.0 * per_quarter  # grid units per second
    knots_pos = np.concatenate([[0.0], np.cumsum(np.diff(knots_s) * rate[:-1])])
    return knots_s, knots_pos, float(rate[-1])


def grid_share(onsets_s: np.ndarray, tempos: np.ndarray | None, *, per_quarter: int = 4,
               tolerance_s: float = GRID_TOLERANCE_S) -> float:
    """Share of onsets within ``tolerance_s`` of the nearest grid position (16th notes with
    ``per_quarter = 4``) of the tempo map ``tempos``, the grid starting at time 0.

    Times are absolute (seconds from the start of the file). A perfectly quantized part gives
    1.0; onsets spread at random give about ``2 * tolerance_s / grid step`` (0.32 for 16th
    notes at 120 qpm, 125 ms apart, with the default 20 ms); ``nan`` without onsets.
    """
    onsets = np.asarray(onsets_s, float)
    if not len(onsets):
        return math.nan
    pos = grid_positions(onsets, tempos, per_quarter)
    below = np.floor(pos)
    near = np.stack([grid_times(below, tempos, per_quarter),
                     grid_times(below + 1, tempos, per_quarter)])
    distance = np.abs(near - onsets).min(axis=0)
    return float((distance <= tolerance_s + 1e-9).mean())


__all__ = ["GRID_S", "GRID_TOLERANCE_S", "chord_repetition", "grid_positions", "grid_share",
           "grid_times", "inter_onset_interval", "length_stats", "onset_group_index",
           "melodic_repetition", "note_density", "onset_pitch_sets", "onset_times", "piano_roll",
           "pitch_class_entropy", "pitch_stats", "polyphony", "recurring_share",
           "semitone_clash", "silence_share", "top_line", "velocity_stats"]
