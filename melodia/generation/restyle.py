"""Restyle a song: its melody kept, a new band in another style playing the song's changes.

::

    import melodia
    result = melodia.restyle("song.mid", style="swing", lineup="drums,bass,piano", seed=1)
    result.write("song-swing.mid")   # the melody (swung), then the new band's parts

Three steps, each a function of its own:

1. **What stays** (:func:`find_melody`): a track named like a melody (melody, vocal, lead...),
   else the most melodic part: of the pitched tracks that play one note at a time most of the
   time and sound through most of the song, the highest (a bass line is never one). ``keep``
   names tracks instead (a track's name, a GM family, name or program, or ``#N``: the Nth
   track with notes).
2. **The feel** (:func:`apply_feel`): the kept melody re-timed, its onsets (and the ends that
   meet them) moved only between a straight off-beat eighth (half-way through the beat) and a
   swung one (two thirds through); every pitch stays, in its order.
3. **The new band** (:func:`~melodia.generation.accompaniment.accompany_ids`): the line-up
   asked for, in the style asked for, along the song's tempo map and bars, leaning on the
   harmony of the **whole original** beat by beat (read from all its tracks before the old
   accompaniment is dropped), so it plays the song's changes, not only what the melody implies.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from melodia.errors import GenerateError
from melodia.evaluate.stats import grid_positions, grid_times
from melodia.features.plan import model_aliases, resolve_style
from melodia.generation.accompaniment import (Accompaniment, accompany_ids, read_given,
                                              require_band)
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.infill import describe, select_tracks
from melodia.midi import Score, midi_bytes
from melodia.midi.instruments import DRUMS, LineupError, parse_lineup, part_instruments
from melodia.model.registry import load_model

MELODY_NAMES = ("melody", "vocal", "voice", "lead", "solo", "sing", "tune", "theme", "melodie")
FEELS = ("auto", "swing", "straight")
SWING_STYLES = frozenset({"swing"})  # the model styles played with swung eighths
STRAIGHT, SWUNG = 0.5, 2.0 / 3.0  # where the off-beat eighth falls in the beat
FEEL_WINDOW = 0.06  # beats: an onset this near an off-beat eighth is one (16ths are 0.25 off)
MONOPHONIC = 0.7  # a melody plays one note at a time at least this share of its notes
PRESENT = 0.5  # and sounds in at least this share of the song's bars
LOWEST = 55  # and is not a bass line: its median pitch at least G3, its program not a bass
MAX_SONG_S = 15 * 60.0  # longer files are refused before any work
# the harmony prior's strength (logits) for a restyle, chosen on the validation songs
# (eval_restyle.py --set validation --files 4 --styles swing,funk,rock --harmony 0.5, 1, 1.5, 2:
# 0.73, 0.85, 0.94, 1.02 x the songs' own accompaniment's agreement): the strongest that stays
# below the song's own (the new band plays as many passing notes as the old, a few more)
RESTYLE_HARMONY = 1.5
DEFAULT_LINEUP = "drums,bass,piano"  # for a model that records no line-ups of its styles
MAX_PARTS = 5  # a drawn line-up keeps at most this many parts (drums and bass first)
# the style's usual lead instrument (GM program) for --lead auto
STYLE_LEADS = {"swing": 65, "metal": 30, "rock": 29, "funk": 62, "bossa": 73, "latin": 56,
               "country": 110}


@dataclass
class Restyled:
    """A restyled song: the kept melody (``melody``: its tracks' indices in the original, with
    their names), moved by ``feel`` (``moved`` onsets), and the new band (``result``, whose
    ``source`` is the melody's own file)."""

    result: Accompaniment
    melody: list[int]
    names: list[str]
    feel: str
    moved: int

    @property
    def band(self) -> dict[str, Any]:
        return self.result.band

    @property
    def seed(self) -> int:
        return self.result.seed

    def midi_bytes(self, piece: int = 0) -> bytes:
        return self.result.midi_bytes(piece)

    def write(self, path: str | Path, piece: int = 0) -> Path:
        return self.result.write(path, piece)


def _polyphony(notes: np.ndarray) -> float:
    """The share of ``notes`` that start while another of them still sounds (30 ms of legato
    overlap forgiven)."""
    if len(notes) < 2:
        return 0.0
    order = np.argsort(notes["start_s"], kind="stable")
    start, end = notes["start_s"][order], notes["end_s"][order]
    sounding = np.maximum.accumulate(end)[:-1]  # the latest end among earlier notes
    return float(np.mean(start[1:] < sounding - 0.03))


def _presence(notes: np.ndarray, score: Score, bars: int) -> float:
    """The share of the song's ``bars`` (4 beats) in which a note of ``notes`` starts."""
    if not len(notes) or bars < 1:
        return 0.0
    bar = np.floor(grid_positions(notes["start_s"], score.tempos, 1) / 4).astype(np.int64)
    return len(np.unique(bar[(bar >= 0) & (bar < bars)])) / bars


def melodic_tracks(score: Score) -> list[tuple[int, float, float, float]]:
    """``(index, monophony, presence, median pitch)`` of every pitched track with notes."""
    bars = max(int(np.ceil(grid_positions(np.array([score.end_s]), score.tempos, 1)[0] / 4)), 1)
    return [(i, 1.0 - _polyphony(t.notes), _presence(t.notes, score, bars),
             float(np.median(t.notes["pitch"])))
            for i, t in enumerate(score.tracks) if len(t.notes) and not t.is_drum]


def keep_tracks(score: Score, keep: str) -> list[int]:
    """The tracks ``keep`` names: ``#N`` (the Nth track with notes, from 1), a track's name, a
    GM family, name or program (see :func:`~melodia.generation.infill.select_tracks`)."""
    playing = [i for i, t in enumerate(score.tracks) if len(t.notes)]
    chosen: set[int] = set()
    for item in filter(None, (s.strip() for s in keep.split(","))):
        if item.startswith("#"):
            if not item[1:].isdigit() or not 1 <= int(item[1:]) <= len(playing):
                raise GenerateError(f"--keep {item}: the song has tracks #1..#{len(playing)}")
            chosen.add(playing[int(item[1:]) - 1])
        else:
            chosen.update(select_tracks(score, item))
    if any(score.tracks[i].is_drum for i in chosen):
        raise GenerateError("--keep names the drums: restyle keeps a melody and plays new drums")
    return sorted(chosen)


def find_melody(score: Score, keep: str | None = None) -> list[int]:
    """The melody's track indices (see the module's text); one clear line when none is found."""
    if keep:
        return keep_tracks(score, keep)
    candidates = melodic_tracks(score)
    named = [c for c in candidates
             if any(word in score.tracks[c[0]].name.lower() for word in MELODY_NAMES)]
    if named:  # the most melodic of the tracks named like a melody
        return [max(named, key=lambda c: (c[1] >= MONOPHONIC, c[2], c[3]))[0]]
    shaped = [c for c in candidates if c[1] >= MONOPHONIC and c[2] >= PRESENT
              and c[3] >= LOWEST and not 32 <= score.tracks[c[0]].program < 40]
    if not shaped:
        have = ", ".join(f"#{n + 1} {describe(score.tracks[i])}" for n, i in
                         enumerate(i for i, t in enumerate(score.tracks) if len(t.notes)))
        raise GenerateError("no melodic track found (none is named melody, vocal, lead or solo, "
                            "and none plays one note at a time through the song): name one with "
                            f"--keep, e.g. --keep '#1' or --keep flute; the song has: "
                            f"{have or 'no notes'}")
    return [max(shaped, key=lambda c: c[3])[0]]


def feel_for(style: str | None, feel: str = "auto") -> str:
    """``swing`` or ``straight``: ``feel`` itself, or the style's (auto)."""
    if feel not in FEELS:
        raise GenerateError(f"--feel {feel!r}: choose {', '.join(FEELS)}")
    if feel != "auto":
        return feel
    return "swing" if style in SWING_STYLES else "straight"


def _move(times: np.ndarray, tempos: np.ndarray, source: float, target: float) -> np.ndarray:
    """``times`` whose place in the beat is within :data:`FEEL_WINDOW` of ``source`` moved by
    ``target - source`` (fractions of a beat) along the tempo map: a note played a little early
    or late stays as early or late; the others as they were."""
    beats = grid_positions(times, tempos, 1)
    near = np.abs(beats - np.floor(beats) - source) <= FEEL_WINDOW
    moved = times.copy()
    moved[near] = grid_times(beats[near] + (target - source), tempos, 1)
    return moved


def apply_feel(notes: np.ndarray, tempos: np.ndarray, feel: str) -> tuple[np.ndarray, int]:
    """``notes`` re-timed to ``feel`` (``swing``: off-beat eighths two thirds into the beat;
    ``straight``: swung ones back to half-way) and how many onsets moved. An end that meets a
    moved off-beat moves with it (legato stays legato); an onset that would pass the next note's
    stays, so the order of the pitches never changes."""
    source, target = (STRAIGHT, SWUNG) if feel == "swing" else (SWUNG, STRAIGHT)
    out = np.sort(notes, order="start_s", kind="stable").copy()
    start = _move(out["start_s"], tempos, source, target)
    onsets = np.unique(out["start_s"])  # a chord's notes share one onset, and move together
    at = np.searchsorted(onsets, out["start_s"])
    after = np.append(onsets, np.inf)[at + 1]  # the next onset, as it was
    before = np.insert(onsets, 0, -np.inf)[at]
    keep = (start >= after) | (start <= before)
    start[keep] = out["start_s"][keep]
    end = _move(out["end_s"], tempos, source, target)
    end = np.maximum(end, start + 0.01)
    moved = int(np.sum(start != out["start_s"]))
    out["start_s"], out["end_s"] = start, end
    return out, moved


def lead_program(lead: str | int | None, style: str | None) -> int | None:
    """The GM program the melody is played by: ``lead`` (a program, a GM name or family), the
    style's usual lead (``auto``), or None (the melody's own instruments)."""
    if lead is None or lead == "":
        return None
    if str(lead).strip().lower() == "auto":
        return STYLE_LEADS.get(style or "")
    try:
        programs = sorted(part_instruments(str(lead)) - {DRUMS})
    except LineupError as error:
        raise GenerateError(f"--lead: {error}") from None
    if not programs:
        raise GenerateError("--lead names an instrument with a pitch, not the drums")
    return programs[0]


def melody_score(score: Score, tracks: Sequence[int], feel: str, program: int | None
                 ) -> tuple[Score, int]:
    """The song with only ``tracks`` (re-timed to ``feel``, played by ``program`` if given),
    its tempo map, time signatures and length; and how many onsets moved."""
    kept, moved = [], 0
    for i in tracks:
        track = score.tracks[i]
        notes, n = apply_feel(track.notes, score.tempos, feel)
        moved += n
        kept.append(dataclasses.replace(track, notes=notes,
                                        program=track.program if program is None else program))
    return Score(tracks=kept, tempos=score.tempos.copy(),
                 time_signatures=score.time_signatures.copy(), until_s=score.end_s), moved


def style_lineup(info: dict, style: str, seed: int, taken: Sequence[int]) -> str:
    """A line-up the band model's training files of ``style`` played (drawn by ``seed``), less
    the kept melody's instruments ``taken``; :data:`DEFAULT_LINEUP` where none has drums and a
    pitched part."""
    heard = [row["instruments"] for row in info.get("lineups") or ()
             if row.get("style") == style]
    rng = np.random.default_rng(seed)
    for k in rng.permutation(len(heard)):
        parts = sorted({int(i) for i in heard[k]} - set(taken),
                       key=lambda i: (i != DRUMS, not 32 <= i < 40, i))  # drums, bass, the rest
        if DRUMS in parts and len(parts) > 1:
            return ",".join("drums" if i == DRUMS else str(i) for i in parts[:MAX_PARTS])
    return DEFAULT_LINEUP


def _check_lineup(lineup: str | Sequence[str | int]) -> None:
    try:
        instruments = parse_lineup(lineup)
    except LineupError as error:
        raise GenerateError(str(error)) from None
    if all(i == DRUMS for i in instruments):
        raise GenerateError(f"--lineup {lineup!r} has no pitched part to play the song's "
                            "changes: add bass, guitar, keys...")


def restyle_ids(model, song, config: GenerateConfig, keep: str | None = None,
                feel: str = "auto", lead: str | int | None = None, drum_grid: bool = True,
                harmony: float = RESTYLE_HARMONY) -> Restyled:
    """Restyle ``song`` (a MIDI path or bytes) as the module's text says, with ``config``'s
    style (required), line-up (default: one the style's training files played,
    :func:`style_lineup`), randomness and seed."""
    source, score = read_given(song)
    if score.end_s > MAX_SONG_S:
        raise GenerateError(f"the song lasts {score.end_s / 60:.0f} min: restyle takes songs up "
                            f"to {MAX_SONG_S / 60:.0f} min (cut it with a MIDI editor first)")
    if not config.style:
        raise GenerateError("restyle needs a --style: the band to play the song (e.g. swing, "
                            "metal, bossa; --list-styles shows them)")
    if config.lineup:
        _check_lineup(config.lineup)
    checkpoint = load_model(model)
    require_band(checkpoint.encoding)
    info = (checkpoint.extra or {}).get("band") or {}
    style = resolve_style(config.style, list(info.get("styles") or ()), model_aliases(info))
    tracks = find_melody(score, keep)
    feel = feel_for(style, feel)
    kept, moved = melody_score(score, tracks, feel, lead_program(lead, style))
    config = dataclasses.replace(config, style=style)  # resolved once: the session takes it as is
    if config.seed is None:  # drawn now: the line-up it draws is replayed by the printed seed
        config = dataclasses.replace(config, seed=secrets.randbelow(2**31))
    if not config.lineup:
        config = dataclasses.replace(config, lineup=style_lineup(
            info, style, config.seed, [t.program for t in kept.tracks]))
    result = accompany_ids(checkpoint, midi_bytes(kept), config, drum_grid, harmony,
                           harmony_from=score)
    return Restyled(result, tracks, [describe(score.tracks[i]) for i in tracks], feel, moved)


def restyle(song, style: str, lineup: str | Sequence[str | int] | None = None,
            model="band", *, keep: str | None = None, feel: str = "auto",
            lead: str | int | None = None,
            randomness: float | str | dict | None = None, seed: int | None = None,
            temperature: float = 1.0, num: int = 1, harmony: float = RESTYLE_HARMONY
            ) -> Restyled:
    """``song`` (a MIDI path or bytes) played by a band in ``style``: its melody kept (found,
    or the tracks ``keep`` names), re-timed to ``feel`` (auto: the style's), optionally played
    by ``lead`` (a GM program or name, or ``auto``: the style's usual lead), with ``lineup``
    (default: a line-up of the style's, drawn by ``seed``) playing the original's harmony;
    ``.write(path)`` saves it."""
    config = GenerateConfig(seed=seed, num=num, style=style, lineup=lineup,
                            randomness=randomness,
                            sampler=SamplerConfig(temperature=temperature))
    return restyle_ids(model, song, config, keep, feel, lead, True, harmony)


__all__ = ["DEFAULT_LINEUP", "FEELS", "RESTYLE_HARMONY", "Restyled", "apply_feel", "feel_for",
           "find_melody", "keep_tracks", "lead_program", "melodic_tracks", "melody_score",
           "restyle", "restyle_ids", "style_lineup"]
