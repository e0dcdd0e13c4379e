"""What a band model conditions on: line-ups, styles, tempo and meter. No torch here.

Instruments and line-ups (GM families and names, :func:`~melodia.midi.instruments.parse_lineup`) live
in :mod:`melodia.midi.instruments`; their names are importable from here too.

A band model takes two more inputs than the piano model (see :class:`BandLayout`):

- **conditions**, constant over a piece: the line-up (129 zeros/ones), the style (one-hot over
  the styles the model was trained on) and the tempo (split between the two nearest of the band
  encoding's log-spaced tempo bins); all-zero parts mean "absent", as for the piano controls;
- **the current instrument**, every step: one-hot over 129, set by the last PROGRAM event. Its
  input weights act as an instrument embedding added to the event embedding, so the model knows
  whose note a NOTE_ON is without remembering the PROGRAM event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from melodia.encoding.events import event_times
from melodia.errors import GenerateError
from melodia.features.styles import model_aliases, resolve_style
from melodia.midi.instruments import (DRUMS, GROUPS, N_INSTRUMENTS, LineupError, group_of,
                                      instrument_name, parse_lineup)

# ------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class BandLayout:
    """Where each band condition sits in a model's ``band_dim`` inputs."""

    styles: tuple[str, ...]
    tempo_bins: int = 32

    @property
    def dim(self) -> int:
        return N_INSTRUMENTS + len(self.styles) + self.tempo_bins

    @property
    def lineup(self) -> slice:
        return slice(0, N_INSTRUMENTS)

    @property
    def style(self) -> slice:
        return slice(N_INSTRUMENTS, N_INSTRUMENTS + len(self.styles))

    @property
    def tempo(self) -> slice:
        return slice(N_INSTRUMENTS + len(self.styles), self.dim)

    @classmethod
    def from_info(cls, info: dict) -> "BandLayout":
        """The layout a checkpoint's ``extra["band"]`` describes."""
        return cls(tuple(info.get("styles") or ()), int(info.get("tempo_bins", 32)))

    def style_index(self, style: str) -> int:
        if style not in self.styles:
            known = ", ".join(self.styles) or "none (the model was trained without styles)"
            raise LineupError(f"unknown style {style!r}; this model knows: {known}")
        return self.styles.index(style)


def tempo_position(qpm: float, encoding) -> float:
    """Fractional tempo bin of ``qpm`` (the band encoding's log-spaced bins)."""
    c = encoding.config
    q = float(np.clip(qpm, c.min_qpm, c.max_qpm))
    return (np.log(q) - np.log(c.min_qpm)) / (np.log(c.max_qpm) - np.log(c.min_qpm)) * (
        c.tempo_bins - 1)


def conditions(layout: BandLayout, encoding, instruments: Sequence[int] | None = None,
               style: int | None = None, qpm: float | None = None) -> np.ndarray:
    """The constant band inputs ``float32[layout.dim]``; ``None`` leaves a part absent (zeros)."""
    out = np.zeros(layout.dim, dtype=np.float32)
    if instruments is not None:
        out[np.asarray(list(instruments), dtype=np.int64)] = 1.0
    if style is not None:
        out[layout.style.start + int(style)] = 1.0
    if qpm is not None:
        x = tempo_position(qpm, encoding)
        low = int(np.floor(x))
        high = min(low + 1, layout.tempo_bins - 1)
        w = x - low
        out[layout.tempo.start + low] += 1.0 - w
        out[layout.tempo.start + high] += w
    return out


def plan_band(info: dict[str, Any] | None, band_dim: int, encoding, *, style: str | None = None,
              lineup: str | Sequence[str | int] | None = None, tempo: float | None = None,
              rules: bool = True, seed: int = 0) -> dict[str, Any] | None:
    """Style, line-up and tempo to play (asked for, else drawn by ``seed`` from the training files
    of the style, as a band model's checkpoint lists them in ``info``), with the band conditions
    they make; None for a model without band conditions (``band_dim`` 0)."""
    asked = [k for k, v in (("style", style), ("lineup", lineup)) if v is not None]
    if not band_dim:  # a tempo alone only sets the file's (and the beat clock's) tempo
        if asked:
            raise GenerateError(f"{', '.join(asked)}: only a band model (--model band) takes "
                                "these; this model has no band conditions")
        return None
    info = info or {}
    layout = BandLayout(tuple(info.get("styles") or ()), int(info.get("tempo_bins", 32)))
    if layout.dim != band_dim:
        raise GenerateError("the checkpoint's band information does not match its model")
    if style is not None:  # as musicians write it: heavy-metal, Bossa Nova, jazz...
        style = resolve_style(style, layout.styles, model_aliases(info))
    rows = [r for r in info.get("lineups") or [] if style is None or r.get("style") == style]
    drawn = rows[int(np.random.default_rng((seed, 9)).integers(len(rows)))] if rows else {}
    try:
        style_index = None if style is None else layout.style_index(style)
        style = style or drawn.get("style") or None
        if style_index is None and style in layout.styles:
            style_index = layout.styles.index(style)
        preferred = (info.get("programs") or {}).get(style or "", {})
        instruments = (parse_lineup(lineup, preferred) if lineup is not None
                       else [int(i) for i in drawn.get("instruments") or []] or None)
    except LineupError as err:
        raise GenerateError(str(err)) from None
    names = [instrument_name(i) for i in instruments or []]
    qpm = float(tempo or drawn.get("qpm") or 120.0)
    return {"style": style, "instruments": instruments, "qpm": qpm, "names": names,
            "profile": info.get("profile") if rules else None,
            "conditions": conditions(layout, encoding, instruments, style_index, qpm)}


def current_instrument(ids: np.ndarray, encoding) -> np.ndarray:
    """``int64[T]``: the instrument in force after each event (PROGRAM sets it; 0 at first)."""
    ids = np.asarray(ids, dtype=np.int64)
    p0 = encoding.vocab.offset("PROGRAM")
    is_program = (ids >= p0) & (ids < p0 + N_INSTRUMENTS)
    last = np.maximum.accumulate(np.where(is_program, np.arange(len(ids)), -1)) if len(ids) \
        else np.zeros(0, np.int64)
    return np.where(last >= 0, ids[np.maximum(last, 0)] - p0, 0)


def instrument_onehot(current: np.ndarray) -> np.ndarray:
    """``float32[T, 129]`` one-hot of :func:`current_instrument`."""
    out = np.zeros((len(current), N_INSTRUMENTS), dtype=np.float32)
    out[np.arange(len(current)), current] = 1.0
    return out


def playing(ids: np.ndarray, encoding, current: np.ndarray | None = None) -> list[int]:
    """Instruments with a NOTE_ON in ``ids``, sorted."""
    ids = np.asarray(ids, dtype=np.int64)
    current = current_instrument(ids, encoding) if current is None else current
    o0, n = encoding.vocab.offset("NOTE_ON"), encoding.vocab.range("NOTE_ON").size
    return sorted(set(current[(ids >= o0) & (ids < o0 + n)].tolist()))


def file_conditions(ids: np.ndarray, encoding, layout: BandLayout, style: int | None,
                    start: int = 0, tempos=None) -> np.ndarray:
    """The conditions a piece of music plays under: the instruments playing in ``ids[start:]``,
    its style, and the tempo in force at ``start``: from the exact map ``tempos`` when given,
    else the last TEMPO event before it (or the first)."""
    ids = np.asarray(ids, dtype=np.int64)
    if tempos is not None:
        at = (event_times(ids[:start], encoding)[0][-1] / encoding.config.steps_per_second
              if start else 0.0)
        return conditions(layout, encoding, playing(ids[start:], encoding), style,
                          qpm_at(tempos, at))
    t0, n = encoding.vocab.offset("TEMPO"), encoding.vocab.range("TEMPO").size
    found = np.flatnonzero((ids >= t0) & (ids < t0 + n))
    before = found[found < max(start, 1)]
    pick = before[-1] if len(before) else (found[0] if len(found) else None)
    qpm = None if pick is None else float(encoding.bin_to_qpm(ids[pick] - t0))
    return conditions(layout, encoding, playing(ids[start:], encoding), style, qpm)


def record_conditions(records: Sequence[dict], sequences: Sequence[np.ndarray], encoding,
                      layout: BandLayout) -> list[np.ndarray]:
    """:func:`file_conditions` of each dataset file (manifest ``records``: their ``style``
    labels and exact ``tempos``)."""
    return [file_conditions(s, encoding, layout,
                            layout.styles.index(r["style"]) if r.get("style") in layout.styles
                            else None, tempos=r.get("tempos"))
            for r, s in zip(records, sequences)]


def drop_conditions(cond: np.ndarray, layout: BandLayout, dropped: np.ndarray) -> np.ndarray:
    """Zero, in place, the parts (line-up, style, tempo) of the rows of ``cond`` ``[B, dim]``
    that ``dropped`` ``bool[B, 3]`` marks (condition dropout)."""
    for part, rows in zip((layout.lineup, layout.style, layout.tempo), dropped.T):
        cond[rows, part] = 0.0
    return cond


EVENT_GROUPS = GROUPS + ("time",)  # per-event NLL groups: the instrument groups, then timing


def event_groups(ids: np.ndarray, encoding) -> np.ndarray:
    """Per event, the index in :data:`EVENT_GROUPS` of whose event it is: a note, velocity or
    PROGRAM event belongs to the group of its instrument (the one it plays on, or selects);
    TIME_SHIFT and TEMPO events to ``time``."""
    ids = np.asarray(ids, dtype=np.int64)
    vocab = encoding.vocab
    current = current_instrument(ids, encoding)
    before = np.concatenate([[0], current[:-1]]) if len(ids) else current
    owner = before.copy()
    p0 = vocab.offset("PROGRAM")
    is_program = (ids >= p0) & (ids < p0 + N_INSTRUMENTS)
    owner[is_program] = ids[is_program] - p0
    table = np.array([GROUPS.index(group_of(i)) for i in range(N_INSTRUMENTS)])
    out = table[owner]
    for name in ("TIME_SHIFT", "TEMPO"):
        start = vocab.offset(name)
        out[(ids >= start) & (ids < start + vocab.range(name).size)] = len(GROUPS)
    return out


# ------------------------------------------------------------------------------- meter

# Where the music is in the bar: sin and cos of the phase within each of these spans (in beats):
# the 4/4 bar, half bar, beat, eighth, triplet eighth and sixteenth. Band music is played on a
# grid at its tempo; with 10 ms time shifts the LSTM would otherwise have to count steps to
# find it. Computed from the exact tempo map (the dataset keeps it per file; generation knows
# the tempo it asked for), the grid starting at time 0.
METER_SPANS = (4.0, 2.0, 1.0, 0.5, 1.0 / 3.0, 0.25)
METER_DIM = 2 * len(METER_SPANS)


def tempo_map(tempos, default_qpm: float = 120.0) -> np.ndarray:
    """``float64[K, 2]`` rows ``(time_s, qpm)`` sorted by time, starting at 0 s."""
    rows = np.asarray(tempos if tempos is not None and len(tempos) else [[0.0, default_qpm]],
                      dtype=np.float64).reshape(-1, 2)
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    if rows[0, 0] > 0:
        rows = np.vstack([[0.0, rows[0, 1]], rows])
    rows[:, 1] = np.clip(rows[:, 1], 1.0, 1000.0)
    return rows


def beat_map(tempos) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tempo map's columns for integrating it: each tempo's start (s), qpm, and the beats
    elapsed before it."""
    rows = tempo_map(tempos)
    starts, qpm = rows[:, 0], rows[:, 1]
    return starts, qpm, np.concatenate([[0.0], np.cumsum(np.diff(starts) * qpm[:-1] / 60.0)])


def beat_maps(tempo_maps: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """The :func:`beat_map` of many tempo maps in one table: ``float64[3, K]`` (rows: start s,
    qpm, beats before), map ``i`` in columns ``bounds[i]:bounds[i + 1]``."""
    maps = [np.stack(beat_map(t)) for t in tempo_maps]
    bounds = np.concatenate([[0], np.cumsum([m.shape[1] for m in maps])]).astype(np.int64)
    return (np.concatenate(maps, axis=1) if maps else np.zeros((3, 0))), bounds


def beats_at(seconds: np.ndarray, tempos) -> np.ndarray:
    """Beats (quarter notes) elapsed at each time, integrating the tempo map."""
    starts, qpm, before = beat_map(tempos)
    seconds = np.asarray(seconds, dtype=np.float64)
    k = np.searchsorted(starts, seconds, side="right") - 1
    k = np.maximum(k, 0)
    return before[k] + (seconds - starts[k]) * qpm[k] / 60.0


def meter_features(beats: np.ndarray) -> np.ndarray:
    """``float32[T, METER_DIM]``: sin and cos of the phase in each of :data:`METER_SPANS`."""
    phase = 2 * np.pi * np.asarray(beats, dtype=np.float64)[:, None] / np.array(METER_SPANS)
    return np.concatenate([np.sin(phase), np.cos(phase)], axis=1).astype(np.float32)


def tempos_from_ids(ids: np.ndarray, encoding) -> np.ndarray:
    """A tempo map from the TEMPO events of a stream (bin centres; 120 qpm before the first)."""
    ids = np.asarray(ids, dtype=np.int64)
    t0, n = encoding.vocab.offset("TEMPO"), encoding.vocab.range("TEMPO").size

    times = event_times(ids, encoding)[0] / encoding.config.steps_per_second
    at = np.flatnonzero((ids >= t0) & (ids < t0 + n))
    if not len(at):
        return tempo_map(None)
    return tempo_map(np.stack([times[at], encoding.bin_to_qpm(ids[at] - t0)], axis=1))


def qpm_at(tempos, seconds: float) -> float:
    """The tempo in force at ``seconds``."""
    rows = tempo_map(tempos)
    return float(rows[max(int(np.searchsorted(rows[:, 0], seconds, side="right")) - 1, 0), 1])


# ------------------------------------------------------------------- what instruments do


def instrument_profile(sequences: Sequence[np.ndarray], encoding, min_notes: int = 20,
                       quantile: float = 0.005, solo_share: float = 0.97) -> dict[str, Any]:
    """How each instrument plays in a corpus: its pitch range (the ``quantile`` to ``1 -
    quantile`` span of its notes) and whether it is monophonic (at ``solo_share`` or more of
    its note-ons, none of its other notes sounds: basses, most leads). Instruments with fewer
    than ``min_notes`` notes are left out. Generation keeps each instrument inside them."""
    vocab = encoding.vocab
    on0, off0 = vocab.offset("NOTE_ON"), vocab.offset("NOTE_OFF")
    n_pitch = vocab.range("NOTE_ON").size
    pitches: dict[int, list[np.ndarray]] = {}
    alone = np.zeros(N_INSTRUMENTS)
    total = np.zeros(N_INSTRUMENTS)
    for seq in sequences:
        ids = np.asarray(seq, dtype=np.int64)
        current = current_instrument(ids, encoding)
        is_on = (ids >= on0) & (ids < on0 + n_pitch)
        for inst in np.unique(current[is_on]):
            pitches.setdefault(int(inst), []).append(ids[is_on & (current == inst)] - on0)
        sounding = np.zeros((N_INSTRUMENTS, n_pitch), dtype=bool)
        for event, inst in zip(ids.tolist(), current.tolist()):
            if on0 <= event < on0 + n_pitch:
                total[inst] += 1
                alone[inst] += not sounding[inst].any()
                sounding[inst, event - on0] = True
            elif off0 <= event < off0 + n_pitch:
                sounding[inst, event - off0] = False
    ranges, mono = {}, []
    for inst, parts in sorted(pitches.items()):
        values = np.concatenate(parts)
        if len(values) < min_notes:
            continue
        lo, hi = np.quantile(values, [quantile, 1 - quantile])
        ranges[str(inst)] = [int(np.floor(lo)), int(np.ceil(hi))]
        if inst != DRUMS and alone[inst] >= solo_share * total[inst]:
            mono.append(inst)
    return {"ranges": ranges, "monophonic": mono}


__all__ = ["BandLayout", "EVENT_GROUPS", "METER_DIM", "METER_SPANS", "beat_map", "beat_maps",
           "beats_at", "conditions", "current_instrument", "drop_conditions", "event_groups",
           "file_conditions", "instrument_onehot", "instrument_profile", "meter_features",
           "plan_band", "playing", "qpm_at", "record_conditions", "tempo_map", "tempo_position",
           "tempos_from_ids"]
