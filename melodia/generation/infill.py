"""Fill in bars: a span of a song regenerated, for all its tracks or for named ones, so that it
joins the music before and after it.

::

    import melodia
    result = melodia.infill("song.mid", bars="5-8", tracks="bass,drums", seed=1)
    result.write("song-infill.mid")

How a span is filled (:func:`infill_ids`):

- the model is primed with everything before the span (every track, notes cut where it
  starts), so it enters the span from where the song is;
- inside the span, the tracks kept play as given events, forced in time order
  (:mod:`melodia.generation.given`), and the model plays only the tracks asked for;
- ``candidates`` fills are drawn in one batch and the one whose seams (its first and last bar
  against the song's bars before and after it, :func:`~melodia.evaluate.accompaniment.seam_distances`)
  are closest is kept: the model hears what comes before the span, the choice what comes after.

A band model fills any tracks; the piano model fills a piano piece's pitched tracks, all at once.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from melodia.encoding import PerformanceEncoding
from melodia.encoding.events import event_times
from melodia.errors import GenerateError
from melodia.evaluate.accompaniment import bar_neighbours, seam_distances
from melodia.generation.accompaniment import EVENTS_PER_SECOND_CAP, new_parts, read_given, run_given
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.decoding import iter_steps, sample_rows
from melodia.generation.given import Forcer, given_events, grid_steps
from melodia.generation.guide import DEFAULT_STRENGTH, BarGuide, Segment, bar_onsets
from melodia.generation.recall import recall_for
from melodia.generation.session import Frame, open_session, tempo_ids
from melodia.midi import PEDAL_DTYPE, Score, Track, write_midi
from melodia.midi.bars import bar_span, bar_starts
from melodia.midi.instruments import ALIASES, DRUMS, FAMILIES, LineupError, part_instruments
from melodia.model.registry import load_model
from melodia.model.stepper import threads

CANDIDATES = 4  # fills drawn at once; the best-joining one is kept


@dataclass
class Infill:
    """A song with a span filled: ``score`` (the whole song), the ``span`` in seconds, the
    ``tracks`` regenerated (indices into the song's tracks), each candidate's ``seams`` (bar
    distance in, bar distance out) and the one ``chosen``; ``real``: the bar-to-bar distances of
    those tracks across the song as it was, the range a seam should fall in."""

    score: Score
    span: tuple[float, float]
    tracks: list[int]
    seams: list[tuple[float, float]]
    chosen: int
    seed: int
    real: np.ndarray

    def write(self, path: str | Path) -> Path:
        return save(self.score, path)


def save(score: Score, path: str | Path) -> Path:
    """Write ``score`` as a MIDI file at ``path`` (its folder made if need be)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_midi(score, path)
    return path


def instrument_of(track: Track) -> int:
    return DRUMS if track.is_drum else int(track.program)


def select_tracks(score: Score, spec: str | Sequence[str] | None) -> list[int]:
    """Indices of the tracks ``spec`` names (``bass,drums``: GM families, names, programs,
    ``drums`` or a track's own name); None: every track with notes."""
    playing = [i for i, t in enumerate(score.tracks) if len(t.notes)]
    if spec is None:
        return playing
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    chosen: set[int] = set()
    for item in filter(None, items):
        named = [i for i in playing if score.tracks[i].name.strip().lower() == item.lower()]
        if not named:
            try:
                wanted = part_instruments(item)
            except LineupError as error:
                raise GenerateError(str(error)) from None
            named = [i for i in playing if instrument_of(score.tracks[i]) in wanted]
        if not named:
            raise GenerateError(f"the song has no {item} track; it has: " + ", ".join(
                describe(score.tracks[i]) for i in playing))
        chosen.update(named)
    if not chosen:
        raise GenerateError("name the tracks to fill, e.g. --tracks bass,drums")
    return sorted(chosen)


def describe(track: Track) -> str:
    from melodia.midi import instrument_name

    name = instrument_name(track.program, track.is_drum)
    return f"{track.name} ({name})" if track.name and track.name != name else name


def prefix_context(score: Score, encoding: PerformanceEncoding, step0: int) -> np.ndarray:
    """The events of every note before step ``step0`` (cut there), then time shifts up to it;
    a band stream starts with the tempo map's TEMPO events; nothing before step 0 is one
    shortest TIME_SHIFT (a model primes on one event at least)."""
    q = encoding.quantize(score)
    q = q[q["start"] < step0].copy()
    q["end"] = np.minimum(q["end"], step0)
    q = q[q["end"] > q["start"]]
    if has_programs(encoding):
        steps, bins = encoding.quantize_tempos(score)
        keep = steps < max(step0, 1)
        ids = encoding.encode_quantized(q, steps[keep], bins[keep]).astype(np.int64)
        if not len(ids) or encoding.vocab.decode_event(int(ids[0])).type != "TEMPO":
            first = float(score.tempos["qpm"][0]) if len(score.tempos) else 120.0
            ids = np.concatenate([tempo_ids(encoding, first), ids])
    else:
        ids = encoding.encode_quantized(q).astype(np.int64)
    now = int(event_times(ids, encoding)[0][-1]) if len(ids) else 0
    shifts, longest = [], encoding.config.max_shift_steps
    while now < step0:
        k = min(longest, step0 - now)
        shifts.append(encoding.vocab.encode_event("TIME_SHIFT", k))
        now += k
    if not len(ids) and not shifts:  # nothing before: the shortest wait, as an unprimed start
        shifts.append(encoding.vocab.encode_event("TIME_SHIFT", 1))
    return np.concatenate([ids, np.array(shifts, dtype=np.int64)])


def has_programs(encoding: PerformanceEncoding) -> bool:
    return "PROGRAM" in [r.type for r in encoding.vocab.ranges]


def last_velocity(ids: np.ndarray, encoding: PerformanceEncoding) -> int:
    """The velocity bin in force after ``ids`` (-1: none yet)."""
    vocab = encoding.vocab
    kinds = np.array([vocab.decode_event(int(i)).type == "VELOCITY" for i in ids[-2000:]])
    if not kinds.any():
        return -1
    return int(vocab.decode_event(int(ids[-2000:][np.flatnonzero(kinds)[-1]])).value)


def stand_ins(score: Score, regenerate: Sequence[int]) -> dict[int, int]:
    """The instrument the band model plays each regenerated track as: its own, or where a kept
    track (or an earlier regenerated one) plays that program, a free one of the same GM family
    (a band encoding hears one part per instrument). Drums stay drums."""
    taken = {instrument_of(t) for i, t in enumerate(score.tracks)
             if i not in regenerate and len(t.notes)}
    if DRUMS in taken and any(score.tracks[i].is_drum for i in regenerate):
        raise GenerateError("the song has two drum tracks; fill both or neither (a band plays "
                            "one kit)")
    out: dict[int, int] = {}
    for i in regenerate:
        own = instrument_of(score.tracks[i])
        if own == DRUMS or own not in taken:
            out[i] = own
        else:
            family = _named_family(score.tracks[i]) or own // 8 * 8
            free = [p for p in [*range(family, family + 8), *range(128)] if p not in taken]
            if not free:
                raise GenerateError("no free program left to play the filled track as")
            out[i] = free[0]
        taken.add(out[i])
    return out


def _named_family(track: Track) -> int | None:
    """The first program of the GM family a track's name says it plays (``Bass`` -> 32)."""
    for word in re.findall(r"[a-z]+", track.name.lower()):
        word = ALIASES.get(word, word)
        if word in FAMILIES:
            return FAMILIES.index(word) * 8
    return None


def model_view(score: Score, playing_as: dict[int, int]) -> Score:
    """``score`` with each regenerated track's program set to the one the model plays it as."""
    tracks = [t if i not in playing_as or t.is_drum else
              dataclasses.replace(t, program=playing_as[i]) for i, t in enumerate(score.tracks)]
    return dataclasses.replace(score, tracks=tracks)


def filled(score: Score, new: dict[int, Track], t0: float, t1: float) -> Score:
    """``score`` with the notes in ``[t0, t1)`` of each track ``i`` of ``new`` replaced by those
    of ``new[i]`` (None: the span left silent)."""
    tracks = []
    for i, track in enumerate(score.tracks):
        if i not in new:
            tracks.append(track)
            continue
        notes = track.notes
        before = notes[notes["start_s"] < t0].copy()
        before["end_s"] = np.minimum(before["end_s"], t0)
        inside = [new[i].notes] if new[i] is not None else []
        merged = np.concatenate([before, *inside, notes[notes["start_s"] >= t1]])
        merged = merged[np.argsort(merged["start_s"], kind="stable")]
        tracks.append(dataclasses.replace(track, notes=merged, pedal=_pedal(track.pedal, t0, t1)))
    return dataclasses.replace(score, tracks=tracks)


def _pedal(pedal: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """The sustain pedal outside ``[t0, t1)`` as it was, up at ``t0``, back as it was at ``t1``."""
    if not len(pedal):
        return pedal
    held = pedal[pedal["time_s"] < t1]
    at_end = int(held["value"][-1]) if len(held) else 0
    marks = np.array([(t0, 0)] + ([(t1, at_end)] if at_end >= 64 else []), dtype=PEDAL_DTYPE)
    out = np.concatenate([pedal[pedal["time_s"] < t0], marks, pedal[pedal["time_s"] >= t1]])
    return out[np.argsort(out["time_s"], kind="stable")]


def infill_ids(model, song, bars: str, tracks: str | Sequence[str] | None,
               config: GenerateConfig, candidates: int = CANDIDATES, drum_grid: bool = True,
               lean: float = DEFAULT_STRENGTH) -> Infill:
    """Regenerate bars ``bars`` (``"5-8"``) of ``song`` (a MIDI path or bytes) for ``tracks``
    (None: all), drawing ``candidates`` fills and keeping the best-joining one. ``lean``: how
    strongly the fill leans on the bars around it (a band model's copy prior,
    :mod:`melodia.generation.guide`; 0: the model alone)."""
    _, score = read_given(song)
    if not score.note_count:
        raise GenerateError("the song has no notes to fill in around")
    try:
        t0, t1 = bar_span(score, bars)
    except ValueError as error:
        raise GenerateError(str(error)) from None
    if t0 >= score.notes_end_s - 1e-6:
        raise GenerateError(f"bars {bars} start at {t0:.1f} s, past the end of the song "
                            f"({score.notes_end_s:.1f} s)")
    t1 = min(t1, score.end_s)
    if candidates < 1 or candidates > 64:
        raise GenerateError(f"candidates must be 1..64, not {candidates}")
    regenerate = select_tracks(score, tracks)
    checkpoint = load_model(model)
    encoding = checkpoint.encoding
    band = has_programs(encoding)
    kept = [i for i, t in enumerate(score.tracks) if i not in regenerate and len(t.notes)]
    if band:
        playing_as = stand_ins(score, regenerate)
        view = model_view(score, playing_as)
    elif any(not score.tracks[i].is_drum for i in kept) or any(
            score.tracks[i].is_drum for i in regenerate):
        raise GenerateError("the piano model fills every pitched track at once and no drums; "
                            "use --model band to fill some tracks")
    else:
        playing_as, view = {i: 0 for i in regenerate}, score
    lineup = sorted(set(playing_as.values()))
    sps = encoding.config.steps_per_second
    step0, step1 = int(np.floor(t0 * sps + 0.5)), int(np.floor(t1 * sps + 0.5))
    config = dataclasses.replace(config, num=candidates)
    with threads(config.threads):
        context = prefix_context(view, encoding, step0)
        guide = seam_guide(encoding, view, regenerate, step0, step1, candidates, lean) \
            if band else None
        pieces = fill_band(checkpoint, config, view, context, kept, lineup, step0, step1,
                           drum_grid, guide) if band else fill_piano(checkpoint, config, context,
                                                                     step1)
        seed = pieces.pop()
    songs, seams = [], []
    for piece in pieces:
        parts = {instrument_of(p): p for p in new_parts(np.concatenate([context, piece]),
                                                        encoding, lineup, t0, t1)}
        new, placed = {}, set()
        for i in regenerate:  # tracks the model played as one instrument: the first gets it
            new[i] = parts.get(playing_as[i]) if playing_as[i] not in placed else None
            placed.add(playing_as[i])
        songs.append(filled(score, new, t0, t1))
        seams.append(seam_distances([songs[-1].tracks[i] for i in regenerate], songs[-1], t0, t1))
    chosen = min(range(len(songs)), key=lambda c: _cost(seams[c]))
    real = bar_neighbours([score.tracks[i] for i in regenerate], score)
    return Infill(songs[chosen], (t0, t1), regenerate, seams, chosen, int(seed), real)


def _cost(seams: tuple[float, float]) -> float:
    known = [s for s in seams if not math.isnan(s)]
    return sum(known) / len(known) if known else 0.0


def seam_guide(encoding: PerformanceEncoding, view: Score, tracks: Sequence[int], step0: int,
               step1: int, batch: int, strength: float) -> BarGuide | None:
    """A copy prior for a span: its first half leans on the bar before it, its second half on
    the bar after it (``tracks`` of the band ``view``; None when neither bar exists)."""
    sps = encoding.config.steps_per_second
    starts = np.floor(bar_starts(view, step1 / sps + 1e-6) * sps + 0.5).astype(np.int64)
    first = int(np.searchsorted(starts, step0 - 1))
    after = int(np.searchsorted(starts, step1 - 1))
    n = after - first
    mid = int(starts[first + n // 2]) if n >= 2 else (step0 + step1) // 2
    q = encoding.quantize(dataclasses.replace(view, tracks=[view.tracks[i] for i in tracks]))
    segments = []
    if first >= 1:
        a, b = int(starts[first - 1]), int(starts[first])
        segments.append(Segment(step0, mid, step0, b - a, bar_onsets(q, a, b)))
    if after + 1 < len(starts) and step1 < int(np.ceil(view.end_s * sps)):
        a, b = int(starts[after]), int(starts[after + 1])
        segments.append(Segment(mid if segments else step0, step1, step1, b - a,
                                bar_onsets(q, a, b)))
    if segments and len(segments) == 1:
        segments = [dataclasses.replace(segments[0], start=step0, end=step1)]
    segments = [s for s in segments if s.onsets and s.length > 0]
    return BarGuide(encoding, segments, batch, strength) if segments and strength > 0 else None


def fill_band(checkpoint, config: GenerateConfig, score: Score, context: np.ndarray,
              kept: list[int], lineup: list[int], step0: int, step1: int, drum_grid: bool,
              guide: BarGuide | None, draw: int | None = None) -> list:
    """``config.num`` band streams from ``context`` (step ``step0``) to ``step1``: ``lineup``
    free, the ``kept`` tracks of ``score`` given; then the session's seed. ``draw``: the
    sampling seed (default the session's)."""
    encoding = checkpoint.encoding
    sps = encoding.config.steps_per_second
    tempos = np.stack([score.tempos["time_s"], score.tempos["qpm"]], axis=1).astype(np.float64)
    at = max(int(np.searchsorted(tempos[:, 0], step0 / sps, "right")) - 1, 0)
    qpm = config.tempo or float(tempos[at, 1])
    given_instruments = tuple(sorted({instrument_of(score.tracks[i]) for i in kept}))
    q = encoding.quantize(dataclasses.replace(score, tracks=[score.tracks[i] for i in kept]))
    q = q[(q["start"] >= step0) & (q["start"] < step1)].copy()
    q["end"] = np.minimum(q["end"], step1)
    names = ["drums" if i == DRUMS else str(i) for i in lineup]
    frame = Frame(context, tempos, given_instruments)
    session = open_session(checkpoint, dataclasses.replace(config, lineup=names, tempo=qpm),
                           None, config.num, frame)
    grid = grid_steps(tempos, step1, sps) if drum_grid and DRUMS in lineup else None
    forcer = Forcer(encoding, given_events(q), config.num, last_velocity(context, encoding), grid)
    return [*run_given(session, forcer, step1, guide, draw, config.memory), session.seed]


def fill_piano(checkpoint, config: GenerateConfig, context: np.ndarray, step1: int,
               draw: int | None = None, guide: BarGuide | None = None) -> list:
    """``config.num`` streams of a one-instrument model from ``context`` to ``step1``,
    leaning on ``guide`` if given; then the session's seed. ``draw``: the sampling seed
    (default the session's)."""
    session = open_session(checkpoint, config, None, config.num, Frame(context))
    if session.sampler.beam_size > 1:
        raise GenerateError("infill samples; use --beam 1")
    generator = torch.Generator().manual_seed(session.seed if draw is None else draw)
    recall = recall_for(checkpoint, config.memory, [session.context] * config.num)
    steps = iter_steps(session.stepper, session.start, session.sampler, generator, guide, recall)
    grammar, sps = session.start.grammar, session.encoding.config.steps_per_second
    cap = int((step1 - int(grammar.now[0])) / sps * EVENTS_PER_SECOND_CAP) + 100
    return [*sample_rows(steps, grammar, max_events=cap, until_step=step1), session.seed]


def infill(song, bars: str, tracks: str | Sequence[str] | None = None, model="band", *,
           candidates: int = CANDIDATES, style: str | None = None, tempo: float | None = None,
           randomness: float | str | dict | None = None, seed: int | None = None,
           temperature: float = 1.0, sampler: str = "probability",
           drum_grid: bool = True, lean: float = DEFAULT_STRENGTH) -> Infill:
    """Regenerate ``bars`` (``"5-8"``, counted from 1) of ``song`` (a MIDI path or bytes) for
    ``tracks`` (``"bass,drums"``; None: every track), joining the music around them; the other
    tracks play on as they were. ``.write(path)`` saves the song with the span filled."""
    config = GenerateConfig(seed=seed, style=style, tempo=tempo, randomness=randomness,
                            sampler=SamplerConfig(sampler=sampler, temperature=temperature))
    return infill_ids(model, song, bars, tracks, config, candidates, drum_grid, lean)


__all__ = ["CANDIDATES", "Infill", "fill_band", "fill_piano", "filled", "has_programs", "infill",
           "infill_ids", "instrument_of", "model_view", "prefix_context", "save", "select_tracks",
           "stand_ins"]
