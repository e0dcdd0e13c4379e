"""Control signals of Magenta's multiconditioned Performance RNN, computed from event ids.

Two signals, concatenated into ``CONTROL_DIM = 20`` floats per event:

- **note density**: note-ons per second in the window of ``DENSITY_WINDOW_S = 3`` seconds that
  starts at the current time, one-hot over 8 bins with edges ``1, 2, 4, 8, 16, 32, 64``
  (bin 0 is ``< 1`` note/s, bin 7 is ``>= 64``);
- **pitch-class histogram**: the share of each pitch class C, C#, ..., B among the note-ons in
  the ``HISTOGRAM_WINDOW_S = 5`` second window that starts at the current time (Magenta's prior
  count of 0.01 per class keeps it defined when the window is empty).

Row ``t`` of :func:`compute_controls` is the control for predicting event ``t + 1``: the windows
start at the time reached after event ``t`` and count the note-ons that come after it, as
Magenta's ``NoteDensityPerformanceControlSignal`` and ``PitchHistogramPerformanceControlSignal``
do. Near the end of a sequence the density is taken over the part of the window that exists.
An all-zero control means "absent": training can drop controls (see ``TrainConfig``) so a model
also runs unconditioned.

A third input is not a control but the **note state** the model would otherwise have to track in
its LSTM memory: after each event, which pitches are sounding (128 zeros/ones) and how recently
each was struck (``exp(-age / NOTE_AGE_TAU_S)`` for sounding pitches, 0 otherwise), so
``NOTE_STATE_DIM = 256`` floats. :func:`note_state` computes it from a stream (training, scoring);
:meth:`melodia.generation.grammar.Grammar.note_state` computes the same from what it tracks (generation).
No torch here.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from melodia.encoding.events import event_times
from melodia.features.band import (beats_at, current_instrument, instrument_onehot, meter_features,
                                   tempos_from_ids)
from melodia.features.lookback import sequence_lookback
from melodia.midi.instruments import DRUMS

DENSITY_BIN_EDGES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # notes per second
DENSITY_BINS = len(DENSITY_BIN_EDGES) + 1
DENSITY_WINDOW_S = 3.0
HISTOGRAM_WINDOW_S = 5.0
HISTOGRAM_PRIOR = 0.01  # pseudo-count per pitch class, as Magenta
PITCH_CLASSES = 12
NOTE_STATE_PITCHES = 128
NOTE_STATE_DIM = 2 * NOTE_STATE_PITCHES  # sounding (0/1) and recency, per MIDI pitch
NOTE_AGE_TAU_S = 1.0  # recency of a sounding note: exp(-seconds since its onset / tau)
NOTE_STATE_LOOKBACK_S = 10.0  # a crop's note state is rebuilt from this much earlier music
CONTROL_DIM = DENSITY_BINS + PITCH_CLASSES
DENSITY_SLICE = slice(0, DENSITY_BINS)
HISTOGRAM_SLICE = slice(DENSITY_BINS, CONTROL_DIM)


def density_bin(notes_per_s: float | np.ndarray) -> np.ndarray:
    """Bin index 0..7 of a note density (Magenta's ``NoteDensityOneHotEncoding``)."""
    return np.searchsorted(np.asarray(DENSITY_BIN_EDGES), notes_per_s, side="right")


def compute_controls(ids: Sequence[int] | np.ndarray, encoding) -> np.ndarray:
    """Controls ``float32[T, CONTROL_DIM]``: row ``t`` conditions the prediction of event ``t+1``.

    Parameters
    ----------
    ids : event ids of one performance (or a crop of one; the windows look forward only).
    encoding : the :class:`~melodia.encoding.PerformanceEncoding` of ``ids`` (for the time
        resolution and the id layout).
    """
    times, pitch = event_times(ids, encoding)
    n = len(times)
    out = np.zeros((n, CONTROL_DIM), dtype=np.float32)
    if n == 0:
        return out
    sps = encoding.config.steps_per_second
    is_on = pitch >= 0
    on_times, on_pitch = times[is_on], pitch[is_on]
    ons_so_far = np.cumsum(is_on)  # note-ons at index <= t all lie before any later window end
    remaining = times[-1] - times

    window = round(DENSITY_WINDOW_S * sps)
    count = np.searchsorted(on_times, times + window, side="left") - ons_so_far
    span = np.minimum(remaining, window)
    density = np.where(span > 0, count * sps / np.maximum(span, 1), 0.0)
    out[np.arange(n), density_bin(density)] = 1.0

    window = round(HISTOGRAM_WINDOW_S * sps)
    end = np.searchsorted(on_times, times + window, side="left")
    classes = np.zeros((len(on_times) + 1, PITCH_CLASSES))  # prefix counts per pitch class
    classes[np.arange(1, len(on_times) + 1), on_pitch % PITCH_CLASSES] = 1.0
    classes = np.cumsum(classes, axis=0)
    hist = classes[end] - classes[ons_so_far] + HISTOGRAM_PRIOR
    out[:, HISTOGRAM_SLICE] = hist / hist.sum(axis=1, keepdims=True)
    return out


def soft_density(notes_per_s: float) -> np.ndarray:
    """Density control ``float32[DENSITY_BINS]`` that asks for exactly ``notes_per_s``.

    A one-hot bin only says "between 8 and 16 notes/s", and a model plays about the bin's
    geometric centre (11.3). Here the weight is split between the two bins whose centres
    bracket the wish, linearly in log-density, so 8 asks for halfway between 5.7 and 11.3.
    """
    edges = np.asarray(DENSITY_BIN_EDGES)
    centres = np.concatenate([[edges[0] / np.sqrt(2)], np.sqrt(edges[:-1] * edges[1:]),
                              [edges[-1] * np.sqrt(2)]])
    out = np.zeros(DENSITY_BINS, dtype=np.float32)
    x = np.log(max(notes_per_s, 1e-6))
    logc = np.log(centres)
    if x <= logc[0] or x >= logc[-1]:
        out[0 if x <= logc[0] else -1] = 1.0
        return out
    b = int(np.searchsorted(logc, x, side="right")) - 1
    w = (x - logc[b]) / (logc[b + 1] - logc[b])
    out[b], out[b + 1] = 1.0 - w, w
    return out


def constant_controls(
    density: float | None = None, pitch_histogram: Sequence[float] | None = None
) -> np.ndarray:
    """One control vector ``float32[CONTROL_DIM]`` for generation; ``None`` leaves a part absent.

    Parameters
    ----------
    density : desired notes per second (spread over the two nearest bins, see
        :func:`soft_density`), or ``None``.
    pitch_histogram : 12 non-negative weights for C, C#, ..., B (normalized here to sum to 1;
        all zero means uniform), e.g. ``[2, 0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1]`` for C major; or
        ``None``.
    """
    out = np.zeros(CONTROL_DIM, dtype=np.float32)
    if density is not None:
        if not np.isfinite(density) or density < 0:
            raise ValueError(f"density must be a non-negative number of notes/s, not {density}")
        out[DENSITY_SLICE] = soft_density(float(density))
    if pitch_histogram is not None:
        hist = np.asarray(pitch_histogram, dtype=np.float64)
        if hist.shape != (PITCH_CLASSES,) or not np.all(np.isfinite(hist)) or np.any(hist < 0):
            raise ValueError("pitch_histogram needs 12 non-negative weights (C, C#, ..., B)")
        total = hist.sum()
        out[HISTOGRAM_SLICE] = hist / total if total > 0 else 1.0 / PITCH_CLASSES
    return out


def drop_controls(controls: np.ndarray, density: bool, histogram: bool) -> np.ndarray:
    """Zero the density and/or histogram part (in place) so the model learns them as optional."""
    if density:
        controls[..., DENSITY_SLICE] = 0.0
    if histogram:
        controls[..., HISTOGRAM_SLICE] = 0.0
    return controls


def control_prior(sequences: Sequence[np.ndarray], encoding, count: int = 256,
                  window_s: float = 20.0, seed: int = 0) -> np.ndarray:
    """``float32[count, CONTROL_DIM]`` controls as the corpus plays them: for ``count`` random
    ``window_s`` stretches (chosen in proportion to length), their notes/s (as
    :func:`soft_density`) and their pitch-class histogram. Generation draws one when the user asks for no control, so an
    unconditioned piece has the corpus's own density and a key (see ``melodia.generation.generator``)."""
    rng = np.random.default_rng(seed)
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences if len(s) > 1]
    out = np.zeros((count, CONTROL_DIM), dtype=np.float32)
    if not seqs:
        return out[:0]
    timed = [event_times(s, encoding) for s in seqs]
    weights = np.array([max(t[0][-1], 1) for t in timed], dtype=np.float64)
    weights /= weights.sum()
    window = round(window_s * encoding.config.steps_per_second)
    for row in range(count):
        times, pitch = timed[int(rng.choice(len(seqs), p=weights))]
        t0 = int(rng.integers(max(1, times[-1] - window + 1)))
        inside = (times >= t0) & (times < t0 + window) & (pitch >= 0)
        span_s = min(window, max(times[-1] - t0, 1)) / encoding.config.steps_per_second
        out[row, DENSITY_SLICE] = soft_density(inside.sum() / span_s)
        hist = np.bincount(pitch[inside] % PITCH_CLASSES, minlength=PITCH_CLASSES)
        hist = hist + HISTOGRAM_PRIOR
        out[row, HISTOGRAM_SLICE] = hist / hist.sum()
    return out


def note_state(ids: Sequence[int] | np.ndarray, encoding, start: int = 0) -> np.ndarray:
    """Note state ``float32[T - start, NOTE_STATE_DIM]``: row ``t`` describes the notes sounding
    after event ``start + t`` (``[:128]`` sounding or not, ``[128:]`` recency
    ``exp(-age_s / NOTE_AGE_TAU_S)``); the events before ``start`` only set the state it starts
    from.

    A NOTE_ON makes its pitch sound (a re-strike restarts its age), a NOTE_OFF silences it; other
    events change only the time. Band encoding: the melodic instruments share one pitch state
    (a NOTE_OFF of a pitch silences it whoever held it) and drum hits are left out. Notes sounding before ``ids`` starts are unknown: feed a lookback before a crop.
    """
    ids = np.asarray(ids, dtype=np.int64)
    times, on_pitch = event_times(ids, encoding)
    vocab = encoding.vocab
    f0, n = vocab.offset("NOTE_OFF"), vocab.range("NOTE_OFF").size
    off_pitch = np.where((ids >= f0) & (ids < f0 + n), ids - f0 + vocab.range("NOTE_OFF").min, -1)
    pitch = np.maximum(on_pitch, off_pitch)  # the pitch an event touches, -1 for none
    if any(r.type == "PROGRAM" for r in vocab.ranges):  # band: drum hits are not pitches

        pitch[current_instrument(ids, encoding) == DRUMS] = -1
        on_pitch = np.where(pitch >= 0, on_pitch, -1)
    T, rows = len(ids), max(len(ids) - start, 0)
    out = np.zeros((rows, NOTE_STATE_DIM), dtype=np.float32)
    events = np.flatnonzero((pitch >= 0) & (pitch < NOTE_STATE_PITCHES))
    if not len(events) or not rows:
        return out
    # each NOTE_ON sounds from its own row until the next event touching its pitch (or the end)
    order, until = until_next(events, pitch[events], T)
    events = events[order]
    is_on = on_pitch[events] >= 0
    onset, until, key = events[is_on], until[is_on], pitch[events[is_on]]
    first = np.maximum(onset, start)
    length = np.maximum(until - first, 0)
    row = np.repeat(first - start, length) + ramp(length)  # the rows each note sounds in
    col = np.repeat(key, length)
    age = times[row + start] - np.repeat(times[onset], length)
    scale = np.float32(-1.0 / (encoding.config.steps_per_second * NOTE_AGE_TAU_S))
    out[row, col] = 1.0
    out[row, col + NOTE_STATE_PITCHES] = np.exp(age.astype(np.float32) * scale)
    return out


def recency_table(steps_per_second: int) -> np.ndarray:
    """The note-state recency of every age in steps, ``float32[A]``: entry ``k`` is what
    :func:`note_state` gives a note struck ``k`` steps ago (the same float32 product and exp),
    up to the first age where it is 0; every older note has 0 too (use ``table[min(k, A - 1)]``).
    A lookup in it gives those exact floats on any device (torch's exp differs in the last bit)."""
    scale = np.float32(-1.0 / (steps_per_second * NOTE_AGE_TAU_S))
    ages = np.arange(math.ceil(110 * steps_per_second * NOTE_AGE_TAU_S) + 1)  # e^-110 < 2^-149
    table = np.exp(ages.astype(np.float32) * scale)
    return table[: int(np.argmax(table == 0)) + 1]


def ramp(lengths: np.ndarray) -> np.ndarray:
    """``0..l-1`` for every ``l`` in ``lengths``, concatenated."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.arange(total) - np.repeat(ends - lengths, lengths)


def until_next(events: np.ndarray, key: np.ndarray, end) -> tuple[np.ndarray, np.ndarray]:
    """How long each event's note lasts: ``events`` (indices, in time order) touch ``key`` (a
    pitch; or crop and pitch, ``crop * 128 + pitch``). Returns ``order``, which sorts them by key
    and then time, and for each sorted event the index of the next one with the same key (else
    ``end``: one number, or one per unsorted event)."""
    if len(key) and key.min() >= 0 and key.max() < 2**16:
        key = key.astype(np.uint16)  # numpy sorts 16-bit keys stably by radix: O(n)
    order = np.argsort(key, kind="stable")
    until = np.array(np.broadcast_to(end, order.shape)[order])
    same = key[order][1:] == key[order][:-1]
    until[:-1][same] = events[order][1:][same]
    return order, until


def step_inputs(ids: Sequence[int] | np.ndarray, encoding, control_dim: int,
                state_dim: int, start: int = 0, *, band: np.ndarray | None = None,
                band_dim: int = 0, instrument_dim: int = 0, meter_dim: int = 0,
                tempos=None, time_offset_s: float = 0.0, lookback_dim: int = 0) -> np.ndarray:
    """The per-step inputs a model built with these widths takes besides ids:
    ``float32[T - start, control_dim + band_dim + state_dim + instrument_dim]`` (controls, band
    conditions ``band`` repeated on every row, note state, current instrument; see
    :class:`melodia.model.lstm.ModelConfig`), for the events from ``start`` on (the earlier ones set
    the note state and the instrument). The meter follows ``tempos`` (rows ``(time_s, qpm)``;
    None: the stream's TEMPO events), ``ids`` starting ``time_offset_s`` into the piece."""
    fixed = control_dim + band_dim
    steps = state_dim + instrument_dim
    out = np.zeros((max(len(ids) - start, 0), fixed + steps + meter_dim + lookback_dim),
                   dtype=np.float32)
    if control_dim:
        out[:, :control_dim] = compute_controls(ids, encoding)[start:]
    if band_dim and band is not None:
        out[:, control_dim:fixed] = band
    if state_dim:
        out[:, fixed : fixed + state_dim] = note_state(ids, encoding, start)
    if instrument_dim:
        out[:, fixed + state_dim : fixed + steps] = instrument_onehot(
            current_instrument(ids, encoding)[start:])
    if meter_dim or lookback_dim:
        seconds = event_times(ids, encoding)[0] / encoding.config.steps_per_second
        tempos = tempos_from_ids(ids, encoding) if tempos is None else tempos
        beats = beats_at(seconds + time_offset_s, tempos)
        at = fixed + steps
        if meter_dim:
            out[:, at : at + meter_dim] = meter_features(beats[start:])
        if lookback_dim:
            out[:, at + meter_dim :] = sequence_lookback(ids, encoding, beats, start)
    return out


def model_inputs(ids: Sequence[int] | np.ndarray, encoding, config, start: int = 0,
                 band: np.ndarray | None = None, tempos=None) -> np.ndarray:
    """:func:`step_inputs` for a :class:`~melodia.model.lstm.ModelConfig` ``config``."""
    return step_inputs(ids, encoding, config.control_dim, config.state_dim, start, band=band,
                       band_dim=config.band_dim, instrument_dim=config.instrument_dim,
                       meter_dim=getattr(config, "meter_dim", 0), tempos=tempos,
                       lookback_dim=getattr(config, "lookback_dim", 0))


def sounding_index(sequences: Sequence[np.ndarray], encoding,
                   file_key: int) -> tuple[np.ndarray, np.ndarray]:
    """Every file's notes as event intervals, for
    :meth:`melodia.training.crops.CropDataset._earliest_sounding`: onsets (global keys
    ``file * file_key + index``, sorted) and the running maximum of where they stop sounding
    (the next event touching their pitch; drum hits are not notes), so the first note still
    sounding at an index is one ``searchsorted`` away."""

    vocab = encoding.vocab
    on, off = vocab.range("NOTE_ON"), vocab.range("NOTE_OFF")
    o0, f0 = vocab.offset("NOTE_ON"), vocab.offset("NOTE_OFF")
    band = any(r.type == "PROGRAM" for r in vocab.ranges)
    onsets, reach = [], []
    for f, seq in enumerate(sequences):
        ids = np.asarray(seq, dtype=np.int64)
        pitch = np.where((ids >= o0) & (ids < o0 + on.size), ids - o0 + on.min,
                         np.where((ids >= f0) & (ids < f0 + off.size), ids - f0 + off.min, -1))
        if band:
            pitch[current_instrument(ids, encoding) == DRUMS] = -1
        events = np.flatnonzero(pitch >= 0)
        order, until = until_next(events, pitch[events], len(ids))
        events = events[order]  # by pitch, then in time
        struck = (ids[events] >= o0) & (ids[events] < o0 + on.size)
        order = np.argsort(events[struck], kind="stable")
        onsets.append(f * file_key + events[struck][order])
        reach.append(f * file_key + np.maximum.accumulate(until[struck][order])
                     if struck.any() else np.zeros(0, np.int64))
    return np.concatenate(onsets), np.concatenate(reach)


__all__ = ["CONTROL_DIM", "DENSITY_BINS", "DENSITY_BIN_EDGES", "NOTE_STATE_DIM", "compute_controls",
           "constant_controls", "control_prior", "density_bin", "drop_controls",
           "model_inputs", "note_state", "ramp", "recency_table", "soft_density",
           "sounding_index", "step_inputs", "until_next"]
