"""Training batches at GPU speed: every crop of a batch built in one pass, dense inputs on the device.

:meth:`melodia.dataset.CropDataset.sample` builds one crop at a time and returns its dense
per-step inputs (``float32[L, C]``: controls, band conditions, note state, current instrument,
meter; ``C`` is 276 for the piano model and ~590 for the band). That is the readable reference,
but at 3M events/s those floats alone would be 3-7 GB/s of memory traffic. Here:

- :func:`compact_batch` builds all crops of a batch together, over one flat array of the crops'
  events (augmentation, controls and event times vectorised across crops, no per-crop numpy
  loop), and returns **compact** arrays: ids as int16, the density bin and pitch-class counts,
  the sounding notes as row intervals, the instrument as one small integer, the beat (the meter's
  phase), and the band conditions once per crop;
- :func:`melodia.loader.expand_inputs` turns that into the dense inputs with torch, on whatever
  device the batch was copied to (on a GPU, a few kernels);
- :func:`melodia.loader.batch_loader` builds batches ahead of the step in background processes
  (``torch.utils.data.DataLoader`` workers over the memory-mapped shards), pinned for
  non-blocking copies.

No torch here: a worker builds numpy arrays.

Sample ``i`` is the same pure function of ``(seed, i)`` as ``CropDataset.sample`` (both take
:meth:`~melodia.dataset.CropDataset.draws`), so resume stays exact; ``tests/test_batches.py`` checks
that the two paths give equal inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from melodia.band import DRUMS, METER_DIM, N_INSTRUMENTS
from melodia.controls import (DENSITY_WINDOW_S, HISTOGRAM_WINDOW_S, NOTE_STATE_PITCHES,
                              PITCH_CLASSES, density_bin, ramp, until_next)

IGNORE = -100  # target id of padding, skipped by the loss
_BIG = 1 << 40  # separates crops in flat sort keys (far above any crop's length in steps)
CHUNK = 64  # crops built together; bigger batches are built in pieces of this many


@dataclass(frozen=True)
class InputDims:
    """Widths of the dense per-step inputs, in model order (see melodia.model.ModelConfig)."""

    controls: int = 0
    band: int = 0
    state: int = 0
    instrument: int = 0
    meter: int = 0
    steps_per_second: int = 100  # the encoding's time grid (note-state recency)

    @property
    def total(self) -> int:
        return self.controls + self.band + self.state + self.instrument + self.meter


def input_dims(crops) -> InputDims:
    """The :class:`InputDims` of a :class:`~melodia.dataset.CropDataset`."""
    from melodia.controls import CONTROL_DIM, NOTE_STATE_DIM

    layout = crops.band_layout
    return InputDims(CONTROL_DIM if crops.controls else 0, layout.dim if layout else 0,
                     NOTE_STATE_DIM if crops.note_state else 0,
                     N_INSTRUMENTS if layout else 0, METER_DIM if crops.meter else 0,
                     crops.encoding.config.steps_per_second)


# ------------------------------------------------------------------------ flat helpers


@dataclass(frozen=True)
class _Tables:
    """Per id of an encoding: one gather instead of range checks on every event."""

    shift: np.ndarray  # steps of a TIME_SHIFT, else 0
    on: np.ndarray  # pitch of a NOTE_ON, else -1
    off: np.ndarray  # pitch of a NOTE_OFF, else -1
    program: np.ndarray  # instrument of a PROGRAM (band), else -1


_TABLES: dict[str, _Tables] = {}


def _tables(encoding) -> _Tables:
    import json

    key = json.dumps(encoding.to_dict(), sort_keys=True, default=str)
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


def _segment_cumsum(values: np.ndarray, starts: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at every segment start."""
    cs = np.cumsum(values)
    return cs - np.concatenate([[0], cs])[starts][seg]


def _current_instrument(ids: np.ndarray, starts: np.ndarray, tables: _Tables) -> np.ndarray:
    """:func:`melodia.band.current_instrument` of every segment (0 before its first PROGRAM)."""
    program = tables.program[ids]
    marks = np.where(program >= 0, 2 * np.arange(len(ids)) + 1, -1)  # odd: a PROGRAM here
    marks[starts] = np.maximum(marks[starts], 2 * starts)  # even: a segment starts, none yet
    last = np.maximum.accumulate(marks)
    return np.where(last % 2 == 1, program[(last - 1) // 2], 0)


def _transpose(ids, starts, seg, semitones, encoding, current) -> None:
    """:func:`melodia.dataset.transpose_ids` of every segment, in place (``current``: the band
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
    ids[note] += shift[seg[note]]


def _stretch(ids, starts, lens, seg, factor, prefix, encoding):
    """:func:`melodia.dataset.stretch_ids` of every segment; returns the new ids, segment starts
    and lengths, and where each crop starts after stretching (after the stretched prefix's last
    event, as ``CropDataset._skip_after_stretch``)."""
    B = len(starts)
    s0 = encoding.vocab.offset("TIME_SHIFT")
    shifts = encoding.vocab.range("TIME_SHIFT")
    amount = _tables(encoding).shift[ids]
    times = _segment_cumsum(amount, starts, seg)
    keep = np.flatnonzero(amount == 0)
    kseg = seg[keep]
    kept = np.bincount(kseg, minlength=B)
    ends = np.cumsum(kept)
    # every crop's events, then a last entry that carries the time shifts after them
    kpos, last = np.arange(len(keep)) + kseg, ends + np.arange(B)
    steps = np.empty(len(keep) + B, np.int64)
    steps[kpos], steps[last] = times[keep], times[starts + lens - 1]
    step_seg = np.repeat(np.arange(B), kept + 1)
    key = step_seg * _BIG + steps  # already sorted: times never decrease within a crop
    change = np.ones(len(key), bool)
    change[1:] = key[1:] != key[:-1]
    uniq, inverse = key[change], np.cumsum(change) - 1  # np.unique without its sort
    useg = uniq // _BIG
    new = np.floor((uniq - useg * _BIG) * factor[useg] + 0.5).astype(np.int64)
    k = np.arange(len(uniq)) - np.searchsorted(useg, np.arange(B))[useg]
    new = k + np.maximum.accumulate(new - k + useg * _BIG) - useg * _BIG  # strictly increasing
    new_steps = new[inverse]
    # the stream: before each event its time shifts (as encoding.events.build_stream lays them)
    delta = np.diff(new_steps, prepend=0)
    first = last - kept
    delta[first] = new_steps[first]  # each crop starts at step 0
    full, rest = np.divmod(delta, shifts.max)
    n_shifts = full + (rest > 0)
    count = n_shifts.copy()
    count[kpos] += 1  # the event itself (the last entries have none)
    at = np.cumsum(count) - count
    out = np.empty(int(count.sum()), ids.dtype)
    one = n_shifts == 1  # most gaps: one shift of exactly the gap
    out[at[one]] = s0 + delta[one] - 1
    many = np.flatnonzero(n_shifts > 1)  # long gaps: full shifts, then the rest
    if len(many):
        owner = np.repeat(many, n_shifts[many])
        within = np.arange(len(owner)) - np.repeat(np.cumsum(n_shifts[many]) - n_shifts[many],
                                                   n_shifts[many])
        partial = (within == n_shifts[owner] - 1) & (rest[owner] > 0)
        out[at[owner] + within] = np.where(partial, s0 + rest[owner] - 1, s0 + shifts.max - 1)
    event_at = (at + n_shifts)[kpos]
    out[event_at] = ids[keep]
    stop = at[last] + n_shifts[last]
    begin = np.concatenate([[0], stop[:-1]])
    before = np.bincount(kseg[keep - starts[kseg] < prefix[kseg]], minlength=B)
    skip = np.zeros(B, np.int64)
    if len(keep):
        skip = np.where(before > 0, event_at[np.maximum(ends - kept + before - 1, 0)] + 1 - begin,
                        0)
    return out, begin, stop - begin, skip


# ------------------------------------------------------------------------------ batches


def compact_batch(crops, indices: Sequence[int]) -> dict[str, np.ndarray]:
    """Samples ``indices`` of ``crops`` (a :class:`~melodia.dataset.CropDataset`), compact.

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
    times = _segment_cumsum(tables.shift[ids], starts, seg)
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
    return out


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
    """What :func:`melodia.controls.compute_controls` is made of at the input rows (windows
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
    hist = (classes[end] - classes[ons_so_far[at]]) * valid[:, None].astype(np.int16)
    return {"density": bins.reshape(B, L), "histogram": hist.reshape(B, L, PITCH_CLASSES),
            "histogram_dropped": drop[:, 1].copy()}


def _state(ids, times, on_pitch, seg, starts, skip, n, at, valid, current, enc, B, L):
    """The notes behind :func:`melodia.controls.note_state`, as intervals of input rows: each
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
    :func:`melodia.band.conditions` and :func:`melodia.band.beats_at` for the whole batch."""
    enc, layout = crops.encoding, crops.band_layout
    sps = enc.config.steps_per_second
    stretched = d.factor if crops.stretch else np.ones(B)
    offset_s = crops.time_at(d.file, d.first - 1) / sps  # where each crop's music starts
    seconds = offset_s[rseg] + times[at] / sps / stretched[rseg]
    maps = [crops._beat_maps[f] for f in d.file]  # per crop: (starts_s, qpm, beats before)
    k = np.zeros(len(at), np.int64)
    for row in np.flatnonzero([len(m[0]) > 1 for m in maps]):  # tempo changes: which tempo
        rows = slice(row * L, (row + 1) * L)
        k[rows] = np.maximum(np.searchsorted(maps[row][0], seconds[rows], side="right") - 1, 0)
    table = np.concatenate([np.stack(m, axis=1) for m in maps])  # [sum K, 3]
    base = np.cumsum([len(m[0]) for m in maps]) - np.array([len(m[0]) for m in maps])
    out: dict[str, np.ndarray] = {}
    if crops.meter:
        t = table[base[rseg] + k]  # the meter's sin/cos are taken on the device
        beats = np.where(valid, t[:, 2] + (seconds - t[:, 0]) * t[:, 1] / 60.0, 0.0)
        out["beats"] = beats.reshape(B, L)
    if layout is not None:
        band = np.zeros((B, layout.dim), np.float32)
        full = np.repeat(np.arange(B), n)  # all n events of a crop, its last target too
        ev = (starts + skip)[full] + ramp(n)
        hit = on_pitch[ev] >= 0
        pairs = np.unique(full[hit] * N_INSTRUMENTS + current[ev][hit])
        band[pairs // N_INSTRUMENTS, pairs % N_INSTRUMENTS] = 1.0
        styles = np.array([crops._styles[f] if crops._styles[f] is not None else -1
                           for f in d.file])
        labelled = np.flatnonzero(styles >= 0)
        band[labelled, layout.style.start + styles[labelled]] = 1.0
        start_s = np.where(n > 1, seconds[::L], offset_s)
        first_k = np.array([max(int(np.searchsorted(m[0], x, side="right")) - 1, 0)
                            for m, x in zip(maps, start_s)], dtype=np.int64)
        qpm = table[base + first_k, 1] / stretched
        c = enc.config  # melodia.band.tempo_position, for every crop
        x = ((np.log(np.clip(qpm, c.min_qpm, c.max_qpm)) - np.log(c.min_qpm))
             / (np.log(c.max_qpm) - np.log(c.min_qpm)) * (c.tempo_bins - 1))
        low = np.floor(x).astype(np.int64)
        high = np.minimum(low + 1, layout.tempo_bins - 1)
        w = x - low
        np.add.at(band, (np.arange(B), layout.tempo.start + low), 1.0 - w)
        np.add.at(band, (np.arange(B), layout.tempo.start + high), w)
        for part, column in zip((layout.lineup, layout.style, layout.tempo), d.drop_band.T):
            band[column, part] = 0.0
        out["band"] = band
    return out


__all__ = ["IGNORE", "InputDims", "compact_batch", "input_dims"]
