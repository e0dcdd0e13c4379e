"""The band encoding: one event stream for a whole multi-instrument arrangement.

Token design: the 388 piano events keep their ids, and two *state* events are added::

    PROGRAM 0..127, 128 = drums  -> ids 388..516   TEMPO bin 0..31 -> ids 517..548   (549 in all)

A PROGRAM event sets the instrument of every following NOTE_ON/NOTE_OFF until the next one, just
as VELOCITY sets the loudness of following note-ons. Why this design rather than factored
``(instrument, pitch)`` tokens:

- the vocabulary stays small (549 instead of ~33k for 129 x 128 x 2 note tokens), so each pitch
  and time-shift embedding is learned from all instruments' data, and rare instruments borrow
  from common ones;
- the model chooses the instrument explicitly, as a separate decision it can condition on, and
  instruments interleave freely within a time step (sorted by program, so switches are few);
- a stream that is piano-only is a valid band stream with the default program 0.

Instruments are identified by General MIDI program (drums, channel 10, are their own instrument
whatever kit program they use). Tracks sharing a program merge into one part, and at most
``max_instruments`` parts are kept (15 melodic + drums fit MIDI's 16 channels), those with the
most notes. TEMPO events carry the tempo map (log-spaced bins) so decoded files keep their
tempo in a DAW; note times are absolute (10 ms steps), so tempo never moves a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from melodia.encoding.events import build_stream
from melodia.encoding.performance import PerformanceConfig, PerformanceEncoding
from melodia.encoding.quantize import quantize, sort_rows
from melodia.encoding.vocab import EventRange
from melodia.midi import MAX_SECONDS, NOTE_DTYPE, TEMPO_DTYPE, Score, load_score
from melodia.midi.instruments import DRUMS


@dataclass
class BandConfig(PerformanceConfig):
    """Parameters of the band encoding: the piano ones plus tempo bins and an instrument cap."""

    sustain: bool = True  # applied to melodic tracks only, never to drums
    tempo_bins: int = 32
    min_qpm: float = 30.0
    max_qpm: float = 300.0
    max_instruments: int = 16  # including drums; at most 15 melodic parts

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tempo_bins < 2 or not 0 < self.min_qpm < self.max_qpm:
            raise ValueError("need tempo_bins >= 2 and 0 < min_qpm < max_qpm")
        if not 1 <= self.max_instruments <= 16:
            raise ValueError("max_instruments must be in 1..16 (MIDI has 16 channels)")


def _keep_instruments(instrument: np.ndarray, max_instruments: int) -> np.ndarray:
    """Instrument ids to keep: drums plus the melodic ones with most notes, 16 channels at most."""
    ids, counts = np.unique(instrument, return_counts=True)
    melodic = ids != DRUMS
    by_count = ids[melodic][np.argsort(-counts[melodic], kind="stable")]
    keep = list(by_count[: min(15, max_instruments - int((~melodic).any()))])
    if (~melodic).any():
        keep.append(DRUMS)
    return np.array(sorted(keep), dtype=instrument.dtype)


class BandEncoding(PerformanceEncoding):
    """MIDI <-> event ids for multi-instrument music (drums, bass, guitars, keys...)."""

    name: ClassVar[str] = "band"
    config_class: ClassVar[type] = BandConfig
    config: BandConfig

    def _ranges(self) -> tuple[EventRange, ...]:
        return super()._ranges() + (
            EventRange("PROGRAM", 0, DRUMS),
            EventRange("TEMPO", 0, self.config.tempo_bins - 1),
        )

    # ------------------------------------------------------------------------------ tempo

    def qpm_to_bin(self, qpm: np.ndarray) -> np.ndarray:
        c = self.config
        lo, hi = np.log(c.min_qpm), np.log(c.max_qpm)
        x = (np.log(np.clip(qpm, c.min_qpm, c.max_qpm)) - lo) / (hi - lo) * (c.tempo_bins - 1)
        return np.floor(x + 0.5).astype(np.int64)

    def bin_to_qpm(self, tempo_bin: np.ndarray) -> np.ndarray:
        c = self.config
        lo, hi = np.log(c.min_qpm), np.log(c.max_qpm)
        return np.exp(lo + np.asarray(tempo_bin) / (c.tempo_bins - 1) * (hi - lo))

    def quantize_tempos(self, score: Score) -> tuple[np.ndarray, np.ndarray]:
        """Tempo changes as ``(steps, bins)``, keeping only changes of bin (last one per step)."""
        sps = self.config.steps_per_second
        steps = np.floor(score.tempos["time_s"] * sps + 0.5).astype(np.int64)
        bins = self.qpm_to_bin(score.tempos["qpm"])
        last_of_step = np.append(steps[1:] != steps[:-1], True)
        steps, bins = steps[last_of_step], bins[last_of_step]
        changed = np.insert(bins[1:] != bins[:-1], 0, True)
        return steps[changed], bins[changed]

    # ----------------------------------------------------------------------------- encode

    def quantize(self, score: Score) -> np.ndarray:
        parts = [(self._track_notes(t) if not t.is_drum else t.notes,
                  DRUMS if t.is_drum else t.program) for t in score.tracks]
        notes = (np.concatenate([n for n, _ in parts]) if parts else np.empty(0, NOTE_DTYPE))
        instrument = np.concatenate([np.full(len(n), i, np.int64) for n, i in parts]) \
            if parts else np.empty(0, np.int64)
        if len(notes):
            keep = np.isin(instrument, _keep_instruments(instrument, self.config.max_instruments))
            notes, instrument = notes[keep], instrument[keep]
        c = self.config
        return quantize(notes, instrument, c.steps_per_second, c.velocity_bins,
                        self.max_note_steps, c.min_pitch, c.max_pitch)

    def encode(self, midi, max_seconds: float | None = MAX_SECONDS) -> np.ndarray:
        score = load_score(midi, max_seconds)
        q = self.quantize(score)
        steps, bins = self.quantize_tempos(score)
        last = int(q["end"].max()) if len(q) else 0
        keep = steps <= last  # a tempo change after the last note means nothing (and may be
        return self.encode_quantized(q, steps[keep], bins[keep])  # days later in a bad file)

    def encode_quantized(self, q: np.ndarray, tempo_steps: np.ndarray | None = None,
                         tempo_bins: np.ndarray | None = None) -> np.ndarray:
        steps, order, instrument, pitch, main, velocity = self._note_events(q)
        program = self.vocab.offset("PROGRAM") + instrument
        if tempo_steps is not None and len(tempo_steps):
            k = len(tempo_steps)
            steps = np.concatenate([tempo_steps, steps])
            order = np.concatenate([np.full(k, -1, np.int64), order])
            instrument = np.concatenate([np.zeros(k, np.int64), instrument])
            pitch = np.concatenate([np.zeros(k, pitch.dtype), pitch])
            main = np.concatenate([self.vocab.offset("TEMPO") + tempo_bins, main])
            velocity = np.concatenate([np.full(k, -1, np.int64), velocity])
            program = np.concatenate([np.full(k, -1, np.int64), program])
        idx = sort_rows(steps, order + 1, instrument, pitch.astype(np.int64))
        return build_stream(steps[idx], main[idx], [program[idx], velocity[idx]],
                            self.vocab.offset("TIME_SHIFT"), self.config.max_shift_steps)

    # ----------------------------------------------------------------------------- decode

    def decode(self, ids) -> Score:
        import pretty_midi

        q, tempo_events = self.decode_quantized(ids)
        if len(q):
            q = q[np.isin(q["instrument"], _keep_instruments(q["instrument"],
                                                             self.config.max_instruments))]
        tracks = []
        for instrument in np.unique(q["instrument"]):
            part = q[q["instrument"] == instrument]
            if instrument == DRUMS:
                tracks.append(self._track(part, program=0, is_drum=True, name="Drums"))
            else:
                name = pretty_midi.program_to_instrument_name(int(instrument))
                tracks.append(self._track(part, program=int(instrument), is_drum=False, name=name))
        return Score(tracks=tracks, tempos=self._tempo_map(tempo_events),
                     until_s=self.stream_end_s(ids))

    def _tempo_map(self, events: list[tuple[int, int]]) -> np.ndarray:
        if not events or events[0][0] > 0:
            events = [(0, int(self.qpm_to_bin(np.array(120.0))))] + events
        steps = np.array([s for s, _ in events], dtype=np.int64)
        bins = np.array([b for _, b in events], dtype=np.int64)
        last_of_step = np.append(steps[1:] != steps[:-1], True)
        tempos = np.empty(int(last_of_step.sum()), dtype=TEMPO_DTYPE)
        tempos["time_s"] = steps[last_of_step] / self.config.steps_per_second
        tempos["qpm"] = self.bin_to_qpm(bins[last_of_step])
        return tempos
