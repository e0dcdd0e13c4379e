"""What a band model conditions on, read from music: line-ups, styles, tempo and meter of the
training files, per-event groups, instrument profiles. No torch here.

Instruments and line-ups (GM families and names, :func:`~melodia.midi.instruments.parse_lineup`)
live in :mod:`melodia.midi.instruments`; the band plan of a new piece and the layout of the
conditions in :mod:`melodia.features.plan`.

A band model takes two more inputs than the piano model (see
:class:`~melodia.features.plan.BandLayout`):

- **conditions**, constant over a piece: the line-up (129 zeros/ones), the style (one-hot over
  the styles the model was trained on) and the tempo (split between the two nearest of the band
  encoding's log-spaced tempo bins); all-zero parts mean "absent", as for the piano controls;
- **the current instrument**, every step: one-hot over 129, set by the last PROGRAM event. Its
  input weights act as an instrument embedding added to the event embedding, so the model knows
  whose note a NOTE_ON is without remembering the PROGRAM event.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from melodia.encoding.events import event_times
from melodia.features.plan import BandLayout, conditions
from melodia.midi.instruments import DRUMS, GROUPS, N_INSTRUMENTS, group_of

# ------------------------------------------------------------------------------- inputs


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


__all__ = ["EVENT_GROUPS", "METER_DIM", "METER_SPANS", "beat_map", "beat_maps", "beats_at",
           "current_instrument", "drop_conditions", "event_groups", "file_conditions",
           "instrument_onehot", "instrument_profile", "meter_features", "playing", "qpm_at",
           "record_conditions", "tempo_map", "tempos_from_ids"]
