"""What a band model conditions on: instruments, line-ups, styles and tempo. No torch here.

Instruments are the band encoding's ids: General MIDI programs 0..127 and ``DRUMS = 128``. GM
groups programs in 16 families of 8 (pianos, guitars, basses...); a line-up names instruments
by family (``drums,bass,guitar,guitar``), by GM name (``distortion guitar``) or by program
(``30``), and :func:`parse_lineup` turns it into distinct instrument ids, picking for a family
the programs a style uses most (two guitars: the two likeliest guitar programs).

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

DRUMS = 128
N_INSTRUMENTS = 129
FAMILIES = ("piano", "chromatic-percussion", "organ", "guitar", "bass", "strings", "ensemble",
            "brass", "reed", "pipe", "synth-lead", "synth-pad", "synth-effects", "ethnic",
            "percussive", "sound-effects")
ALIASES = {"keys": "piano", "chromatic": "chromatic-percussion", "lead": "synth-lead",
           "synth": "synth-lead", "pad": "synth-pad", "sax": "reed", "horns": "brass",
           "choir": "ensemble", "drum": "drums", "kit": "drums", "percussion": "drums",
           "guitars": "guitar", "basses": "bass", "string": "strings"}
# programs a family stands for when no style says otherwise, likeliest first (GM numbers)
DEFAULT_PROGRAMS = {"piano": [0, 4, 1, 2], "guitar": [29, 30, 27, 25, 26, 28, 24, 31],
                    "bass": [33, 34, 32, 35, 38, 36, 37, 39], "organ": [16, 17, 18, 19],
                    "strings": [48, 40, 41, 42, 49], "ensemble": [48, 49, 52, 50],
                    "brass": [61, 56, 57, 60], "reed": [65, 66, 64, 71], "pipe": [73, 71, 74],
                    "synth-lead": [80, 81, 87], "synth-pad": [88, 89, 90]}
# coarser groups for per-instrument evaluation
GROUPS = ("drums", "bass", "guitar", "keys", "strings", "winds", "synth", "other")
_GROUP_OF_FAMILY = {"piano": "keys", "chromatic-percussion": "keys", "organ": "keys",
                    "guitar": "guitar", "bass": "bass", "strings": "strings",
                    "ensemble": "strings", "brass": "winds", "reed": "winds", "pipe": "winds",
                    "synth-lead": "synth", "synth-pad": "synth", "synth-effects": "synth"}


class LineupError(ValueError):
    """A line-up that names no known instrument, or more than a band model can play."""


def family_of(instrument: int) -> str:
    """``"drums"`` or the GM family name of a program."""
    return "drums" if instrument == DRUMS else FAMILIES[int(instrument) // 8]


def group_of(instrument: int) -> str:
    """Evaluation group of an instrument: drums, bass, guitar, keys, strings, winds, synth, other."""
    family = family_of(instrument)
    return "drums" if family == "drums" else _GROUP_OF_FAMILY.get(family, "other")


def instrument_name(instrument: int) -> str:
    """``"Drums"`` or the GM name, e.g. ``"Distortion Guitar"``."""
    if instrument == DRUMS:
        return "Drums"
    import pretty_midi

    return pretty_midi.program_to_instrument_name(int(instrument))


def _gm_name_to_program(name: str) -> int | None:
    import pretty_midi

    try:
        return int(pretty_midi.instrument_name_to_program(name.title()))
    except ValueError:
        lowered = name.lower()
        for program in range(128):
            if pretty_midi.program_to_instrument_name(program).lower() == lowered:
                return program
    return None


def parse_lineup(spec: str | Sequence[str | int],
                 preferred: dict[str, Sequence[int]] | None = None) -> list[int]:
    """Distinct instrument ids for a line-up such as ``"drums,bass,guitar,guitar"``.

    Each item is ``drums``, a GM family (``guitar``, ``bass``, ``keys``/``piano``, ``organ``,
    ``strings``, ``brass``, ``reed``/``sax``, ``synth``...), a GM instrument name
    (``"overdriven guitar"``) or a program number 0..127. A family takes the first program of
    ``preferred[family]`` (a style's likeliest) not taken yet, then GM's usual ones, then any.
    """
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    items = [i for i in items if str(i).strip()]
    if not items:
        raise LineupError("empty line-up: name instruments like drums,bass,guitar,keys")
    taken: list[int] = []
    for item in items:
        taken.append(_resolve(str(item).strip().lower(), taken, preferred or {}))
    if len(taken) > 16:
        raise LineupError(f"a line-up holds at most 16 instruments (MIDI channels), not "
                          f"{len(taken)}")
    return taken


def _resolve(item: str, taken: list[int], preferred: dict[str, Sequence[int]]) -> int:
    item = ALIASES.get(item, item)
    if item == "drums":
        if DRUMS in taken:
            raise LineupError("drums named twice: a band has one drum kit (channel 10)")
        return DRUMS
    if item.isdigit():
        program = int(item)
        if not 0 <= program <= 127:
            raise LineupError(f"GM programs are 0..127, not {program}")
        if program in taken:
            raise LineupError(f"program {program} named twice; name the family (e.g. guitar) "
                              "to get distinct programs")
        return program
    if item in FAMILIES:
        first = FAMILIES.index(item) * 8
        order = [int(p) for p in preferred.get(item, [])] + DEFAULT_PROGRAMS.get(item, [])
        order += list(range(first, first + 8))
        for program in order:
            if family_of(program) == item and program not in taken:
                return program
        raise LineupError(f"more {item} parts than GM has {item} programs (8)")
    program = _gm_name_to_program(item)
    if program is None:
        raise LineupError(f"unknown instrument {item!r}: use drums, a GM family "
                          f"({', '.join(f for f in FAMILIES[:12])}...), a GM instrument name "
                          "or a program number 0..127")
    if program in taken:
        raise LineupError(f"{item} named twice")
    return program


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
        from melodia.controls import event_times

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


def drop_conditions(cond: np.ndarray, layout: BandLayout, rng: np.random.Generator,
                    rate: float) -> np.ndarray:
    """Zero each part (line-up, style, tempo) with probability ``rate`` (in place)."""
    for part in (layout.lineup, layout.style, layout.tempo):
        if rng.random() < rate:
            cond[..., part] = 0.0
    return cond


__all__ = ["ALIASES", "BandLayout", "EVENT_GROUPS", "instrument_profile", "METER_DIM", "METER_SPANS", "beats_at", "qpm_at",
           "event_groups", "meter_features", "tempo_map", "tempos_from_ids", "DEFAULT_PROGRAMS", "DRUMS", "FAMILIES", "GROUPS",
           "LineupError", "N_INSTRUMENTS", "conditions", "current_instrument",
           "drop_conditions", "record_conditions", "family_of", "file_conditions", "group_of",
           "instrument_name", "instrument_onehot", "instrument_values", "parse_lineup", "playing", "tempo_position"]


def instrument_values(spec: str | dict, lineup: Sequence[int]) -> dict[int, float]:
    """``"drums=0.8,guitar=1.1"`` -> ``{128: 0.8, 29: 1.1, 30: 1.1}``: a family (or alias) sets
    every instrument of the line-up in it; a GM name or program number sets that program."""
    items = spec.items() if isinstance(spec, dict) else [
        part.split("=", 1) for part in str(spec).split(",") if part.strip()]
    out: dict[int, float] = {}
    for item in items:
        if len(item) != 2:
            raise LineupError(f"per-instrument values look like drums=0.8,guitar=1.1, not {spec!r}")
        key, value = str(item[0]).strip().lower(), item[1]
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise LineupError(f"{key}={value!r}: the value must be a number") from None
        key = ALIASES.get(key, key)
        if key == "drums" or key in FAMILIES:
            members = [i for i in lineup if family_of(i) == key]
            if not members:
                raise LineupError(f"{key} is not in the line-up ({', '.join(map(instrument_name, lineup))})")
        else:
            program = int(key) if key.isdigit() else _gm_name_to_program(key)
            if program is None or not 0 <= program <= 127:
                raise LineupError(f"unknown instrument {key!r} in {spec!r}")
            members = [program]
        for i in members:
            out[int(i)] = number
    return out


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


def beats_at(seconds: np.ndarray, tempos) -> np.ndarray:
    """Beats (quarter notes) elapsed at each time, integrating the tempo map."""
    rows = tempo_map(tempos)
    starts, qpm = rows[:, 0], rows[:, 1]
    before = np.concatenate([[0.0], np.cumsum(np.diff(starts) * qpm[:-1] / 60.0)])
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
    from melodia.controls import event_times

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
