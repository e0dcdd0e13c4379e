"""Quantized notes <-> event ids: the vectorized stream builder and the never-failing decoder.

Both encodings (piano and band) share this machinery; they differ only in their vocabulary table
and in which *state* events (velocity, program) precede a note event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from melodia.encoding.quantize import QNOTE_DTYPE
from melodia.encoding.vocab import Vocabulary
from melodia.errors import EncodingError

# Event-type codes of the decoder's lookup table.
NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY, PROGRAM, TEMPO = range(6)
TYPE_CODES = {"NOTE_ON": NOTE_ON, "NOTE_OFF": NOTE_OFF, "TIME_SHIFT": TIME_SHIFT,
              "VELOCITY": VELOCITY, "PROGRAM": PROGRAM, "TEMPO": TEMPO}


def _first_of_runs(column: np.ndarray) -> np.ndarray:
    """True where a state column (``-1`` = not applicable) differs from its last applicable value."""
    applies = np.flatnonzero(column >= 0)
    values = column[applies]
    changed = np.ones(len(values), dtype=bool)
    changed[1:] = values[1:] != values[:-1]
    flags = np.zeros(len(column), dtype=bool)
    flags[applies[changed]] = True
    return flags


def build_stream(
    steps: np.ndarray,
    main_ids: np.ndarray,
    state_ids: list[np.ndarray],
    shift_offset: int,
    max_shift: int,
) -> np.ndarray:
    """Lay out events as ids: for each event, time shifts, changed state ids, then its own id.

    Parameters
    ----------
    steps : sorted int array, the time step of each event.
    main_ids : id of each event (a note-on, note-off or tempo id).
    state_ids : columns of state ids (e.g. velocity, program) with ``-1`` where a column does not
        apply to an event; an id is emitted only when it differs from the column's last one.
    shift_offset, max_shift : id of ``TIME_SHIFT 1`` and the longest shift in steps.
    """
    n = len(steps)
    delta = np.diff(steps, prepend=0)
    full, rest = np.divmod(delta, max_shift)
    n_shifts = full + (rest > 0)
    flags = [_first_of_runs(col) for col in state_ids]
    count = n_shifts + 1 + sum((f.astype(np.int64) for f in flags), np.zeros(n, np.int64))
    starts = np.cumsum(count) - count
    out = np.empty(int(count.sum()), dtype=np.int32)

    owner = np.repeat(np.arange(n), n_shifts)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(n_shifts) - n_shifts, n_shifts)
    partial = (within == n_shifts[owner] - 1) & (rest[owner] > 0)
    out[starts[owner] + within] = np.where(partial, shift_offset + rest[owner] - 1,
                                           shift_offset + max_shift - 1)
    cursor = starts + n_shifts
    for column, flag in zip(state_ids, flags):
        out[cursor[flag]] = column[flag]
        cursor = cursor + flag
    out[cursor] = main_ids
    return out


@dataclass
class DecodeRules:
    """What the decoder does where a stream is not well formed (it never fails)."""

    max_note_steps: int
    default_velocity: int = 64  # before any VELOCITY event
    default_instrument: int = 0  # before any PROGRAM event
    velocity_of_bin: np.ndarray = field(default_factory=lambda: np.arange(128))


def lookup_tables(vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Per id: event-type code and event value."""
    kinds = np.empty(vocab.size, dtype=np.int64)
    values = np.empty(vocab.size, dtype=np.int64)
    for r in vocab.ranges:
        first = vocab.offset(r.type)
        kinds[first : first + r.size] = TYPE_CODES[r.type]
        values[first : first + r.size] = np.arange(r.min, r.max + 1)
    return kinds, values


def check_ids(ids, vocab_size: int) -> np.ndarray:
    """Return ids as an int64 array or raise :class:`EncodingError` naming the first bad one."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise EncodingError(f"event ids must be a flat sequence of integers, got {arr.dtype} "
                            f"with shape {arr.shape}")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < 0) | (arr >= vocab_size))
    if len(bad):
        raise EncodingError(f"id {arr[bad[0]]} at position {bad[0]} is outside the vocabulary "
                            f"0..{vocab_size - 1} ({len(bad)} bad id(s) in all)")
    return arr


def end_step(ids: np.ndarray, kinds: np.ndarray, values: np.ndarray) -> int:
    """The step where a stream ends: the sum of its time shifts (trailing ones included)."""
    return int(values[ids][kinds[ids] == TIME_SHIFT].sum())


def decode_stream(
    ids: np.ndarray, kinds: np.ndarray, values: np.ndarray, rules: DecodeRules
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Replay events into quantized notes; never fails on in-vocabulary ids.

    - a NOTE_OFF for a pitch that is not sounding is dropped;
    - a NOTE_ON on a sounding pitch (same instrument) ends the earlier note there;
    - a note is cut at ``max_note_steps``; notes still sounding at the end close there;
    - zero-length notes (on and off at one step) are dropped.

    Returns the notes (``QNOTE_DTYPE``, velocity bin replaced by MIDI velocity in ``vbin``) and
    tempo events as ``(step, tempo bin)``.
    """
    step, velocity, instrument = 0, rules.default_velocity, rules.default_instrument
    sounding: dict[tuple[int, int], tuple[int, int]] = {}
    rows: list[tuple[int, int, int, int, int]] = []
    tempos: list[tuple[int, int]] = []
    max_len = rules.max_note_steps

    def close(key: tuple[int, int], end: int) -> None:
        start, vel = sounding.pop(key)
        end = min(end, start + max_len)
        if end > start:
            rows.append((start, end, key[1], vel, key[0]))

    for kind, value in zip(kinds[ids].tolist(), values[ids].tolist()):
        if kind == TIME_SHIFT:
            step += value
        elif kind == NOTE_ON:
            key = (instrument, value)
            if key in sounding:
                close(key, step)
            sounding[key] = (step, velocity)
        elif kind == NOTE_OFF:
            key = (instrument, value)
            if key in sounding:
                close(key, step)
        elif kind == VELOCITY:
            velocity = int(rules.velocity_of_bin[value])
        elif kind == PROGRAM:
            instrument = value
        elif kind == TEMPO:
            tempos.append((step, value))
    for key in list(sounding):
        close(key, step)
    notes = np.array(rows, dtype=QNOTE_DTYPE) if rows else np.empty(0, QNOTE_DTYPE)
    return notes[np.lexsort((notes["pitch"], notes["instrument"], notes["start"]))], tempos


def event_times(ids: np.ndarray, encoding) -> tuple[np.ndarray, np.ndarray]:
    """Per event: the time in steps after it, and its note-on pitch (``-1`` if not a note-on)."""
    ids = np.asarray(ids, dtype=np.int64)
    vocab = encoding.vocab
    shift, on = vocab.range("TIME_SHIFT"), vocab.range("NOTE_ON")
    s0, o0 = vocab.offset("TIME_SHIFT"), vocab.offset("NOTE_ON")
    is_shift = (ids >= s0) & (ids < s0 + shift.size)
    times = np.cumsum(np.where(is_shift, ids - s0 + shift.min, 0))
    is_on = (ids >= o0) & (ids < o0 + on.size)
    pitch = np.where(is_on, ids - o0 + on.min, -1)
    return times, pitch


def tail(ids: np.ndarray, encoding, seconds: float) -> np.ndarray:
    """The events of the last ``seconds`` of ``ids`` (like a training crop: it may hold note-offs
    of earlier notes), without leading shifts, preceded by the VELOCITY in force where it starts;
    no events: one shortest TIME_SHIFT."""
    ids = np.asarray(ids, dtype=np.int64)
    vocab = encoding.vocab
    shift0, n_shifts = vocab.offset("TIME_SHIFT"), vocab.range("TIME_SHIFT").size
    if len(ids) == 0:
        return np.array([shift0], dtype=np.int64)
    times, _ = event_times(ids, encoding)
    start = int(np.searchsorted(times, times[-1] - seconds * encoding.config.steps_per_second))
    while start < len(ids) - 1 and shift0 <= ids[start] < shift0 + n_shifts:
        start += 1
    vel0, n_vel = vocab.offset("VELOCITY"), vocab.range("VELOCITY").size
    earlier = np.flatnonzero((ids[:start] >= vel0) & (ids[:start] < vel0 + n_vel))
    head = ids[earlier[-1:]] if len(earlier) and not vel0 <= ids[start] < vel0 + n_vel else []
    return np.concatenate([head, ids[start:]]).astype(np.int64)
