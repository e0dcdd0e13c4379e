"""Shared pieces of the command line: printing, number and output-path checks."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from melodia.errors import MelodiaError

ENCODING_NAMES = ("piano", "band")


def _print(*parts: object) -> None:
    print(*parts, file=sys.stderr)


# ------------------------------------------------------------------ argument types and paths

MAX_SECONDS = 24 * 3600.0  # longest --seconds: a day of music


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


finite_float = _number()
non_negative_float = _number(0.0)
positive_float = _number(0.0, open_low=True)
positive_int = _number(1, kind=int)
seconds_float = _number(0.0, MAX_SECONDS, open_low=True)


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
