"""Accompany a file: new band parts generated to play with the music given, which stays exactly
as it was.

::

    import melodia
    result = melodia.accompany("song.mid", lineup="drums,bass", style="funk", seed=1)
    result.write("song-band.mid")      # song.mid's own tracks byte for byte, then the new parts

The given music (every track of the file: a piano solo, a melody, a band without its bass) is
forced into the band model's stream in time order (:mod:`melodia.generation.given`), and the
model plays only the line-up asked for, at the file's tempo map (or ``tempo``), for the file's
whole length, its pitched parts leaning on the harmony the file sounds in each beat (a bonus
for those pitch classes, :class:`~melodia.generation.guide.HarmonyGuide`: the file's future is
known, as a chart is to a player). The band conditions hear the given instruments in the
line-up, so the model knows a piano (say) is playing with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from melodia.encoding import PerformanceEncoding
from melodia.errors import GenerateError
from melodia.evaluate.accompaniment import beat_pitch_classes, implied_triad
from melodia.evaluate.stats import grid_positions
from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.decoding import sample_rows
from melodia.generation.given import Forcer, given_events, grid_steps, iter_given
from melodia.generation.groove import BarLines, groove_for
from melodia.generation.guide import HarmonyGuide, combined
from melodia.generation.recall import recall_for
from melodia.generation.session import Frame, Session, open_session, tempo_ids
from melodia.midi import TEMPO_DTYPE, Score, Track, read_midi
from melodia.midi.bars import bar_starts
from melodia.midi.files import read_file_bytes
from melodia.midi.instruments import DRUMS
from melodia.midi.merge import add_tracks
from melodia.model.registry import load_model
from melodia.model.stepper import threads

EVENTS_PER_SECOND_CAP = 400  # safety cap on the events of new parts per second of music
# the harmony prior's strength (logits): chosen on the validation files (eval_accompany.py
# --harmony 0, 0.5, 1, 2: harmonic agreement 0.730, 0.812, 0.872, 0.952; real parts 0.831):
# the one that plays as consonantly as real bands do, not more
HARMONY = 0.5
# the bass's own pull toward the pitch classes that sound in the beat (logits), chosen on the
# validation files (eval_accompany.py --mma ... --seconds 20 --bass-harmony 0.5, 1, 1.5, 3: bass
# notes on a sounding pitch class 0.812, 0.870, 0.897, 0.975; real basses 0.841): the least that
# reaches the real basses; notes per second stay 4.5
BASS_HARMONY = 1.0


@dataclass
class Accompaniment:
    """New parts for given music: ``parts[i]`` are piece ``i``'s tracks (one per instrument of
    the line-up), to add to the given file ``source`` (its bytes, kept as they are)."""

    parts: list[list[Track]]
    source: bytes
    seed: int
    band: dict[str, Any]
    end_s: float

    def midi_bytes(self, piece: int = 0) -> bytes:
        """The given file, byte for byte, with piece ``piece``'s parts as tracks of their own."""
        return add_tracks(self.source, self.parts[piece], self.end_s)

    def write(self, path: str | Path, piece: int = 0) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.midi_bytes(piece))
        return path


def read_given(song) -> tuple[bytes, Score]:
    """The bytes of a MIDI file (a path or bytes; size-limited as ``encode`` reads) and its score."""
    if isinstance(song, bytes):
        return song, read_midi(song)
    data = read_file_bytes(Path(song))
    return data, read_midi(data, name=str(song))  # read once, errors name the file


def require_band(encoding: PerformanceEncoding) -> None:
    """Refuse an encoding without instruments: given parts need the band model's PROGRAM events."""
    if "PROGRAM" not in [r.type for r in encoding.vocab.ranges]:
        raise GenerateError("playing with given music needs a band model (--model band): this "
                            "model has one instrument")


def given_setup(score: Score, encoding: PerformanceEncoding, tempo: float | None
                ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], float]:
    """The given notes as quantized band notes, the tempo map the band follows, the given
    instruments and the tempo the band is conditioned on."""
    require_band(encoding)
    q = encoding.quantize(score)
    if not len(q):
        raise GenerateError("the given music has no notes to play with")
    tempos = (np.array([[0.0, float(tempo)]]) if tempo is not None else
              np.stack([score.tempos["time_s"], score.tempos["qpm"]], axis=1).astype(np.float64))
    qpm = float(tempo if tempo is not None else tempos[0, 1])
    return q, tempos, tuple(int(i) for i in np.unique(q["instrument"])), qpm


def run_given(session: Session, forcer: Forcer, until: int, guide=None,
              draw: int | None = None, memory: float = 0.0) -> list[np.ndarray]:
    """Decode every row of ``session`` around ``forcer``'s given events until step ``until``
    (leaning on ``guide``'s reference bars, :mod:`melodia.generation.guide`, if given, and on
    the piece's own past at ``memory``, :mod:`melodia.generation.recall`); ``draw``: the
    sampling seed (default the session's)."""
    generator = torch.Generator().manual_seed(session.seed if draw is None else draw)
    if session.sampler.beam_size > 1:
        raise GenerateError("beam search does not play with given music; use --beam 1")
    recall = recall_for(session.checkpoint, memory,
                        [session.context] * session.start.grammar.batch)
    steps = iter_given(session.stepper, session.start, session.sampler, generator, forcer,
                       guide, recall)
    sps = session.encoding.config.steps_per_second
    cap = int(until / sps * EVENTS_PER_SECOND_CAP) + 3 * len(forcer.events) + 100
    return sample_rows(steps, session.start.grammar, max_events=cap, until_step=until)


def new_parts(ids: np.ndarray, encoding: PerformanceEncoding, lineup: Sequence[int],
              start_s: float, end_s: float) -> list[Track]:
    """The tracks of ``lineup``'s instruments in a decoded stream, notes starting within
    ``[start_s, end_s)`` and ending by ``end_s``."""
    score = encoding.decode(ids)
    tracks = []
    for track in score.tracks:
        instrument = DRUMS if track.is_drum else track.program
        if instrument not in lineup:
            continue
        notes = track.notes[(track.notes["start_s"] >= start_s - 1e-9)
                            & (track.notes["start_s"] < end_s)].copy()
        notes["end_s"] = np.minimum(notes["end_s"], end_s)
        track.notes = notes[notes["end_s"] > notes["start_s"]]
        track.pedal = track.pedal[(track.pedal["time_s"] >= start_s) & (track.pedal["time_s"] < end_s)]
        tracks.append(track)
    return tracks


def harmony_guide(score: Score, encoding: PerformanceEncoding, tempos: np.ndarray, until: int,
                  strength: float, bass: float | None = None) -> HarmonyGuide | None:
    """The harmony prior of ``score``'s pitched notes along the tempo map ``tempos``
    (``[[time_s, qpm], ...]``) for steps ``0..until``: ``strength`` for the chords, ``bass``
    (default ``strength``) for a bass's pull toward the pitch classes that sound, which keeps
    at least ``strength`` on the rest of the implied triad (None when both are 0)."""
    bass = strength if bass is None else bass
    if strength <= 0 and bass <= 0:
        return None
    tempo_map = np.array([tuple(row) for row in tempos], dtype=TEMPO_DTYPE)
    sps = encoding.config.steps_per_second
    beat_of = np.floor(grid_positions(np.arange(until + 1) / sps, tempo_map, 1) + 1e-9)
    beat_of = np.maximum(beat_of, 0).astype(np.int64)
    profiles = beat_pitch_classes([t.notes for t in score.tracks if not t.is_drum], tempo_map,
                                  int(beat_of[-1]) + 1)
    classes = profiles > 0
    for beat in np.flatnonzero(classes.any(axis=1)):
        classes[beat, sorted(implied_triad(profiles[beat]))] = True
    bass_weights = np.maximum(classes * strength, (profiles > 0) * bass)
    return HarmonyGuide(encoding, classes, beat_of, strength, bass_weights)


def accompany_ids(model, song, config: GenerateConfig, drum_grid: bool = True,
                  harmony: float = HARMONY, bass_harmony: float | None = None,
                  harmony_from: Score | None = None) -> Accompaniment:
    """Generate ``config.lineup`` (default drums and bass) to play with ``song`` (a MIDI path
    or bytes) for its whole length; ``config.num`` pieces at once. ``drum_grid``: new drum hits
    only on the song's 16ths and eighth-note triplets (:func:`~melodia.generation.given.grid_steps`);
    ``harmony``: the strength of the harmony prior (logits; 0: the model alone), see
    :class:`~melodia.generation.guide.HarmonyGuide`; ``bass_harmony``: the bass's own (default
    :data:`BASS_HARMONY` times ``harmony / HARMONY``: 0 with the prior off); ``harmony_from``:
    the score whose harmony the parts lean on (default the song's; restyle gives the whole
    original while only its melody is played)."""
    source, score = read_given(song)
    config = dataclasses.replace(config, lineup=config.lineup or "drums,bass")
    checkpoint = load_model(model)
    with threads(config.threads):
        q, tempos, given, qpm = given_setup(score, checkpoint.encoding, config.tempo)
        frame = Frame(tempo_ids(checkpoint.encoding, qpm), tempos, given)
        session = open_session(checkpoint, dataclasses.replace(config, tempo=qpm), None,
                               config.num, frame)
        sps = session.encoding.config.steps_per_second
        until = int(np.ceil(score.end_s * sps))
        grid = grid_steps(tempos, until, sps) if drum_grid else None
        forcer = Forcer(session.encoding, given_events(q), config.num, grid=grid)
        bass = BASS_HARMONY * harmony / HARMONY if bass_harmony is None else bass_harmony
        guide = harmony_guide(score if harmony_from is None else harmony_from,
                              session.encoding, tempos, until, harmony, bass)
        groove = None
        if config.repeat != 0:  # bars that return, on the song's own bars
            lines = BarLines(np.unique(bar_starts(score, score.end_s)) * sps)
            groove = groove_for(session.encoding, dataclasses.replace(config, drum_grid=False),
                                session.plan, np.zeros(config.num, np.int64), until,
                                session.seed, lines=lines)[0]
        guide = combined(guide, groove)
        pieces = run_given(session, forcer, until, guide, memory=config.memory)
    lineup = session.plan["instruments"]
    parts = [new_parts(np.concatenate([frame.context, p]), session.encoding, lineup, 0.0,
                       score.end_s) for p in pieces]
    band = {k: session.plan[k] for k in ("style", "instruments", "names", "qpm")}
    return Accompaniment(parts, source, session.seed, band, score.end_s)


def accompany(song, lineup: str | Sequence[str | int] = "drums,bass", model="band", *,
              style: str | None = None, tempo: float | None = None,
              randomness: float | str | dict | None = None, seed: int | None = None,
              temperature: float = 1.0, sampler: str = "probability", num: int = 1,
              drum_grid: bool = True, harmony: float = HARMONY) -> Accompaniment:
    """Band parts (``lineup``) generated to play with ``song`` (a MIDI path or bytes), which
    stays byte for byte; ``.write(path)`` saves the song with them. ``style``, ``tempo`` (default
    the song's tempo map) and ``randomness`` as for ``melodia.generate``; ``drum_grid``: new drums
    only on the song's 16ths and eighth-note triplets; ``harmony``: how strongly the pitched
    parts lean on the song's harmony (0: the model alone)."""
    config = GenerateConfig(seed=seed, num=num, style=style, tempo=tempo, lineup=lineup,
                            randomness=randomness,
                            sampler=SamplerConfig(sampler=sampler, temperature=temperature))
    return accompany_ids(model, song, config, drum_grid, harmony)


__all__ = ["Accompaniment", "HARMONY", "accompany", "accompany_ids", "given_setup",
           "harmony_guide", "new_parts", "read_given", "require_band", "run_given"]
