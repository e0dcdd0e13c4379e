"""The piano performance encoding of Performance RNN (Simon & Oore, 2017): 388 events.

Ids are index-compatible with Magenta's ``PerformanceOneHotEncoding(num_velocity_bins=32)``::

    NOTE_ON 0..127 -> 0..127   NOTE_OFF 0..127 -> 128..255
    TIME_SHIFT 1..100 (x10 ms) -> 256..355   VELOCITY 1..32 -> 356..387

Within one time step, note-offs come before note-ons (so a re-struck pitch decodes right), each
ordered by pitch; a VELOCITY event precedes a note-on only when the velocity bin changes.
All non-drum tracks are merged into one piano; the sustain pedal is applied first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from melodia.encoding.events import (DecodeRules, build_stream, check_ids, decode_stream, end_step,
                                     lookup_tables)
from melodia.encoding.quantize import (apply_sustain, bin_to_velocity, max_note_steps, quantize,
                                       sort_rows)
from melodia.encoding.vocab import EventRange, Vocabulary
from melodia.midi import MAX_SECONDS, NOTE_DTYPE, Score, Track, load_score


@dataclass
class PerformanceConfig:
    """Parameters of the piano performance encoding (defaults: Performance RNN's)."""

    steps_per_second: int = 100  # 10 ms time resolution
    max_shift_steps: int = 100  # longest single TIME_SHIFT event: 1 s
    velocity_bins: int = 32
    min_pitch: int = 0
    max_pitch: int = 127
    sustain: bool = True  # apply the sustain pedal (CC64) to note ends before encoding
    max_note_s: float = 10.0  # longer notes are cut, when encoding and when decoding

    def __post_init__(self) -> None:
        if self.steps_per_second < 1 or self.max_shift_steps < 1:
            raise ValueError("steps_per_second and max_shift_steps must be >= 1")
        if not 1 <= self.velocity_bins <= 127:
            raise ValueError("velocity_bins must be in 1..127")
        if not 0 <= self.min_pitch <= self.max_pitch <= 127:
            raise ValueError("need 0 <= min_pitch <= max_pitch <= 127")
        if self.max_note_s <= 0:
            raise ValueError("max_note_s must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PerformanceConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "PerformanceConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


class PerformanceEncoding:
    """MIDI <-> event ids for solo piano. ``encode`` then ``decode`` equals :meth:`quantize`."""

    name: ClassVar[str] = "piano"
    config_class: ClassVar[type] = PerformanceConfig

    def __init__(self, config: PerformanceConfig | None = None) -> None:
        self.config = config or self.config_class()
        self.vocab = Vocabulary(self._ranges())
        self._kinds, self._values = lookup_tables(self.vocab)
        c = self.config
        self.max_note_steps = max_note_steps(c.max_note_s, c.steps_per_second)
        velocity_of_bin = np.zeros(c.velocity_bins + 1, dtype=np.int64)
        velocity_of_bin[1:] = bin_to_velocity(np.arange(1, c.velocity_bins + 1), c.velocity_bins)
        self._rules = DecodeRules(max_note_steps=self.max_note_steps,
                                  velocity_of_bin=velocity_of_bin)

    def _ranges(self) -> tuple[EventRange, ...]:
        c = self.config
        return (
            EventRange("NOTE_ON", c.min_pitch, c.max_pitch),
            EventRange("NOTE_OFF", c.min_pitch, c.max_pitch),
            EventRange("TIME_SHIFT", 1, c.max_shift_steps),
            EventRange("VELOCITY", 1, c.velocity_bins),
        )

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    # ------------------------------------------------------------------------------ encode

    def _track_notes(self, track: Track) -> np.ndarray:
        return apply_sustain(track.notes, track.pedal) if self.config.sustain else track.notes

    def quantize(self, score: Score) -> np.ndarray:
        """The canonical quantized notes (``QNOTE_DTYPE``) this encoding represents for ``score``."""
        tracks = [t for t in score.tracks if not t.is_drum]
        notes = (np.concatenate([self._track_notes(t) for t in tracks]) if tracks
                 else np.empty(0, NOTE_DTYPE))
        c = self.config
        return quantize(notes, 0, c.steps_per_second, c.velocity_bins, self.max_note_steps,
                        c.min_pitch, c.max_pitch)

    def _note_events(self, q: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per event: step, order within a step, instrument, pitch, main id, velocity-state id."""
        v, n = self.vocab, len(q)
        on_ids = v.offset("NOTE_ON") + q["pitch"] - self.config.min_pitch
        off_ids = v.offset("NOTE_OFF") + q["pitch"] - self.config.min_pitch
        vel_ids = v.offset("VELOCITY") + q["vbin"].astype(np.int64) - 1
        steps = np.concatenate([q["end"], q["start"]])
        order = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
        instrument = np.concatenate([q["instrument"], q["instrument"]]).astype(np.int64)
        pitch = np.concatenate([q["pitch"], q["pitch"]])
        main = np.concatenate([off_ids, on_ids])
        velocity = np.concatenate([np.full(n, -1, np.int64), vel_ids])
        return steps, order, instrument, pitch, main, velocity

    def encode_quantized(self, q: np.ndarray) -> np.ndarray:
        steps, order, _, pitch, main, velocity = self._note_events(q)
        idx = sort_rows(steps, order, pitch.astype(np.int64))
        return build_stream(steps[idx], main[idx], [velocity[idx]],
                            self.vocab.offset("TIME_SHIFT"), self.config.max_shift_steps)

    def encode(self, midi, max_seconds: float | None = MAX_SECONDS) -> np.ndarray:
        """Event ids (int32) for a :class:`~melodia.midi.Score`, path, bytes or PrettyMIDI.

        A piece whose last note ends after ``max_seconds`` (default 2 h, ``None`` = no limit)
        raises :class:`~melodia.errors.MidiReadError` before anything is quantized.
        """
        return self.encode_quantized(self.quantize(load_score(midi, max_seconds)))

    def encode_file(self, path: str | Path, max_seconds: float | None = MAX_SECONDS) -> np.ndarray:
        return self.encode(Path(path), max_seconds)

    # ------------------------------------------------------------------------------ decode

    def decode_quantized(self, ids) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Ids to quantized notes (``vbin`` holding the MIDI velocity) and tempo events."""
        arr = check_ids(ids, self.vocab.size)
        return decode_stream(arr, self._kinds, self._values, self._rules)

    def decode(self, ids) -> Score:
        """Any id sequence within the vocabulary to a valid :class:`~melodia.midi.Score`.

        The score lasts until the end of the stream's last time shift (``until_s``), so
        silence after the last note is kept.
        """
        q, _ = self.decode_quantized(ids)
        return Score(tracks=[self._track(q, program=0, is_drum=False, name="Piano")],
                     until_s=self.stream_end_s(ids))

    def stream_end_s(self, ids) -> float:
        """Seconds from the start of ``ids`` to its end: all its time shifts added up."""
        arr = check_ids(ids, self.vocab.size)
        return end_step(arr, self._kinds, self._values) / self.config.steps_per_second

    def _track(self, q: np.ndarray, program: int, is_drum: bool, name: str) -> Track:
        sps = self.config.steps_per_second
        notes = np.empty(len(q), dtype=NOTE_DTYPE)
        notes["start_s"] = q["start"] / sps
        notes["end_s"] = q["end"] / sps
        notes["pitch"], notes["velocity"] = q["pitch"], q["vbin"]
        return Track(notes=notes, program=program, is_drum=is_drum, name=name)

    # ----------------------------------------------------------------------------- inspect

    def describe(self, ids) -> list[str]:
        """Readable events, e.g. ``['VELOCITY 20', 'NOTE_ON 60', 'TIME_SHIFT 50']``."""
        arr = check_ids(ids, self.vocab.size)
        return [str(self.vocab.decode_event(int(i))) for i in arr]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config.to_dict()}


__all__ = ["PerformanceConfig", "PerformanceEncoding"]
