"""Training batches at GPU speed: every crop of a batch built in one pass, dense inputs on the device.

:meth:`melodia.training.crops.CropDataset.sample` builds one crop at a time and returns its dense
per-step inputs (``float32[L, C]``: controls, band conditions, note state, current instrument,
meter; ``C`` is 276 for the piano model and ~590 for the band). That is the readable reference,
but at 3M events/s those floats alone would be 3-7 GB/s of memory traffic. Here:

- :func:`compact_batch` builds all crops of a batch together, over one flat array of the crops'
  events (augmentation, controls and event times vectorised across crops, no per-crop numpy
  loop), and returns **compact** arrays: ids as int16, the density bin and pitch-class counts,
  the sounding notes as row intervals, the instrument as one small integer, the beat (the meter's
  phase), and the band conditions once per crop;
- :func:`melodia.training.loader.expand_inputs` turns that into the dense inputs with torch, on whatever
  device the batch was copied to (on a GPU, a few kernels);
- :func:`melodia.training.loader.batch_loader` builds batches ahead of the step in background processes
  (``torch.utils.data.DataLoader`` workers over the memory-mapped shards), pinned for
  non-blocking copies.

No torch here: a worker builds numpy arrays.

Sample ``i`` is the same pure function of ``(seed, i)`` as ``CropDataset.sample`` (both take
:meth:`~melodia.training.crops.CropDataset.draws`), so resume stays exact; ``tests/test_batches.py`` checks
that the two paths give equal inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from melodia.features.band import METER_DIM, drop_conditions
from melodia.features.lookback import LOOKBACK_DIM, features_of, lookback_rows
from melodia.features.controls import (CONTROL_DIM, DENSITY_WINDOW_S, HISTOGRAM_WINDOW_S,
                                       NOTE_STATE_DIM, NOTE_STATE_PITCHES, PITCH_CLASSES,
                                       density_bin, ramp, until_next)
from melodia.midi.instruments import DRUMS, N_INSTRUMENTS

IGNORE = -100  # target id of padding, skipped by the loss
_BIG = 1 << 40  # separates crops in flat sort keys (far above any crop's length in steps)
CHUNK = 64  # crops built together; bigger batches are built in pieces of this many


@dataclass(frozen=True)
class InputDims:
    """Widths of the dense per-step inputs, in model order (see melodia.model.lstm.ModelConfig)."""

    controls: int = 0
    band: int = 0
    state: int = 0
    instrument: int = 0
    meter: int = 0
    steps_per_second: int = 100  # the encoding's time grid (note-state recency)
    lookback: int = 0

    @property
    def total(self) -> int:
        return self.controls + self.band + self.state + self.instrument + self.meter + \
            self.lookback


def input_dims(crops) -> InputDims:
    """The :class:`InputDims` of a :class:`~melodia.training.crops.CropDataset`."""

    layout = crops.band_layout
    return InputDims(CONTROL_DIM if crops.controls else 0, layout.dim if layout else 0,
                     NOTE_STATE_DIM if crops.note_state else 0,
                     N_INSTRUMENTS if layout else 0, METER_DIM if crops.meter else 0,
                     crops.encoding.config.steps_per_second,
                     LOOKBACK_DIM if crops.lookback else 0)


# ------------------------------------------------------------------------ flat helpers


@dataclass(frozen=True)
class _Tables:
    """Per id of an encoding: one gather instead of range checks on every event."""

    shift: np.ndarray  # steps of a TIME_SHIFT, else 0
    on: np.ndarray  # pitch of a NOTE_ON, else -1
    off: np.ndarray  # pitch of a NOTE_OFF, else -1
    program: np.ndarray  # instrument of a PROGRAM (band), else -1


_TABLES: dict[tuple, _Tables] = {}


def _tables(encoding) -> _Tables:
    key = tuple(encoding.vocab.ranges)  # the tables follow from the ranges alone (a cheap key)
    if key not in _TABLES:
        vocab, size = encoding.vocab, encoding.vocab_size
        columns = {"TIME_SHIFT": np.zeros(size, np.int32)}
        columns.update({name: np.full(size, -1, np.int32)
                        for name in ("NOTE_ON", "NOTE_OFF", "PROGRAM")})
        for name, column in columns.items():
            if any(r.type == name for r in vocab.ranges):
                r, at = vocab.range(name), vocab.offset(name)
                column[at : at + r.size] = np.arange(r.min, r.min + r.size)
        _TABLES[key] = _Tables(columns["TIME_SHIFT"], columns["NOTE_ON"], columns["NOTE_OFF"],
                               columns["PROGRAM"])
    return _TABLES[key]


def _segment_cumsum(values: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at every segment start."""
    cs = np.cumsum(values, dtype=np.int64)
    return cs - np.repeat(cs[starts] - values[starts], lens)


def _current_instrument(ids: np.ndarray, starts: np.ndarray, tables: _Tables) -> np.ndarray:
    """:func:`melodia.features.band.current_instrument` of every segment (0 before its first PROGRAM)."""
    program = tables.program[ids]
    marks = np.where(program >= 0, 2 * np.arange(len(ids)) + 1, -1)  # odd: a PROGRAM here
    marks[starts] = np.maximum(marks[starts], 2 * starts)  # even: a segment starts, none yet
    last = np.maximum.accumulate(marks)
    return np.where(last % 2 == 1, program[(last - 1) // 2], 0)


def _transpose(ids, starts, seg, semitones, encoding, current) -> None:
    """:func:`melodia.training.crops.transpose_ids` of every segment, in place (``current``: the band
    encoding's instrument per event, None for the piano)."""
    vocab, tables = encoding.vocab, _tables(encoding)
    on, off = vocab.offset("NOTE_ON"), vocab.offset("NOTE_OFF")
    n = vocab.range("NOTE_ON").size
    is_on, is_off = tables.on[ids] >= 0, tables.off[ids] >= 0
    if current is not None:
        melodic = current != DRUMS
        is_on, is_off = is_on & melodic, is_off & melodic
    note = is_on | is_off
    rel = np.where(is_on, ids - on, ids - off)
    lo = np.minimum.reduceat(np.where(note, rel, n), starts)
    hi = np.maximum.reduceat(np.where(note, rel, -1), starts)
    shift = np.where(hi >= 0, np.clip(semitones, -np.minimum(lo, n - 1), n - 1 - hi), 0)
    ids += np.where(note, shift[seg], 0).astype(ids.dtype)


def _stretch(ids, starts, lens, seg, factor, prefix, encoding):
    """:func:`melodia.training.crops.stretch_ids` of every (non-empty) segment; returns the new ids,
    segment starts and lengths, and where each crop starts after stretching (after the
    stretched prefix's last event, as ``CropDataset._skip_after_stretch``).

    Worked on the runs of time shifts between events, in place in the stream: event ``k`` of a
    distinct time moves to ``round(step * factor)``, kept strictly increasing, and each run is
    written again as the shifts of its new gap (most runs: one shift in, one shift out)."""
    s0 = encoding.vocab.offset("TIME_SHIFT")
    most = encoding.vocab.range("TIME_SHIFT").max
    amount = _tables(encoding).shift[ids]
    shift = amount > 0
    head = np.zeros(len(ids), bool)  # where each segment starts
    head[starts] = True
    run_start = shift & (head | ~np.roll(shift, 1))
    run_end = shift & (np.roll(head, -1) | ~np.roll(shift, -1))
    # the distinct times: each event, and the end of each run (the next event's time, or the
    # segment's end); k counts them, off by a constant per segment (which the rule ignores)
    at = np.flatnonzero(~shift | run_end)
    k = np.cumsum(run_start)[at]
    gseg = seg[at]
    times = _segment_cumsum(amount, starts, lens)[at]
    new = np.floor(times * factor[gseg] + 0.5).astype(np.int64) - k + gseg * _BIG
    new = k + np.maximum.accumulate(new) - gseg * _BIG  # strictly increasing per segment
    new_at = np.zeros(len(ids), np.int64)
    new_at[at] = new
    rs, re = np.flatnonzero(run_start), np.flatnonzero(run_end)
    gap = new_at[re] - np.where(head[rs], 0, new_at[rs - 1])  # before a run: an event
    n_shifts = np.maximum(-(-gap // most), 0)  # 0 only for a factor that rounds a step to 0
    counts = (~shift).astype(np.int64)
    counts[rs] = n_shifts
    out = np.repeat(ids, counts)
    cum = np.cumsum(counts)
    many = n_shifts > 1
    if many.any():  # long gaps: full shifts (the first n - 1 of the run), then the rest
        full = n_shifts[many] - 1
        out[np.repeat(cum[rs[many]] - n_shifts[many], full) + ramp(full)] = s0 + most - 1
    written = n_shifts > 0
    out[cum[rs[written]] - 1] = s0 + gap[written] - (n_shifts[written] - 1) * most - 1
    begin = cum[starts] - counts[starts]
    events = np.append(np.flatnonzero(~shift), len(ids))  # + a sentinel past the end
    last = events[np.maximum(np.searchsorted(events, starts + prefix) - 1, 0)]
    has = (last >= starts) & (last < starts + prefix)  # the prefix's last event, if any
    skip = np.where(has, cum[np.minimum(last, len(ids) - 1)] - begin, 0)
    return out, begin, cum[starts + lens - 1] - begin, skip


# ------------------------------------------------------------------------------ batches


def compact_batch(crops, indices: Sequence[int]) -> dict[str, np.ndarray]:
    """Samples ``indices`` of ``crops`` (a :class:`~melodia.training.crops.CropDataset`), compact.

    Returns ``inputs``/``targets`` ``int64[B, L]``, ``lengths`` ``int64[B]`` (rows with inputs)
    and, as the dataset asks for them: ``controls`` ``float32[B, L, 20]``; ``state_time``,
    ``state_notes`` and ``state_cells`` (the sounding notes as row intervals, see
    :func:`_state`); ``instrument`` ``int16[B, L]`` (-1 past the end); ``band``
    ``float32[B, band_dim]``; ``beats`` ``float64[B, L]`` (the meter's phase). :func:`to_tensors` and
    :func:`expand_inputs` make the dense inputs of it.
    """
    if len(indices) > CHUNK:  # in cache-sized pieces: big arrays run at memory speed
        return _merge([compact_batch(crops, indices[i : i + CHUNK])
                       for i in range(0, len(indices), CHUNK)], crops.seq_len)
    enc, L, B = crops.encoding, crops.seq_len, len(indices)
    vocab, sps = enc.vocab, enc.config.steps_per_second
    band = any(r.type == "PROGRAM" for r in vocab.ranges)
    d = crops.draws(indices)
    lens = d.end - d.first
    starts = np.cumsum(lens) - lens
    seg = np.repeat(np.arange(B), lens)
    ids = crops._flat[(crops._offsets[d.file] + d.first)[seg] + ramp(lens)].astype(np.int32)
    skip = d.start - d.first
    if crops.stretch:  # stretch and transposition commute: one moves times, the other notes
        ids, starts, lens, skip = _stretch(ids, starts, lens, seg, d.factor, skip, enc)
        seg = np.repeat(np.arange(B), lens)
    current = _current_instrument(ids, starts, _tables(enc)) if band else None
    if crops.transpose and d.semitones.any():
        _transpose(ids, starts, seg, d.semitones, enc, current)
    n = np.minimum(lens - skip, L + 1)

    out: dict[str, np.ndarray] = {}
    small = np.int16 if enc.vocab_size < 2**15 else np.int64  # widened on the device
    rows = n - 1  # input rows of each crop; the batch is laid out [B, L], padded past them
    rseg, col = np.repeat(np.arange(B), L), np.tile(np.arange(L), B)
    valid = col < rows[rseg]
    at = (starts + skip)[rseg] + np.minimum(col, np.maximum(rows - 1, 0)[rseg])  # each row's event
    inputs = np.where(valid, ids[at], 0).astype(small).reshape(B, L)
    targets = np.where(valid, ids[np.minimum(at + 1, len(ids) - 1)], IGNORE)
    out.update(inputs=inputs, targets=targets.astype(small).reshape(B, L), lengths=rows)

    tables = _tables(enc)
    times = _segment_cumsum(tables.shift[ids], starts, lens)
    on_pitch = tables.on[ids]
    if crops.controls:
        out.update(_controls(times, on_pitch, seg, starts, lens, at, rseg, valid, d.drop, B, L,
                             sps))
    if crops.note_state:
        out.update(_state(ids, times, on_pitch, seg, starts, skip, n, at, valid, current, enc,
                          B, L))
    if crops.band_layout is not None:
        out["instrument"] = np.where(valid, current[at], -1).astype(np.int16).reshape(B, L)
    if crops.band_layout is not None or crops.meter:
        out.update(_timed(crops, d, times, on_pitch, current, starts, skip, n, at, rseg, valid,
                          B, L))
    if crops.lookback:
        out["lookback"] = _lookback(crops, d, times, on_pitch, current, starts, skip, n, at,
                                    valid, B, L)
    return out


def _lookback(crops, d, times, on_pitch, current, starts, skip, n, at, valid, B, L):
    """``uint8[B, L, LOOKBACK_DIM]``: the bar lookback of each input row
    (:func:`melodia.features.lookback.lookback_rows`), from the crop's onsets, its lookback
    prefix's included, on the beats of the file's tempo map (stretch undone, as the meter's)."""
    sps = crops.encoding.config.steps_per_second
    stretched = d.factor if crops.stretch else np.ones(B)
    offset_s = crops.time_at(d.file, d.first - 1) / sps
    out = np.zeros((B, L, LOOKBACK_DIM), np.uint8)
    table, bounds = crops._beats, crops._beat_bounds
    for b in range(B):
        events = np.arange(starts[b], starts[b] + skip[b] + n[b] - 1)  # prefix and input rows
        seconds = offset_s[b] + times[events] / sps / stretched[b]
        lo, hi = bounds[d.file[b]], bounds[d.file[b] + 1]
        k = np.maximum(np.searchsorted(table[0, lo:hi], seconds, side="right") - 1, 0) + lo
        beats = _beats(table, k, seconds)
        on = np.flatnonzero(on_pitch[events] >= 0)
        players = current[events[on]] if current is not None else np.zeros(len(on), np.int64)
        kinds = features_of(players, on_pitch[events[on]])
        rows = at[b * L:(b + 1) * L][valid[b * L:(b + 1) * L]] - starts[b]
        out[b, :len(rows)] = lookback_rows(beats[on], kinds, beats[rows])
    return out


def _beats(table: np.ndarray, k: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Beats at ``seconds`` under tempo column ``k`` of a :func:`~melodia.features.band.beat_maps`
    table (rows: start s, qpm, beats before)."""
    return table[2, k] + (seconds - table[0, k]) * table[1, k] / 60.0


def _merge(parts: list[dict], L: int) -> dict:
    """Compact batches of consecutive crops as one (note rows renumbered)."""
    out: dict = {}
    rows = 0
    for part in parts:
        notes = part.get("state_notes")
        if notes is not None:
            notes = notes.copy()
            notes[:, 0] += rows * L
            part = {**part, "state_notes": notes}
        rows += len(part["inputs"])
        for key, value in part.items():
            out.setdefault(key, []).append(value)
    return {k: sum(v) if k == "state_cells" else np.concatenate(v) for k, v in out.items()}


def _controls(times, on_pitch, seg, starts, lens, at, rseg, valid, drop, B, L, sps):
    """What :func:`melodia.features.controls.compute_controls` is made of at the input rows (windows
    within each crop): ``density`` ``int8[B, L]``, the density bin (-1: dropped or past the
    end), and ``histogram`` ``int16[B, L, 12]``, the note-ons per pitch class in the window;
    ``histogram_dropped`` ``bool[B]``. :func:`expand_inputs` makes the 20 floats of them."""
    is_on = on_pitch >= 0
    ons_so_far = np.cumsum(is_on)
    keys = seg * _BIG + times
    on_keys = keys[is_on]
    window = round(DENSITY_WINDOW_S * sps)
    count = np.searchsorted(on_keys, keys[at] + window, side="left") - ons_so_far[at]
    span = np.minimum(times[(starts + lens - 1)[rseg]] - times[at], window)
    density = np.where(span > 0, count * sps / np.maximum(span, 1), 0.0)
    bins = np.where(valid & ~drop[rseg, 0], density_bin(density), -1).astype(np.int8)
    window = round(HISTOGRAM_WINDOW_S * sps)
    end = np.searchsorted(on_keys, keys[at] + window, side="left")
    # prefix counts per class, int16: they wrap, but a window's count (a difference) is exact
    classes = np.zeros((len(on_keys) + 1, PITCH_CLASSES), np.int16)
    classes[np.arange(1, len(on_keys) + 1), on_pitch[is_on] % PITCH_CLASSES] = 1
    np.cumsum(classes, axis=0, dtype=np.int16, out=classes)
    hist = np.take(classes, end, axis=0) - np.take(classes, ons_so_far[at], axis=0)
    hist[~valid] = 0
    return {"density": bins.reshape(B, L), "histogram": hist.reshape(B, L, PITCH_CLASSES),
            "histogram_dropped": drop[:, 1].copy()}


def _state(ids, times, on_pitch, seg, starts, skip, n, at, valid, current, enc, B, L):
    """The notes behind :func:`melodia.features.controls.note_state`, as intervals of input rows: each
    NOTE_ON sounds from its row until the next event touching its pitch (or the crop's end);
    notes struck in the lookback before a crop start sounding at its first row. Drum hits touch
    no pitch. Returns ``state_time`` (steps, per row) and ``state_notes`` ``int32[K, 4]``: first
    row (flat, ``b * L + row``), rows, pitch, onset step."""
    pitch = np.maximum(on_pitch, _tables(enc).off[ids])
    if current is not None:
        pitch[current == DRUMS] = -1
    pos = np.arange(len(ids)) - starts[seg]
    end = skip + n - 1  # a crop's note state covers events [0, end): lookback + input rows
    q = np.flatnonzero((pitch >= 0) & (pitch < NOTE_STATE_PITCHES) & (pos < end[seg]))
    order, until = until_next(pos[q], seg[q] * NOTE_STATE_PITCHES + pitch[q], end[seg[q]])
    q = q[order]  # by crop and pitch, then in time
    struck = on_pitch[q] >= 0
    q, until = q[struck], until[struck]
    first = np.maximum(pos[q], skip[seg[q]])
    rows = np.maximum(until - first, 0)
    sounds = rows > 0
    q, first, rows = q[sounds], first[sounds], rows[sounds]
    notes = np.stack([seg[q] * L + first - skip[seg[q]], rows, pitch[q], times[q]], axis=1)
    state_time = np.where(valid, times[at], 0).astype(np.int32).reshape(B, L)
    return {"state_time": state_time, "state_notes": notes.astype(np.int32),
            "state_cells": int(rows.sum())}


def _timed(crops, d, times, on_pitch, current, starts, skip, n, at, rseg, valid, B, L):
    """Band conditions (line-up played, style, tempo at the crop) and the meter, per crop:
    :func:`melodia.features.plan.conditions` and :func:`melodia.features.band.beats_at` for the whole batch."""
    enc, layout = crops.encoding, crops.band_layout
    sps = enc.config.steps_per_second
    stretched = d.factor if crops.stretch else np.ones(B)
    offset_s = crops.time_at(d.file, d.first - 1) / sps  # where each crop's music starts
    seconds = offset_s[rseg] + times[at] / sps / stretched[rseg]
    start_s = np.where(n > 1, seconds[::L], offset_s)
    table, bounds = crops._beats, crops._beat_bounds  # rows: start s, qpm, beats before
    lo, hi = bounds[d.file], bounds[d.file + 1]
    k, first_k = np.zeros(len(at), np.int64), np.zeros(B, np.int64)  # the tempo in force
    for b in np.flatnonzero(hi - lo > 1):  # only crops of pieces whose tempo changes
        tempo_starts, rows = table[0, lo[b] : hi[b]], slice(b * L, (b + 1) * L)
        k[rows] = np.maximum(np.searchsorted(tempo_starts, seconds[rows], side="right") - 1, 0)
        first_k[b] = max(int(np.searchsorted(tempo_starts, start_s[b], side="right")) - 1, 0)
    out: dict[str, np.ndarray] = {}
    if crops.meter:  # the meter's sin/cos are taken on the device
        beats = _beats(table, lo[rseg] + k, seconds)
        out["beats"] = np.where(valid, beats, 0.0).reshape(B, L)
    if layout is not None:
        band = np.zeros((B, layout.dim), np.float32)
        full = np.repeat(np.arange(B), n)  # all n events of a crop, its last target too
        ev = (starts + skip)[full] + ramp(n)
        hit = on_pitch[ev] >= 0
        band[full[hit], current[ev[hit]]] = 1.0  # the line-up: instruments that strike a note
        styles = crops._style_ids[d.file]
        labelled = np.flatnonzero(styles >= 0)
        band[labelled, layout.style.start + styles[labelled]] = 1.0
        qpm = table[1, lo + first_k] / stretched
        c = enc.config  # melodia.features.band.tempo_position, for every crop
        x = ((np.log(np.clip(qpm, c.min_qpm, c.max_qpm)) - np.log(c.min_qpm))
             / (np.log(c.max_qpm) - np.log(c.min_qpm)) * (c.tempo_bins - 1))
        low = np.floor(x).astype(np.int64)
        high = np.minimum(low + 1, layout.tempo_bins - 1)
        w = x - low
        np.add.at(band, (np.arange(B), layout.tempo.start + low), 1.0 - w)
        np.add.at(band, (np.arange(B), layout.tempo.start + high), w)
        out["band"] = drop_conditions(band, layout, d.drop_band)
    return out


__all__ = ["IGNORE", "InputDims", "compact_batch", "input_dims"]
