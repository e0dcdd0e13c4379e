"""New music from a trained model: ``melodia.generate(...)`` and the models that ship with melodia.

::

    import melodia
    pm = melodia.generate(seconds=20, seed=1)            # the shipped piano model
    pm.write("piano.mid")                                 # a pretty_midi.PrettyMIDI
    pm = melodia.generate("runs/piano", primer="intro.mid", temperature=0.9, top_p=0.95)
    for event_id in melodia.iter_events(seed=3):          # live: one event at a time, no end
        ...

The output begins with the primer (the last ``primer_seconds`` of a MIDI file, or a chord of the
given pitches), followed by the new music; ``seconds`` counts the new part. Without a primer the
stream starts from one ``TIME_SHIFT`` of a single step (10 ms). Generation runs on the CPU with
:class:`~melodia.model.stepper.FastStepper` (fp32 by default, ``precision="int8"`` is ~3x faster) and is
deterministic for a given seed, model, options and precision.

(The module is ``generation``, not ``generate``: a submodule named like the package-level function
``melodia.generate`` would replace that function on the package as soon as it is imported.)
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from melodia.encoding import PerformanceEncoding
from melodia.encoding.events import event_times
from melodia.features.groove import GrooveTable
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.decoding import best_beams, iter_steps, sample_rows
from melodia.generation.given import iter_given
from melodia.generation.grammar import Grammar, GrammarConfig
from melodia.generation.groove import groove_for, stream_guide
from melodia.generation.recall import recall_for
from melodia.generation.session import open_session
from melodia.midi import PEDAL_DTYPE, TEMPO_DTYPE, Score, seconds_for_bars, to_pretty_midi
from melodia.model.checkpoint import Checkpoint
from melodia.model.stepper import threads

log = logging.getLogger(__name__)

EVENTS_PER_SECOND_CAP = 400  # safety cap on events per second of music asked for


@dataclass
class Generated:
    """Event ids of each generated piece (primer included), with what is needed to decode them."""

    pieces: list[np.ndarray]
    encoding: PerformanceEncoding
    seed: int
    primer_events: int  # how many leading ids of each piece came from the primer
    qpm: float | None = None  # band: the tempo asked for, written exactly into the files
    band: dict[str, Any] | None = None  # band: style, line-up (instrument ids) and tempo used
    end_s: float | None = None  # the length asked for (primer included): pieces end there

    def scores(self) -> list[Score]:
        """Decoded pieces. A piece that ends in a rest keeps its length: a sustain-pedal-off at
        the end of the stream marks it, so the MIDI file (and a DAW) lasts the time generated."""
        scores = [_keep_length(self.encoding.decode(ids), ids, self.encoding, self.end_s)
                  for ids in self.pieces]
        if self.qpm is not None:
            for score in scores:
                score.tempos = np.array([(0.0, self.qpm)], dtype=TEMPO_DTYPE)
        return scores

    def pretty_midi(self) -> list:
        return [to_pretty_midi(score) for score in self.scores()]


def _keep_length(score: Score, ids: np.ndarray, encoding: PerformanceEncoding,
                 end_s: float | None = None) -> Score:
    if not len(ids) or not score.tracks:
        return score
    end = float(event_times(ids, encoding)[0][-1]) / encoding.config.steps_per_second
    if end_s is not None and end > end_s:  # the last wait ran past the length asked for
        end = score.until_s = end_s
        for track in score.tracks:
            notes = track.notes[track.notes["start_s"] < end].copy()
            notes["end_s"] = np.minimum(notes["end_s"], end)
            track.notes = notes
            track.pedal = track.pedal[track.pedal["time_s"] < end]
    return mark_end(score, end)


def mark_end(score: Score, end: float) -> Score:
    """A score that ends in a rest keeps its length: a sustain-pedal-off at ``end`` (on its
    first pitched track) makes the MIDI file, and a DAW, last until then."""
    if not score.tracks:
        return score
    track = next((t for t in score.tracks if not t.is_drum), score.tracks[0])
    if end > score.notes_end_s and (not len(track.pedal) or track.pedal["time_s"].max() < end):
        marker = np.array([(end, 0)], dtype=PEDAL_DTYPE)
        track.pedal = np.concatenate([track.pedal, marker])
    return score

# ----------------------------------------------------------------------------- generation


def _limits(config: GenerateConfig, grammar: Grammar, encoding,
            qpm: float | None = None) -> tuple[int, int | None]:
    if config.events is not None:
        return config.events, None
    seconds = config.seconds
    if config.bars is not None:
        seconds = seconds_for_bars(config.bars, qpm or 120.0)
    sps = encoding.config.steps_per_second
    until = int(grammar.now[0] + round(seconds * sps))
    return max(100, int(seconds * EVENTS_PER_SECOND_CAP)), until


def generate_ids(model: str | Path | Checkpoint = "piano", config: GenerateConfig | None = None,
                 primer=None, groove: GrooveTable | None = None) -> Generated:
    """Generate ``config.num`` pieces as event ids (each: primer, then new events); a band's
    plans of what returns are drawn from ``groove`` (default: the shipped table)."""
    config = config or GenerateConfig()
    with threads(config.threads):
        session = open_session(model, config, primer, config.num)
        grammar = session.start.grammar
        max_events, until = _limits(config, grammar, session.encoding, session.qpm)
        generator = torch.Generator().manual_seed(session.seed)
        guide, forcer = groove_for(session.encoding, config, session.plan, grammar.now.copy(),
                                   until, session.seed, groove)
        if forcer is not None:
            steps = iter_given(session.stepper, session.start, session.sampler, generator,
                               forcer, guide)
        else:
            recall = recall_for(session.checkpoint, config.memory,
                                [session.context] * grammar.batch)
            steps = iter_steps(session.stepper, session.start, session.sampler, generator, guide,
                               recall)
        if session.sampler.beam_size > 1:
            pieces = best_beams(steps, grammar, session.sampler, max_events=max_events,
                                until_step=until)
        else:
            pieces = sample_rows(steps, grammar, max_events=max_events, until_step=until)
    sps = session.encoding.config.steps_per_second
    if until is not None and any(len(p) >= max_events for p in pieces):
        log.warning("stopped at %d events before reaching %.1f s", max_events, until / sps)
    plan = session.plan
    band = None if plan is None else {k: plan[k] for k in ("style", "instruments", "names", "qpm")}
    end_s = None if until is None else until / sps
    return Generated([np.concatenate([session.context, p]) for p in pieces], session.encoding,
                     session.seed, len(session.context), qpm=session.qpm, band=band, end_s=end_s)


def _config(seconds, events, num, seed, temperature, top_k, top_p, beam, branch_factor, sampler,
            noise, noise_kind, primer_seconds, density, key, precision) -> GenerateConfig:
    return GenerateConfig(
        seconds=seconds, events=events, num=num, seed=seed, primer_seconds=primer_seconds,
        density=density, key=key, precision=precision,
        sampler=SamplerConfig(sampler=sampler, temperature=temperature, top_k=top_k, top_p=top_p,
                              noise=noise, noise_kind=noise_kind, beam_size=beam,
                              branch_factor=branch_factor))


def generate(model: str | Path | Checkpoint = "piano", *, seconds: float | None = 10.0,
             events: int | None = None, seed: int | None = None, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, beam: int = 1, branch_factor: int = 2,
             sampler: str = "probability", noise: float | None = None, noise_kind: str = "gaussian",
             primer=None, primer_seconds: float = 5.0, density: float | None = None,
             key: str | None = None, precision: str = "fp32", num: int = 1,
             style: str | None = None, tempo: float | None = None,
             lineup: str | Sequence[str | int] | None = None,
             randomness: float | str | dict | None = None, bars: int | None = None,
             repeat: float | None = 0.0, drum_grid: bool = False, memory: float = 0.0):
    """Generate a piece and return it as a ``pretty_midi.PrettyMIDI`` (``num > 1``: a list).

    Parameters
    ----------
    model : ``"piano"`` (the shipped model), ``"band"``, a checkpoint file or a run directory,
        or a loaded :class:`~melodia.model.checkpoint.Checkpoint`.
    seconds : length of the new music in seconds (default 10); ``events``: a number of events
        instead; ``bars``: 4/4 bars at ``tempo`` instead.
    seed : same seed, same music (None: random).
    temperature, top_k, top_p : the probability sampler (temperature 0 = greedy).
    beam, branch_factor : beam search over sampled branches when ``beam > 1``.
    sampler : ``"probability"`` or ``"embedding"`` (perturb the predicted embedding by ``noise``
        of ``noise_kind`` ``"gaussian"`` / ``"vmf"``; see :mod:`melodia.generation.pick`). ``noise=None``
        uses the model's calibrated per-event-type scales (else 2.5).
    primer : a MIDI path / bytes / Score / PrettyMIDI (its last ``primer_seconds`` are kept) or a
        list of MIDI pitches struck together.
    density, key : controls for models trained with them: notes per second and a key such as
        ``"D minor"``.
    precision : ``"fp32"`` or ``"int8"``.
    num : pieces generated together (one batch).
    style, tempo, lineup, randomness : the band model's knobs (see :class:`GenerateConfig`);
        ``tempo`` also sets the file's tempo for any model.
    repeat, drum_grid : the band's groove (:mod:`melodia.generation.groove`): the share of bars
        that return to an earlier bar of their part (0, the default: none; None: as the style's
        music does), and drum hits only on the 16ths and triplets of the tempo (default off).
    memory : 0..1, how much the piece's own past pulls (:mod:`melodia.generation.recall`; the
        probability sampler; 0, the default for now: the model alone).

    See :class:`GenerateConfig` and :func:`generate_ids` for more options (grammar, batches).
    """
    config = _config(seconds, events, num, seed, temperature, top_k, top_p, beam, branch_factor,
                     sampler, noise, noise_kind, primer_seconds, density, key, precision)
    config = dataclasses.replace(config, style=style, tempo=tempo, lineup=lineup,
                                 randomness=randomness, bars=bars, repeat=repeat,
                                 drum_grid=drum_grid, memory=memory)
    pieces = generate_ids(model, config, primer).pretty_midi()
    return pieces[0] if num == 1 else pieces


def iter_events(model: str | Path | Checkpoint = "piano", *, seed: int | None = None,
                temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                sampler: str = "probability", noise: float | None = None, noise_kind: str = "gaussian",
                primer=None, primer_seconds: float = 5.0, density: float | None = None,
                key: str | None = None, precision: str = "fp32",
                grammar: GrammarConfig | None = None,
                config: GenerateConfig | None = None) -> Iterator[int]:
    """Yield new event ids one at a time, without end (stop when you like): for live playing.

    Each event costs one model step (well under a millisecond); the model sees only the new event,
    its state carries the past. Decode with ``checkpoint.encoding`` (``load_model(model)``).
    ``config`` (a :class:`GenerateConfig`; its length fields are ignored) replaces the keyword
    options, e.g. for a band's style, line-up, tempo and randomness.

    The ids are the encoding's event ids (``encoding.vocab.decode_event(id)``); time advances
    only through TIME_SHIFT events, in steps of ``1 / encoding.config.steps_per_second`` seconds
    (10 ms). To play them live, decode with :class:`melodia.live.StreamDecoder` (or
    :func:`melodia.live.stream_messages`) and send with :class:`melodia.live.Player`.
    """
    if config is None:
        config = _config(1.0, None, 1, seed, temperature, top_k, top_p, 1, 2, sampler, noise,
                         noise_kind, primer_seconds, density, key, precision)
        if grammar is not None:
            config.grammar = grammar
    with threads(config.threads):
        session = open_session(model, config, primer)
        generator = torch.Generator().manual_seed(session.seed)
        sampler = dataclasses.replace(session.sampler, beam_size=1)  # one stream, no beams
        recall = recall_for(session.checkpoint, config.memory, [session.context])
        guide = stream_guide(session.encoding, config, session.plan,
                             session.start.grammar.now, session.seed)
        steps = iter_steps(session.stepper, session.start, sampler, generator, guide, recall)
    while True:
        with threads(config.threads):  # per event, so the caller's own threads stay as they were
            step = next(steps)
        yield int(step.ids[0])


__all__ = ["Generated", "generate", "generate_ids", "iter_events", "mark_end"]
