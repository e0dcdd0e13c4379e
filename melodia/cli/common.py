"""Shared pieces of the command line: printing, number and output-path checks."""

from __future__ import annotations

import argparse
import math
import os
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

from melodia.errors import MelodiaError

ENCODING_NAMES = ("piano", "band")
# melodia.model.config.KINDS, spelled out so that --help does not import torch (a test compares)
MODEL_KINDS = ("lstm", "transformer", "attention-rnn")


def _print(*parts: object) -> None:
    print(*parts, file=sys.stderr)


_TOLD: ContextVar[dict[str, Any] | None] = ContextVar("melodia_told", default=None)


def tell(**facts: Any) -> None:
    """Hand facts about what a command made (what was drawn, a form's sections, the bars an
    infill replaced) to whoever collects them in this thread (the studio); else nothing."""
    told = _TOLD.get()
    if told is not None:
        told.update(facts)


@contextmanager
def collecting() -> Iterator[dict[str, Any]]:
    """In this block, what commands :func:`tell` lands in the dict yielded."""
    told: dict[str, Any] = {}
    token = _TOLD.set(told)
    try:
        yield told
    finally:
        _TOLD.reset(token)


# ------------------------------------------------------------------ argument types and paths


def _number(low: float | None = None, high: float | None = None, *, open_low: bool = False,
            kind: type = float):
    """An argparse type: a finite number (int or float) in [low, high] ((low, high] if open_low)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"needs a{'n integer' if kind is int else ' number'}"
                                             f", not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"needs a finite number, not {text!r}")
        if low is not None and (value <= low if open_low else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if open_low else '>='} {low:g}, "
                                             f"not {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high:g}, not {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


positive_float = _number(0.0, open_low=True)


def _output(path: Path, *, create: bool = True) -> Path:
    """Check that ``path`` can be written: its folder is made if missing (``create``), and a
    file in the way, an existing folder at ``path`` or a read-only folder is one clear error."""
    parent = path.parent
    for above in (parent, *parent.parents):
        if above.exists():
            if not above.is_dir():
                raise MelodiaError(f"cannot write {path}: {above} is a file, not a folder")
            break
    if path.is_dir():
        raise MelodiaError(f"cannot write {path}: it is a folder")
    if not parent.is_dir():
        if not create:
            raise MelodiaError(f"cannot write {path}: no folder {parent}")
        parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise MelodiaError(f"cannot write {path}: {parent} is read-only")
    existed = path.exists()
    try:  # os.access says yes to root everywhere: try it, before minutes of work are lost
        with open(path, "ab"):
            pass
    except OSError as err:
        raise MelodiaError(f"cannot write {path}: {err.strerror or err}") from None
    if not existed:
        path.unlink()
    return path


MIDI_SUFFIXES = (".mid", ".midi")


def midi_output(path: Path, flag: str = "-o") -> Path:
    """``path`` if it names a MIDI file; else one line (``-o song.mp3`` would hold MIDI bytes)."""
    if path.suffix.lower() not in MIDI_SUFFIXES:
        raise MelodiaError(f"{flag} {path}: melodia writes MIDI files here (.mid or .midi), not "
                           f"{path.suffix or 'a name without a suffix'}")
    return path


def not_an_input(outputs: list[Path | None], inputs: dict[str, Path | None],
                 force: bool = False) -> None:
    """Refuse an output that would replace one of the command's own inputs (``--primer p.mid
    -o p.mid``) unless ``force``; ``inputs`` maps a description to its path."""
    if force:
        return
    for out in (o for o in outputs if o is not None and o.exists()):
        for what, given in inputs.items():
            if given is not None and Path(given).exists() and out.samefile(given):
                raise MelodiaError(f"{out} is {what}: writing it would replace it; pick another "
                                   f"output name (or --force)")


# ------------------------------------------------------------------------------ encode/decode


def fluidsynth_missing(err: Exception) -> str | None:
    """One line saying what to install when ``err`` (a ``RenderError``) is FluidSynth missing
    (``melodia.output.audio.install_hint``, which spells out every platform); else ``None``."""
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.output.synth import install_hint

    return {
        install_hint("libfluidsynth"): "FluidSynth's C library is not installed (Debian/Ubuntu: "
        "sudo apt-get install libfluidsynth3; macOS: brew install fluid-synth)",
        install_hint("pyfluidsynth"): "pyfluidsynth is not installed: pip install "
        "'melodia[audio]' (it also needs libfluidsynth: sudo apt-get install libfluidsynth3)",
    }.get(str(err))
