"""Exceptions raised by melodia. Every error a user can cause derives from :class:`MelodiaError`."""

from __future__ import annotations

from pathlib import Path


class MelodiaError(Exception):
    """Base class of all errors melodia raises on purpose."""


class MidiReadError(MelodiaError):
    """A MIDI file could not be read. ``path`` names the file, ``reason`` says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read MIDI file {self.path}: {reason}")


class EncodingError(MelodiaError):
    """Token ids or events that do not belong to an encoding's vocabulary."""


class DatasetError(MelodiaError):
    """A prepared dataset directory that is missing, inconsistent or of another encoding."""


class ScoreReadError(MelodiaError):
    """A score (MusicXML, ABC, kern) music21 could not read. ``path`` and ``reason`` as above."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read score {self.path}: {reason}")


class RenderError(MelodiaError):
    """Audio cannot be rendered: FluidSynth missing, bad SoundFont, empty score, bad output."""


class GenerateError(MelodiaError):
    """Options that cannot be honoured (no such model, controls the model lacks, a bad key...)."""
