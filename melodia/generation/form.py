"""Song form: sections that come back. ``melodia generate --form AABA --bars 8`` plays an A of
8 bars, plays it again, a B that is new, and A once more.

::

    import melodia
    song = melodia.form("AABA", bars=8, model="band", style="rock", randomness=0.2, seed=1)
    song.write("aaba.mid")

How the sections are made (:func:`form_ids`):

- a **new section** (the first A, the first B...) continues the song so far: the model is
  primed with every bar before it and plays ``bars`` new bars, so a B follows from the A it
  hears but is drawn afresh (its own random stream, never a copy);
- a **returning section** replays the first one's notes, then regenerates ``round(R x bars)``
  of its bars, R the variation (``randomness``; 0 is a literal repeat, 1 a section made anew
  in the first one's image): the last bar first (where players vary a repeat: a fill into what
  follows), then bars drawn by seed. A regenerated bar hears the song up to it and leans on the
  bar it replaces (a copy prior, :mod:`melodia.generation.guide`, of strength ``(1 - R)`` times
  the infill's), so a variation keeps its place in the form.

The band plays one plan throughout (style, line-up, tempo and controls drawn once), 4/4 bars at
its tempo, drums on the grid of 16ths and triplets; the piano model plays the same form over a
nominal 4/4 at ``tempo`` (default 120). Figures: :func:`section_matches` and
``tests/benchmarks/eval_form.py``.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melodia.errors import GenerateError
from melodia.evaluate.accompaniment import jaccard
from melodia.generation.accompaniment import new_parts
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.generator import mark_end
from melodia.generation.guide import DEFAULT_STRENGTH, BarGuide, Segment, bar_onsets
from melodia.generation.infill import (fill_band, fill_piano, filled, has_programs,
                                       instrument_of, prefix_context, save)
from melodia.generation.session import open_session
from melodia.midi import TEMPO_DTYPE, Score, Track
from melodia.midi.bars import bar_set
from melodia.model.registry import load_model
from melodia.model.stepper import threads

MAX_SECTIONS = 32  # letters in a form
MAX_BARS = 64  # bars per section
DEFAULT_VARIATION = 0.2  # how much a returning section changes when no randomness is given
MATCH = 0.8  # a returning bar "matches" its first playing at this Jaccard or above


@dataclass
class Form:
    """A song in sections: ``score`` (the whole song), its ``sections`` (letter, first bar
    counted from 1, first second, last second), the bars of each section that were played anew
    in a returning one (``varied``, counted from 1 in the song), and the ``variation`` used."""

    score: Score
    form: str
    bars: int
    sections: list[tuple[str, int, float, float]]
    varied: list[list[int]]
    variation: float
    seed: int
    band: dict[str, Any] | None = field(default=None)

    def write(self, path: str | Path) -> Path:
        return save(self.score, path)


def parse_form(form: str) -> str:
    """``"aaba"`` -> ``"AABA"``: letters A-Z, one per section; anything else is one clear line."""
    text = "".join(str(form).split()).upper()
    if not text or not text.isascii() or not text.isalpha():
        raise GenerateError(f"--form takes section letters such as AABA or ABACABA, not {form!r}")
    if len(text) > MAX_SECTIONS:
        raise GenerateError(f"--form has {len(text)} sections; the most is {MAX_SECTIONS}")
    return text


def variation_of(randomness) -> float:
    """The variation of returning sections: a number as it is, a per-instrument table's mean
    (``"drums=0.2,bass=0.6"``), or :data:`DEFAULT_VARIATION` when none is given."""
    if randomness is None:
        return DEFAULT_VARIATION
    if isinstance(randomness, (int, float)):
        return float(randomness)
    table = randomness if isinstance(randomness, dict) else dict(
        item.split("=", 1) for item in str(randomness).split(",") if "=" in item)
    try:
        values = [float(v) for v in table.values()]
    except ValueError:
        raise GenerateError(f"--randomness {randomness!r}: values must be numbers") from None
    return float(np.mean(values)) if values else DEFAULT_VARIATION


def varied_bars(bars: int, variation: float, rng: np.random.Generator) -> list[int]:
    """Which bars of a returning section (0-based) are played anew: ``round(variation x
    bars)`` of them, the last bar first, then others drawn by ``rng``; sorted."""
    count = min(bars, int(np.floor(variation * bars + 0.5)))
    if count <= 0:
        return []
    others = rng.permutation(bars - 1).tolist()
    return sorted([bars - 1, *others][:count])


def copy_span(song: Score, a0: float, a1: float, t0: float) -> Score:
    """``song`` with the notes that start in ``[a0, a1)`` played again from ``t0`` (cut at the
    span's end), on the same tracks."""
    shift = t0 - a0
    tracks = []
    for track in song.tracks:
        notes = track.notes[(track.notes["start_s"] >= a0) & (track.notes["start_s"] < a1)].copy()
        notes["start_s"] += shift
        notes["end_s"] = np.minimum(notes["end_s"], a1) + shift
        merged = np.concatenate([track.notes[track.notes["start_s"] < t0], notes,
                                 track.notes[track.notes["start_s"] >= t0 + (a1 - a0)]])
        tracks.append(dataclasses.replace(track, notes=merged[np.argsort(merged["start_s"],
                                                                          kind="stable")]))
    return dataclasses.replace(song, tracks=tracks, until_s=max(song.until_s, t0 + a1 - a0))


def place(song: Score, parts: list[Track], t0: float, t1: float) -> Score:
    """``song`` with ``[t0, t1)`` of every track replaced by ``parts`` (matched by instrument;
    a part the song lacks becomes a new track; a track no part plays is silent there), by
    :func:`~melodia.generation.infill.filled`."""
    by_instrument = {instrument_of(p): p for p in parts}
    have = {instrument_of(t) for t in song.tracks}
    new = [dataclasses.replace(p, notes=p.notes[:0], pedal=p.pedal[:0])
           for i, p in by_instrument.items() if i not in have]
    song = dataclasses.replace(song, tracks=[*song.tracks, *new],
                               until_s=max(song.until_s, t1))
    return filled(song, {k: by_instrument.get(instrument_of(t))
                         for k, t in enumerate(song.tracks)}, t0, t1)


class _Player:
    """Plays spans of a song with one model and one plan: each span hears the song before it."""

    def __init__(self, checkpoint, config: GenerateConfig, seed: int, drum_grid: bool) -> None:
        self.checkpoint, self.encoding = checkpoint, checkpoint.encoding
        self.band = has_programs(self.encoding)
        self.drum_grid, self.draws = drum_grid, 0
        self.seed = seed
        config = dataclasses.replace(config, seed=seed, num=1)
        plan = open_session(checkpoint, config, None, 1).plan if self.band else None
        if self.band and not plan["instruments"]:
            raise GenerateError("this band model draws no line-up; give one with --lineup")
        self.plan = plan
        self.qpm = float(plan["qpm"] if plan else config.tempo or 120.0)
        self.lineup = list(plan["instruments"]) if plan else [0]
        if plan:  # the plan fixed: every span plays the same style, line-up and tempo
            config = dataclasses.replace(config, style=plan["style"], tempo=self.qpm,
                                         lineup=["drums" if i == 128 else str(i)
                                                 for i in self.lineup])
        self.config = config

    def play(self, song: Score, t0: float, t1: float, guide: BarGuide | None = None
             ) -> list[Track]:
        """New parts for ``[t0, t1)`` of ``song`` (every part of the line-up), hearing all of
        ``song`` before ``t0``; each call draws its own random stream."""
        sps = self.encoding.config.steps_per_second
        step0, step1 = int(np.floor(t0 * sps + 0.5)), int(np.floor(t1 * sps + 0.5))
        context = prefix_context(song, self.encoding, step0)
        self.draws += 1
        draw = int(np.random.default_rng((self.seed, self.draws)).integers(2**31))
        if self.band:
            piece = fill_band(self.checkpoint, self.config, song, context, [], self.lineup,
                              step0, step1, self.drum_grid, guide, draw)[0]
        else:
            piece = fill_piano(self.checkpoint, self.config, context, step1, draw, guide)[0]
        return new_parts(np.concatenate([context, piece]), self.encoding, self.lineup, t0, t1)

    def lean_on(self, song: Score, a0: float, a1: float, t0: float, t1: float,
                strength: float) -> BarGuide | None:
        """A copy prior for ``[t0, t1)`` toward the bar ``[a0, a1)`` of ``song``."""
        if strength <= 0:
            return None
        sps = self.encoding.config.steps_per_second
        q = self.encoding.quantize(song)
        a, b = int(np.floor(a0 * sps + 0.5)), int(np.floor(a1 * sps + 0.5))
        s0, s1 = int(np.floor(t0 * sps + 0.5)), int(np.floor(t1 * sps + 0.5))
        onsets = bar_onsets(q, a, b)
        if not onsets:
            return None
        return BarGuide(self.encoding, [Segment(s0, s1, s0, b - a, onsets)], 1, strength)


def form_ids(model, config: GenerateConfig, form: str, bars: int,
             drum_grid: bool = True) -> Form:
    """Play ``form`` (``"AABA"``) with ``bars`` 4/4 bars a section; a returning section is the
    first one varied by ``config.randomness`` (see the module's text)."""
    letters = parse_form(form)
    if not isinstance(bars, int) or not 1 <= bars <= MAX_BARS:
        raise GenerateError(f"--bars must be 1..{MAX_BARS} bars a section with --form, not {bars}")
    if config.sampler.beam_size > 1:
        raise GenerateError("--form samples; use --beam 1")
    variation = variation_of(config.randomness)
    if not 0 <= variation <= 1:
        raise GenerateError(f"randomness must be in 0..1, not {variation:g}")
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    checkpoint = load_model(model)
    with threads(config.threads):
        player = _Player(checkpoint, config, seed, drum_grid)
        bar_s = 240.0 / player.qpm
        song = Score(tracks=[], tempos=np.array([(0.0, player.qpm)], dtype=TEMPO_DTYPE))
        rng = np.random.default_rng((seed, 7))
        first: dict[str, int] = {}
        sections, varied = [], []
        strength = DEFAULT_STRENGTH * (1.0 - variation)
        for index, letter in enumerate(letters):
            t0, t1 = index * bars * bar_s, (index + 1) * bars * bar_s
            sections.append((letter, index * bars + 1, t0, t1))
            if letter not in first:
                first[letter] = index
                song = place(song, player.play(song, t0, t1), t0, t1)
                varied.append([])
                continue
            a0 = first[letter] * bars * bar_s
            song = copy_span(song, a0, a0 + bars * bar_s, t0)
            chosen = varied_bars(bars, variation, rng)
            for k in chosen:
                b0, b1 = t0 + k * bar_s, t0 + (k + 1) * bar_s
                guide = player.lean_on(song, a0 + k * bar_s, a0 + (k + 1) * bar_s, b0, b1,
                                       strength)
                song = place(song, player.play(song, b0, b1, guide), b0, b1)
            varied.append([index * bars + k + 1 for k in chosen])
    song.until_s = len(letters) * bars * bar_s
    mark_end(song, song.until_s)
    band = None if player.plan is None else {
        k: player.plan[k] for k in ("style", "instruments", "names", "qpm")}
    return Form(song, letters, bars, sections, varied, variation, seed, band)


def section_matches(form: Form) -> dict[str, list[float]]:
    """Per section: each bar's Jaccard with the same bar of the section's first playing (the
    first A for a returning A, the first A for a B: how much it echoes A), on the 16th grid."""
    song, bars = form.score, form.bars
    bar_s = 240.0 / float(song.tempos["qpm"][0])
    reference = form.form[0]
    first = {letter: form.form.index(letter) for letter in form.form}
    out: dict[str, list[float]] = {}
    for index, letter in enumerate(form.form):
        against = first[letter] if first[letter] != index else first[reference]
        if against == index:
            continue
        scores = []
        for k in range(bars):
            a0, t0 = (against * bars + k) * bar_s, (index * bars + k) * bar_s
            scores.append(jaccard(bar_set(song.tracks, song, a0, a0 + bar_s),
                                  bar_set(song.tracks, song, t0, t0 + bar_s)))
        out[f"{letter}{index + 1}"] = scores
    return out


def form(form: str = "AABA", bars: int = 8, model="band", *, style: str | None = None,
         tempo: float | None = None, lineup=None, randomness: float | str | dict | None = None,
         seed: int | None = None, temperature: float = 1.0, sampler: str = "probability",
         drum_grid: bool = True) -> Form:
    """A song in ``form`` (section letters, e.g. ``"AABA"``), ``bars`` 4/4 bars a section: a
    returning section replays the first, ``randomness`` of its bars played anew (0: a literal
    repeat); a new letter is new music. ``.write(path)`` saves it."""
    config = GenerateConfig(seed=seed, style=style, tempo=tempo, lineup=lineup,
                            randomness=randomness,
                            sampler=SamplerConfig(sampler=sampler, temperature=temperature))
    return form_ids(model, config, form, bars, drum_grid)


__all__ = ["DEFAULT_VARIATION", "Form", "MATCH", "copy_span", "form", "form_ids", "parse_form",
           "place", "section_matches", "variation_of", "varied_bars"]
