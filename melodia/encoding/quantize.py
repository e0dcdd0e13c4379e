"""From notes in seconds to the canonical quantized notes that an event stream represents exactly.

The steps, all vectorized with numpy:

1. :func:`apply_sustain`: a note released while the sustain pedal (CC64 >= 64) is down keeps
   sounding until the pedal is lifted, as Magenta's ``apply_sustain_control_changes`` does.
2. :func:`quantize`: times to steps (``floor(t * steps_per_second + 0.5)``), at least one step
   long and at most ``max_note_steps``; velocity to bins; pitches outside the range dropped; a note
   still sounding when its pitch is struck again on the same instrument ends at the new onset
   (Magenta does the same), and of two onsets of one pitch at one step only the longer survives.

The result (``QNOTE_DTYPE``) is what ``decode(encode(x))`` gives back, note for note.
"""

from __future__ import annotations

import math

import numpy as np

from melodia.midi import NOTE_DTYPE, PEDAL_DTYPE

#: Quantized note: start/end in steps, pitch, velocity bin (1-based), instrument id.
QNOTE_DTYPE = np.dtype(
    [("start", "i8"), ("end", "i8"), ("pitch", "i2"), ("vbin", "i2"), ("instrument", "i2")]
)

MAX_VELOCITY = 127


def velocity_to_bin(velocity: np.ndarray, bins: int) -> np.ndarray:
    """MIDI velocity 1..127 to a bin 1..bins (Magenta's ``velocity_to_bin``)."""
    v = np.clip(np.asarray(velocity, dtype=np.int64), 1, MAX_VELOCITY)
    return (v - 1) * bins // MAX_VELOCITY + 1


def bin_to_velocity(vbin: np.ndarray | int, bins: int) -> np.ndarray:
    """The smallest MIDI velocity in each bin, so ``velocity_to_bin(bin_to_velocity(b)) == b``.

    For 32 bins this equals Magenta's ``1 + (bin - 1) * 4``.
    """
    b = np.asarray(vbin, dtype=np.int64)
    return -((-(b - 1) * MAX_VELOCITY) // bins) + 1  # ceil((b-1)*127/bins) + 1


def _pedal_intervals(pedal: np.ndarray, threshold: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Times the pedal goes down and comes up again (``inf`` if it never does)."""
    order = np.argsort(pedal["time_s"], kind="stable")
    times, down = pedal["time_s"][order], pedal["value"][order] >= threshold
    prev = np.concatenate([[False], down[:-1]])
    presses, releases = times[down & ~prev], times[~down & prev]
    if len(releases) < len(presses):
        releases = np.concatenate([releases, [np.inf]])
    return presses, releases


def apply_sustain(notes: np.ndarray, pedal: np.ndarray, threshold: int = 64) -> np.ndarray:
    """Extend each note released under a held sustain pedal to the pedal's release.

    A note-off at the very moment the pedal goes down is sustained; one at the moment it comes up
    is not (Magenta's event order). A pedal never lifted holds notes to the last note end. Cutting
    at a re-struck pitch is left to :func:`quantize`.
    """
    if len(pedal) == 0 or len(notes) == 0:
        return notes
    assert notes.dtype == NOTE_DTYPE and pedal.dtype == PEDAL_DTYPE
    presses, releases = _pedal_intervals(pedal, threshold)
    if len(presses) == 0:
        return notes
    ends = notes["end_s"]
    i = np.searchsorted(presses, ends, side="right") - 1
    held = (i >= 0) & (ends < releases[np.maximum(i, 0)])
    releases = np.where(np.isinf(releases), ends.max(), releases)  # never lifted: hold to the end
    new_end = np.where(held, releases[np.maximum(i, 0)], ends)
    out = notes.copy()
    out["end_s"] = np.maximum(new_end, ends)
    return out


def quantize(
    notes: np.ndarray,
    instrument: np.ndarray | int,
    steps_per_second: int,
    velocity_bins: int,
    max_note_steps: int,
    min_pitch: int = 0,
    max_pitch: int = 127,
) -> np.ndarray:
    """Quantize notes (``NOTE_DTYPE``) to canonical ``QNOTE_DTYPE`` rows sorted by time.

    ``instrument`` is one id for all notes or one per note; pitch conflicts are resolved per
    instrument.
    """
    keep = (notes["pitch"] >= min_pitch) & (notes["pitch"] <= max_pitch)
    q = np.empty(int(keep.sum()), dtype=QNOTE_DTYPE)
    q["start"] = np.floor(notes["start_s"][keep] * steps_per_second + 0.5)
    end = np.floor(notes["end_s"][keep] * steps_per_second + 0.5).astype(np.int64)
    end = np.maximum(end, q["start"] + 1)
    q["end"] = np.minimum(end, q["start"] + max_note_steps)
    q["pitch"] = notes["pitch"][keep]
    q["vbin"] = velocity_to_bin(notes["velocity"][keep], velocity_bins)
    q["instrument"] = np.broadcast_to(instrument, notes.shape)[keep]
    return _resolve_overlaps(q)


def sort_rows(*keys: np.ndarray) -> np.ndarray:
    """Indices that sort rows by non-negative integer ``keys``, most significant first.

    Packs the keys into one int64 when their ranges allow (several times faster than
    ``np.lexsort``). Equal rows keep their order (a stable sort), so the result is the same on
    every machine: numpy's default sort orders ties by whatever SIMD code the CPU runs, and
    doubled notes (same instrument, pitch, onset and length) then kept another velocity.
    """
    radices = [int(k.max()) + 1 if len(k) else 1 for k in keys]
    if math.prod(radices) >= 1 << 62:
        return np.lexsort(keys[::-1])
    packed = np.zeros(len(keys[0]), dtype=np.int64)
    for key, radix in zip(keys, radices):
        packed *= radix
        packed += key
    return np.argsort(packed, kind="stable")  # and faster on the nearly sorted rows of music


def _resolve_overlaps(q: np.ndarray) -> np.ndarray:
    """End each note at the next onset of the same (instrument, pitch); drop zero-length notes.

    Of two notes with one onset, the longer is kept (it sorts last and the other ends at once).
    """
    if len(q) == 0:
        return q
    voice = q["instrument"].astype(np.int64) * 128 + q["pitch"]
    start, end = np.ascontiguousarray(q["start"]), np.ascontiguousarray(q["end"])
    order = sort_rows(voice, start, end - start)
    voice, start, end = voice[order], start[order], end[order]
    next_start = np.where(voice[1:] == voice[:-1], start[1:], np.iinfo(np.int64).max)
    end[:-1] = np.minimum(end[:-1], next_start)
    keep = end > start
    order, voice, start, end = order[keep], voice[keep], start[keep], end[keep]
    by_time = np.argsort(start * (129 * 128) + voice)  # (start, instrument, pitch) is unique now
    out = np.empty(len(by_time), dtype=QNOTE_DTYPE)
    out["start"], out["end"] = start[by_time], end[by_time]
    out["instrument"], out["pitch"] = np.divmod(voice[by_time], 128)
    out["vbin"] = q["vbin"][order[by_time]]
    return out


def max_note_steps(max_note_s: float, steps_per_second: int) -> int:
    return max(1, math.floor(max_note_s * steps_per_second + 0.5))
