"""Training data: random crops of event ids with on-the-fly augmentation, deterministic by index.

Sample ``i`` of a :class:`CropDataset` is a pure function of ``(seed, i)``: which file, where the
crop starts, the transposition, the time stretch and the control dropout all come from
:func:`uniforms`, a counter-based hash of ``(seed, i)`` computed for a whole batch at once. The
trainer asks for samples ``step * batch_size + j``, so a resumed run sees exactly the data it
would have seen, and ranks of a distributed run each take their own slice of every global batch.

Augmentation works directly on the ids, as Magenta's (transpose -3..+3 semitones, stretch time by
0.95..1.05), and keeps a crop a faithful piece of a performance:

- :func:`transpose_ids` moves NOTE_ON/NOTE_OFF ids; the shift is clipped so no pitch leaves the
  encoding's range;
- :func:`stretch_ids` scales the time of every event, rounds it to the step grid (keeping events
  that were at different times at different times, so the stream stays canonical) and re-emits the
  TIME_SHIFT events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from melodia.encoding.events import build_stream, event_times
from melodia.features.band import (METER_DIM, beat_maps, beats_at, current_instrument,
                                   drop_conditions, instrument_onehot, meter_features, playing,
                                   qpm_at, tempo_map, tempos_from_ids)
from melodia.features.controls import (CONTROL_DIM, HISTOGRAM_WINDOW_S, NOTE_STATE_DIM,
                                       NOTE_STATE_LOOKBACK_S, compute_controls, drop_controls,
                                       note_state, sounding_index)
from melodia.features.lookback import LOOKBACK_DIM, sequence_lookback
from melodia.features.plan import BandLayout, conditions
from melodia.midi.instruments import DRUMS, N_INSTRUMENTS
from melodia.training.batches import IGNORE, compact_batch, input_dims
from melodia.training.loader import expand_inputs, to_device, to_tensors

_FILE_KEY = 1 << 40  # time keys of sequence f: f * _FILE_KEY + steps (sorted across sequences)


def transpose_ids(ids: np.ndarray, semitones: int, encoding) -> np.ndarray:
    """Shift every note by ``semitones``, clipped so the highest and lowest notes stay in range.
    Drum notes (band encoding: after ``PROGRAM 128``) name drum sounds and are left alone."""
    vocab = encoding.vocab
    on, off = vocab.offset("NOTE_ON"), vocab.offset("NOTE_OFF")
    n = vocab.range("NOTE_ON").size
    ids = np.asarray(ids, dtype=np.int64)
    is_on, is_off = (ids >= on) & (ids < on + n), (ids >= off) & (ids < off + n)
    if any(r.type == "PROGRAM" for r in vocab.ranges):
        melodic = current_instrument(ids, encoding) != DRUMS
        is_on, is_off = is_on & melodic, is_off & melodic
    rel = np.concatenate([ids[is_on] - on, ids[is_off] - off])
    if len(rel) == 0 or semitones == 0:
        return ids.copy()
    semitones = int(np.clip(semitones, -rel.min(), n - 1 - rel.max()))
    out = ids.copy()
    out[is_on | is_off] += semitones
    return out


def stretch_ids(ids: np.ndarray, factor: float, encoding) -> np.ndarray:
    """Scale time by ``factor`` (> 0.5): every event's step becomes ``round(step * factor)``.

    Events at distinct steps stay at distinct steps (a collision moves the later one step on), so
    the order of events within a step, and hence canonical encoding, is kept. The identity for
    ``factor == 1``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    first = encoding.vocab.offset("TIME_SHIFT")
    shifts = encoding.vocab.range("TIME_SHIFT")
    is_shift = (ids >= first) & (ids < first + shifts.size)
    times = np.cumsum(np.where(is_shift, ids - first + shifts.min, 0))
    keep = ~is_shift
    steps = np.append(times[keep], times[-1] if len(times) else 0)  # + the crop's end
    uniq, inverse = np.unique(steps, return_inverse=True)
    new = np.floor(uniq * factor + 0.5).astype(np.int64)
    k = np.arange(len(uniq))
    new = k + np.maximum.accumulate(new - k)  # strictly increasing, as uniq is
    new_steps = new[inverse.reshape(-1)]
    main = np.append(ids[keep], -1)  # a dummy event carries the trailing time shifts
    out = build_stream(new_steps, main, [], first, shifts.max)
    return out[:-1].astype(np.int64)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
DRAWS = 9  # uniforms per sample: group, position, transpose, stretch, 2 control and 3 band drops


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (a bijection of uint64 with good avalanche)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, indices: Sequence[int] | np.ndarray, k: int = DRAWS) -> np.ndarray:
    """``float64[len(indices), k]`` in ``[0, 1)``: a pure function of ``(seed, index, j)``, the
    same whichever batch, process or order asks for it."""
    with np.errstate(over="ignore"):
        index = np.asarray(indices, dtype=np.int64).astype(np.uint64).reshape(-1, 1)
        base = _mix(_mix(np.full(1, seed, dtype=np.int64).astype(np.uint64) + _GOLDEN) ^ index)
        z = _mix(base + (np.arange(1, k + 1, dtype=np.uint64) * _GOLDEN))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass
class Draws:
    """Where each sample of a batch comes from and how it is augmented (see :func:`uniforms`)."""

    file: np.ndarray  # sequence index
    start: np.ndarray  # first event of the crop
    first: np.ndarray  # first event the crop's note state is rebuilt from (<= start)
    end: np.ndarray  # events read (crop + margins for stretch and the control windows)
    semitones: np.ndarray
    factor: np.ndarray  # time stretch
    drop: np.ndarray  # [B, 2] drop the density / histogram control
    drop_band: np.ndarray  # [B, 3] drop the line-up / style / tempo condition


class CropDataset(Dataset):
    """Random crops of ``seq_len + 1`` events from ``sequences``, augmented; see the module doc.

    ``dataset[i]`` is a dict of ``inputs`` (``int64[L]``), ``targets`` (``int64[L]``, the inputs
    shifted by one, ``-100`` past the end of a short file) and ``controls`` (``float32[L, C]``:
    the controls, then the note state; ``C = 0`` without either). Crops are drawn uniformly over
    all start positions, or, with ``groups`` (a group index per sequence) and ``weights`` (one per
    group), first a group with probability ``weights[g]``, then uniformly within it: that is how
    corpora are mixed. The note state of a crop is rebuilt from ``NOTE_STATE_LOOKBACK_S`` of
    music before it, so notes struck before the crop are known to be sounding.
    """

    def __init__(
        self,
        sequences: Sequence[np.ndarray],
        encoding,
        seq_len: int,
        seed: int = 0,
        transpose: int = 0,
        stretch: float = 0.0,
        controls: bool = False,
        control_dropout: float = 0.0,
        note_state: bool = False,
        groups: Sequence[int] | None = None,
        weights: Sequence[float] | None = None,
        band_layout: BandLayout | None = None,
        styles: Sequence[int | None] | None = None,
        meter: bool = False,
        tempos: Sequence | None = None,
        lookback: bool = False,
    ) -> None:
        groups = [0] * len(sequences) if groups is None else list(groups)
        if len(groups) != len(sequences):
            raise ValueError("groups needs one group index per sequence")
        keep = [i for i, s in enumerate(sequences) if len(s) >= 2]
        self.sequences = [sequences[i] for i in keep]
        if not self.sequences:
            raise ValueError("no sequence of at least 2 events to train on")
        self._groups = np.array([groups[i] for i in keep], dtype=np.int64)
        n_groups = int(max(groups)) + 1 if groups else 1
        weights = [1.0] * n_groups if weights is None else [float(w) for w in weights]
        if len(weights) != n_groups or any(not w >= 0 for w in weights):
            raise ValueError("weights needs one non-negative weight per group")
        present = np.bincount(self._groups, minlength=n_groups) > 0
        w = np.where(present, weights, 0.0)
        if w.sum() <= 0:
            raise ValueError("every group with sequences has weight 0")
        self._weights = w / w.sum() if n_groups > 1 else None
        self.note_state = note_state
        if seq_len < 1 or transpose < 0 or not 0 <= stretch < 0.5 or not 0 <= control_dropout <= 1:
            raise ValueError("need seq_len >= 1, transpose >= 0, 0 <= stretch < 0.5, "
                             "0 <= control_dropout <= 1")
        self.encoding, self.seq_len, self.seed = encoding, seq_len, seed
        self.transpose, self.stretch = transpose, stretch
        self.controls, self.control_dropout = controls, control_dropout
        starts = np.array([max(1, len(s) - seq_len) for s in self.sequences], dtype=np.int64)
        self._cum_starts = np.cumsum(starts)
        self._members = [np.flatnonzero(self._groups == g) for g in range(n_groups)]
        self._group_cum = [np.cumsum(starts[m]) for m in self._members]
        self._lengths = np.array([len(x) for x in self.sequences], dtype=np.int64)
        self._offsets = np.cumsum(self._lengths) - self._lengths  # in the flat array
        self._flat = np.concatenate([np.asarray(x) for x in self.sequences])
        self._time_keys = None
        if controls or note_state or meter or lookback:  # time after each event: control
            # windows, the music a crop's note state and bar lookback are rebuilt from
            self._time_keys = np.concatenate([f * _FILE_KEY + event_times(s, encoding)[0]
                                              for f, s in enumerate(self.sequences)])
        sps = encoding.config.steps_per_second
        self._lookback_steps = round(NOTE_STATE_LOOKBACK_S * sps)
        if note_state:  # per file, the notes as (onset, until) event intervals, by onset
            self._sounding = sounding_index(self.sequences, encoding, _FILE_KEY)
        self._lookahead_steps = math.ceil(HISTOGRAM_WINDOW_S * sps / (1 - stretch)) + 1
        self._margin = (seq_len + 1) // 8 + 8 if stretch else 0  # stretch < 1 drops time shifts
        self.band_layout = band_layout
        if band_layout is not None:  # band conditions: per file its style and first tempo
            styles = [None] * len(sequences) if styles is None else list(styles)
            if len(styles) != len(sequences):
                raise ValueError("styles needs one style index (or None) per sequence")
            self._styles = [styles[i] for i in keep]
            self._style_ids = np.array([-1 if s is None else s for s in self._styles], np.int64)
        self.meter, self.lookback = meter, lookback
        if band_layout is not None or meter or lookback:  # exact tempo maps (else TEMPO events')
            tempos = [None] * len(sequences) if tempos is None else list(tempos)
            if len(tempos) != len(sequences):
                raise ValueError("tempos needs one tempo map (or None) per sequence")
            self._tempos = [tempo_map(tempos[i]) if tempos[i] is not None
                            else tempos_from_ids(sequences[i], encoding) for i in keep]
            self._beats, self._beat_bounds = beat_maps(self._tempos)

    def __len__(self) -> int:
        """Distinct crop positions (sample indices themselves are unbounded)."""
        return int(self._cum_starts[-1])

    @property
    def control_dim(self) -> int:
        """Float inputs per step: controls, band conditions, note state, current instrument."""
        band = (self.band_layout.dim + N_INSTRUMENTS) if self.band_layout is not None else 0
        return ((CONTROL_DIM if self.controls else 0) + band
                + (NOTE_STATE_DIM if self.note_state else 0) + (METER_DIM if self.meter else 0)
                + (LOOKBACK_DIM if self.lookback else 0))

    def draws(self, indices: Sequence[int] | np.ndarray) -> Draws:
        """Where samples ``indices`` come from and how they are augmented, all at once."""
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        u = uniforms(self.seed, index)
        file, start = np.zeros(len(index), np.int64), np.zeros(len(index), np.int64)
        if self._weights is None:
            parts = [(np.arange(len(index)), self._cum_starts, None)]
        else:  # a corpus by its weight, then a crop position within it
            cum_w = np.cumsum(self._weights)
            g = np.minimum(np.searchsorted(cum_w, u[:, 0], side="right"),
                           int(np.flatnonzero(self._weights > 0)[-1]))
            parts = [(np.flatnonzero(g == k), self._group_cum[k], self._members[k])
                     for k in np.unique(g)]
        for rows, cum, members in parts:
            pos = np.minimum((u[rows, 1] * cum[-1]).astype(np.int64), cum[-1] - 1)
            f = np.searchsorted(cum, pos, side="right")
            start[rows] = pos - np.concatenate([[0], cum])[f]
            file[rows] = f if members is None else members[f]
        semitones = np.floor(u[:, 2] * (2 * self.transpose + 1)).astype(np.int64) - self.transpose
        factor = 1 - self.stretch + 2 * self.stretch * u[:, 3]
        at = self._offsets[file]
        end = at + np.minimum(start + self.seq_len + 1 + self._margin, self._lengths[file])
        first = start.copy()
        if self._time_keys is not None:  # include what the control windows of the crop look at
            keys = self._time_keys
            end = np.maximum(end, np.searchsorted(keys, keys[end - 1] + self._lookahead_steps,
                                                  side="right"))
            if self.note_state or self.lookback:  # the music the crop's note state and bar
                back = np.searchsorted(keys, keys[at + np.maximum(start - 1, 0)]  # lookback are
                                       - self._lookback_steps) - at  # rebuilt from: 10 s before
                # it at most; the note state's from the oldest note still on, the bar lookback's
                # all of it (8 beats at 48 BPM)
                reach = back if self.lookback else np.maximum(
                    back, self._earliest_sounding(file, start))
                first = np.where(start > 0, reach, start)
        return Draws(file, start, first, end - at, semitones, factor,
                     u[:, 4:6] < self.control_dropout, u[:, 6:9] < self.control_dropout)

    def time_at(self, file: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Steps from the start of sequence ``file`` to after its event ``index`` (0 for
        ``index < 0``)."""
        keys = self._time_keys[self._offsets[file] + np.maximum(index, 0)] - file * _FILE_KEY
        return np.where(index >= 0, keys, 0)

    def _earliest_sounding(self, file: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Per crop, the event index of the earliest onset of a note still sounding at
        ``start`` (``start`` itself when none is): nothing before it changes the note state."""
        onsets, reach = self._sounding  # global keys: file * _FILE_KEY + event index
        if not len(onsets):
            return start
        query = file * _FILE_KEY + start
        struck = np.searchsorted(onsets, query, side="left")  # notes struck before start
        first_on = np.searchsorted(reach, query, side="right")  # first lasting past start
        found = first_on < struck
        return np.where(found, onsets[np.minimum(first_on, len(onsets) - 1)] - file * _FILE_KEY,
                        start)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids ``int64[<= L + 1]`` and inputs ``float32[len - 1, C]`` of sample ``index``."""
        d = self.draws([index])
        f, start, first, end = (int(x[0]) for x in (d.file, d.start, d.first, d.end))
        semitones, factor = int(d.semitones[0]), float(d.factor[0])
        drop_density, drop_hist = d.drop[0]
        seq = self.sequences[f]
        ids = np.asarray(seq[first:end], dtype=np.int64)
        if semitones:
            ids = transpose_ids(ids, semitones, self.encoding)
        skip = start - first
        if self.stretch:
            ids = stretch_ids(ids, factor, self.encoding)
            skip = self._skip_after_stretch(seq[first:start], ids)
        n = min(len(ids) - skip, self.seq_len + 1)
        c_dim = CONTROL_DIM if self.controls else 0
        layout = self.band_layout
        b_dim = layout.dim if layout is not None else 0
        s_dim = NOTE_STATE_DIM if self.note_state else 0
        inputs = np.zeros((n - 1, self.control_dim), dtype=np.float32)
        if self.controls:  # the control windows look ahead past the crop
            inputs[:, :c_dim] = compute_controls(ids, self.encoding)[skip : skip + n - 1]
            drop_controls(inputs[:, :c_dim], drop_density, drop_hist)
        if self.note_state:
            inputs[:, c_dim + b_dim : c_dim + b_dim + s_dim] = note_state(
                ids[: skip + n - 1], self.encoding, start=skip)
        if layout is not None or self.meter or self.lookback:  # where the crop is, in the
            stretched = factor if self.stretch else 1.0  # piece's own time
            offset_s = (int(self.time_at(np.array([f]), np.array([first - 1]))[0])
                        / self.encoding.config.steps_per_second)
            every = (offset_s + event_times(ids[: skip + n - 1], self.encoding)[0]
                     / self.encoding.config.steps_per_second / stretched)
            seconds = every[skip:]
            beats = beats_at(every, self._tempos[f])  # the meter's, the bar lookback's
        if layout is not None:  # the crop's line-up, the file's style, its tempo; the instrument
            current = current_instrument(ids[: skip + n], self.encoding)
            start_s = seconds[0] if len(seconds) else offset_s
            qpm = qpm_at(self._tempos[f], start_s) / stretched
            cond = conditions(layout, self.encoding,
                              playing(ids[skip : skip + n], self.encoding, current[skip:]),
                              self._styles[f], qpm)
            inputs[:, c_dim : c_dim + b_dim] = drop_conditions(cond[None], layout, d.drop_band)
            at = c_dim + b_dim + s_dim
            inputs[:, at : at + N_INSTRUMENTS] = instrument_onehot(current[skip : skip + n - 1])
        at = self.control_dim - (LOOKBACK_DIM if self.lookback else 0)
        if self.meter:
            inputs[:, at - METER_DIM : at] = meter_features(beats[skip:])
        if self.lookback:
            inputs[:, at:] = sequence_lookback(ids[: skip + n - 1], self.encoding, beats, skip)
        return ids[skip : skip + n], inputs

    def _skip_after_stretch(self, prefix: np.ndarray, stretched: np.ndarray) -> int:
        """Where the crop starts in a stretched stream: after the prefix's last non-shift event."""
        first = self.encoding.vocab.offset("TIME_SHIFT")
        size = self.encoding.vocab.range("TIME_SHIFT").size

        def events(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a)
            return np.flatnonzero((a < first) | (a >= first + size))

        k = len(events(prefix))
        return 0 if k == 0 else int(events(stretched)[k - 1]) + 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids, controls = self.sample(index)
        L = self.seq_len
        inputs = np.zeros(L, dtype=np.int64)
        targets = np.full(L, IGNORE, dtype=np.int64)
        ctrl = np.zeros((L, controls.shape[1]), dtype=np.float32)
        inputs[: len(ids) - 1], targets[: len(ids) - 1] = ids[:-1], ids[1:]
        ctrl[: len(controls)] = controls
        return {"inputs": torch.from_numpy(inputs), "targets": torch.from_numpy(targets),
                "controls": torch.from_numpy(ctrl)}

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """Samples ``indices`` stacked: inputs/targets ``[B, L]``, controls ``[B, L, C]``; the
        same as stacking ``self[i]``, built all at once (see :mod:`melodia.training.batches`)."""

        compact = to_device(to_tensors(compact_batch(self, indices)), "cpu")
        return {"inputs": compact["inputs"], "targets": compact["targets"],
                "controls": expand_inputs(compact, input_dims(self))}


def holdout_tail(sequences: Sequence[np.ndarray], fraction: float,
                 min_events: int = 2) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split every sequence into a head (train) and its last ``fraction`` (held out)."""
    heads, tails = [], []
    for s in sequences:
        cut = len(s) - max(min_events, int(round(len(s) * fraction)))
        if cut >= min_events:
            heads.append(s[:cut])
            tails.append(s[cut:])
        else:
            heads.append(s)
    return heads, tails


__all__ = ["CropDataset", "holdout_tail", "stretch_ids", "transpose_ids"]
