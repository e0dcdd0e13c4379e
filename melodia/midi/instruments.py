"""Instruments and line-ups of the band encoding: GM families, names and programs. No torch here.

Instruments are the band encoding's ids: General MIDI programs 0..127 and ``DRUMS = 128``. GM
groups programs in 16 families of 8 (pianos, guitars, basses...); a line-up names instruments
by family (``drums,bass,guitar,guitar``), by GM name (``distortion guitar``) or by program
(``30``), and :func:`parse_lineup` turns it into distinct instrument ids, picking for a family
the programs a style uses most (two guitars: the two likeliest guitar programs). What a band
model conditions on (line-up, style, tempo, meter) lives in :mod:`melodia.features.band`.
"""

from __future__ import annotations

from typing import Sequence

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
                 preferred: dict[str, Sequence[int]] | None = None,
                 given: Sequence[int] = ()) -> list[int]:
    """Distinct instrument ids for a line-up such as ``"drums,bass,guitar,guitar"``.

    Each item is ``drums``, a GM family (``guitar``, ``bass``, ``keys``/``piano``, ``organ``,
    ``strings``, ``brass``, ``reed``/``sax``, ``synth``...), a GM instrument name
    (``"overdriven guitar"``) or a program number 0..127. A family takes the first program of
    ``preferred[family]`` (a style's likeliest) not taken yet, then GM's usual ones, then any.
    ``given``: instruments that already play (given material); the line-up plays beside them.

    >>> [instrument_name(i) for i in parse_lineup("drums,bass,guitar")]
    ['Drums', 'Electric Bass (finger)', 'Overdriven Guitar']
    >>> [instrument_name(i) for i in parse_lineup("keys", given=[0])]
    ['Electric Piano 1']
    """
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    items = [i for i in items if str(i).strip()]
    if not items:
        raise LineupError("empty line-up: name instruments like drums,bass,guitar,keys")
    taken: list[int] = [int(i) for i in given]
    for item in items:
        if str(item).strip().lower() == "drums" and DRUMS in given:
            raise LineupError("drums: the given music has its own drums (a band has one kit, "
                              "channel 10); leave drums out of the line-up")
        if str(item).strip().isdigit() and int(item) in given:
            raise LineupError(f"program {int(item)} is a part of the given music; name another")
        taken.append(_resolve(str(item).strip().lower(), taken, preferred or {}))
    if len(taken) > 16:
        raise LineupError(f"a line-up holds at most 16 instruments (MIDI channels), not "
                          f"{len(taken)}" + (" with the given parts" if given else ""))
    return taken[len(given):]


def part_instruments(item: str) -> frozenset[int]:
    """The instruments a part's name stands for: ``drums``, a GM family (every program of it),
    a GM name or a program number. Raises :class:`LineupError` for a name GM does not know.

    >>> sorted(part_instruments("bass"))[:3], sorted(part_instruments("drums"))
    ([32, 33, 34], [128])
    """
    key = ALIASES.get(item.strip().lower(), item.strip().lower())
    if key == "drums":
        return frozenset([DRUMS])
    if key.isdigit() and 0 <= int(key) <= 127:
        return frozenset([int(key)])
    if key in FAMILIES:
        first = FAMILIES.index(key) * 8
        return frozenset(range(first, first + 8))
    program = _gm_name_to_program(key)
    if program is None:
        raise LineupError(f"unknown part {item!r}: use drums, a GM family ("
                          f"{', '.join(FAMILIES[:6])}...), a GM instrument name, a program "
                          "number 0..127 or a track's name")
    return frozenset([program])


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
        name, key = key, ALIASES.get(key, key)
        if key == "drums" or key in FAMILIES:
            members = [i for i in lineup if family_of(i) == key]
            if not members:
                raise LineupError(f"{name} is not in the line-up "
                                  f"({', '.join(map(instrument_name, lineup))})")
        else:
            program = int(key) if key.isdigit() else _gm_name_to_program(key)
            if program is None or not 0 <= program <= 127:
                raise LineupError(f"unknown instrument {key!r} in {spec!r}")
            members = [program]
        for i in members:
            out[int(i)] = number
    return out


__all__ = ["ALIASES", "DEFAULT_PROGRAMS", "DRUMS", "FAMILIES", "GROUPS", "LineupError",
           "N_INSTRUMENTS", "family_of", "group_of", "instrument_name", "instrument_values",
           "parse_lineup", "part_instruments"]
