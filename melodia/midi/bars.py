"""Bars in seconds: where each bar of a score starts, by its time signatures and tempo map.

A bar lasts ``numerator * 4 / denominator`` quarter notes (6/8: 3); a time signature that
changes mid-bar starts a new bar where it changes. Bars are counted from 1, as musicians and
DAWs count them.

>>> import numpy as np
>>> from melodia.midi import Score
>>> bar_starts(Score(), 10.0)[:4].tolist()                 # 4/4 at 120: a bar is 2 s
[0.0, 2.0, 4.0, 6.0]
>>> bar_span(Score(), "5-8")
(8.0, 16.0)
"""

from __future__ import annotations

import re

import numpy as np

from melodia.midi.score import DEFAULT_QPM, Score, default_time_signatures


def _tempo_table(score: Score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tempos = np.sort(score.tempos, order="time_s", kind="stable")
    if not len(tempos):
        return np.array([0.0]), np.array([DEFAULT_QPM]), np.array([0.0])
    starts, qpm = tempos["time_s"].astype(float), tempos["qpm"].astype(float)
    if starts[0] > 0:
        starts, qpm = np.concatenate([[0.0], starts]), np.concatenate([[qpm[0]], qpm])
    quarters = np.concatenate([[0.0], np.cumsum(np.diff(starts) * qpm[:-1] / 60.0)])
    return starts, qpm, quarters


def quarters_at(seconds: np.ndarray, score: Score) -> np.ndarray:
    """Quarter notes elapsed at each time, along the score's tempo map."""
    starts, qpm, quarters = _tempo_table(score)
    seconds = np.asarray(seconds, dtype=float)
    k = np.maximum(np.searchsorted(starts, seconds, side="right") - 1, 0)
    return quarters[k] + (seconds - starts[k]) * qpm[k] / 60.0


def seconds_at(quarters: np.ndarray, score: Score) -> np.ndarray:
    """The time at which each number of quarter notes has elapsed (inverse of :func:`quarters_at`)."""
    starts, qpm, before = _tempo_table(score)
    quarters = np.asarray(quarters, dtype=float)
    k = np.maximum(np.searchsorted(before, quarters, side="right") - 1, 0)
    return starts[k] + (quarters - before[k]) * 60.0 / qpm[k]


def bar_starts(score: Score, until_s: float) -> np.ndarray:
    """Start time (s) of every bar that starts before ``until_s``, and of the one after."""
    ts = np.sort(score.time_signatures, order="time_s", kind="stable")
    if not len(ts) or ts["time_s"][0] > 0:
        ts = np.concatenate([default_time_signatures(), ts])
    changes = quarters_at(ts["time_s"], score)
    lengths = ts["numerator"].astype(float) * 4.0 / ts["denominator"].astype(float)
    end_q = float(quarters_at(np.array([until_s]), score)[0])
    out: list[float] = []
    for i, (at, length) in enumerate(zip(changes, lengths)):
        stop = changes[i + 1] if i + 1 < len(changes) else np.inf
        q = at
        while q < stop - 1e-9 and (not out or out[-1] <= end_q + 1e-9):
            out.append(q)
            q += length
        if out and out[-1] > end_q + 1e-9:
            break
    return seconds_at(np.array(out), score)


def bar_span(score: Score, bars: str | tuple[int, int]) -> tuple[float, float]:
    """``"5-8"`` (or ``"5"``, or ``(5, 8)``) -> the seconds from bar 5's start to bar 8's end.
    Raises ``ValueError`` with one line for a malformed or reversed span."""
    if isinstance(bars, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", bars)
        if not match:
            raise ValueError(f"bars look like 5-8 or 5 (counted from 1), not {bars!r}")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
    else:
        first, last = (int(b) for b in bars)
    if first < 1 or last < first:
        raise ValueError(f"bars count from 1 and the last is not before the first: not "
                         f"{first}-{last}")
    starts = bar_starts(score, 0.0)
    while len(starts) <= last:  # long enough to hold the span, wherever the music ends
        starts = bar_starts(score, float(starts[-1]) * 2 + 60.0)
    return float(starts[first - 1]), float(starts[last])


def bar_set(tracks, score: Score, start_s: float, end_s: float) -> set[tuple[int, int, int]]:
    """The ``(instrument, 16th from start_s, pitch)`` struck by ``tracks`` within
    ``[start_s, end_s)`` (drums are instrument 128), 16ths along the score's tempo map."""
    origin = float(quarters_at(np.array([start_s]), score)[0])
    out: set[tuple[int, int, int]] = set()
    for track in tracks:
        notes = track.notes[(track.notes["start_s"] >= start_s) & (track.notes["start_s"] < end_s)]
        slots = np.rint((quarters_at(notes["start_s"], score) - origin) * 4).astype(np.int64)
        instrument = 128 if track.is_drum else int(track.program)
        out.update((instrument, s, int(p)) for s, p in zip(slots.tolist(),
                                                           notes["pitch"].tolist()))
    return out


__all__ = ["bar_set", "bar_span", "bar_starts", "quarters_at", "seconds_at"]
