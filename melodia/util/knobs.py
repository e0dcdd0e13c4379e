"""Every number a user can type, with its limits: one table shared by the command line, the Python
API (the config dataclasses check through it) and, later, the studio page.

A knob is checked before any memory is spent on it: its type (a whole number where one is
needed, never a string or a bool), finite, and in its range. Each refusal is one line naming the
knob as the caller wrote it (``--seconds`` on the command line, ``seconds`` in Python) and what
would be accepted:

>>> check("events", 2.5)
Traceback (most recent call last):
...
melodia.util.knobs.KnobError: events must be a whole number from 1 to 1000000, not 2.5
>>> check("seconds", float("inf"), "--seconds")
Traceback (most recent call last):
...
melodia.util.knobs.KnobError: --seconds must be a number above 0 and at most 86400, not inf
>>> check("seed", 7)
7
"""

from __future__ import annotations

import argparse
import math
import numbers
from dataclasses import dataclass

from melodia.errors import MelodiaError

MAX_SECONDS = 24 * 3600.0  # the longest piece asked for: a day of music


class KnobError(MelodiaError, ValueError):
    """A number outside what a knob takes (a ValueError too, as bad arguments are in Python)."""


@dataclass(frozen=True)
class Knob:
    kind: type  # int or float
    low: float
    high: float
    open_low: bool = False  # low itself is refused
    what: str = ""  # the unit, for messages and --help

    def describe(self) -> str:
        whole = "whole " if self.kind is int else ""
        low, high = _show(self.low), _show(self.high)
        if self.open_low:
            return f"a {whole}number above {low} and at most {high}"
        return f"a {whole}number from {low} to {high}"


def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


KNOBS: dict[str, Knob] = {
    # generation
    "seconds": Knob(float, 0.0, MAX_SECONDS, True, "seconds of new music"),
    "events": Knob(int, 1, 1_000_000, what="events"),
    "num": Knob(int, 1, 256, what="pieces generated together"),
    "candidates": Knob(int, 1, 64, what="fills drawn together"),
    "lean": Knob(float, 0.0, 100.0, what="logit bonus"),
    "seed": Knob(int, 0, 2**63 - 1, what="random seed"),
    "bars": Knob(int, 1, 100_000, what="4/4 bars"),
    "tempo": Knob(float, 10.0, 1000.0, what="beats per minute"),
    "density": Knob(float, 0.0, 200.0, what="notes per second"),
    "primer_seconds": Knob(float, 0.0, 3600.0, True, "seconds of the primer kept"),
    "temperature": Knob(float, 0.0, 1000.0),
    "top_k": Knob(int, 0, 100_000),
    "top_p": Knob(float, 0.0, 1.0, True),
    "noise": Knob(float, 0.0, 1000.0),
    "beam": Knob(int, 1, 256, what="beam entries"),
    "branch_factor": Knob(int, 1, 256),
    "steps_per_iteration": Knob(int, 1, 10_000),
    "randomness": Knob(float, 0.0, 1.0),
    "threads": Knob(int, 1, 1024),
    "memory": Knob(float, 0.0, 1.0),
    # live
    "channel": Knob(int, 1, 16, what="MIDI channel"),
    "rounds": Knob(int, 1, 100_000, what="answers"),
    "trigger_cc": Knob(int, 0, 127, what="control change number"),
    # output
    "gain": Knob(float, 0.0, 100.0, True),
    "sample_rate": Knob(int, 8000, 96_000, what="Hz"),
    "max_tail": Knob(float, 0.0, 600.0, what="seconds"),
    "width": Knob(int, 200, 20_000, what="pixels"),  # a piano roll needs 200 x 150 at least
    "height": Knob(int, 150, 20_000, what="pixels"),
    "dpi": Knob(int, 10, 1200),
    # training and models
    "steps": Knob(int, 0, 10**9),
    "batch_size": Knob(int, 1, 65_536),
    "seq_len": Knob(int, 2, 65_536, what="events per crop"),
    "hidden_size": Knob(int, 1, 16_384),
    "embed_dim": Knob(int, 1, 16_384),
    "num_layers": Knob(int, 1, 128),
    "num_heads": Knob(int, 1, 256),
    "context": Knob(int, 1, 65_536, what="events of attention"),
    # corpora and evaluation
    "workers": Knob(int, 1, 256, what="processes"),
    "eval_workers": Knob(int, 0, 256, what="processes (0: this one)"),
    "max_files": Knob(int, 1, 10**8),
    "humanize": Knob(float, 0.0, 1.0, what="seconds"),
    "max_events": Knob(int, 1, 10**10),
    "segment_events": Knob(int, 0, 1_000_000),
    "excerpts": Knob(int, 1, 10**7),
}


def check(name: str, value, label: str | None = None, error: type[Exception] = KnobError):
    """``value`` if knob ``name`` takes it (ints come back as int), else one line as ``error``
    (a stage's own error class, e.g. RenderError; KnobError by default)."""
    knob = KNOBS[name]
    label = label or name
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and knob.kind is int:
        ok = isinstance(value, numbers.Integral) or (math.isfinite(value) and value == int(value))
    if ok:
        ok = math.isfinite(value) and (value > knob.low if knob.open_low else value >= knob.low) \
            and value <= knob.high
    if not ok:
        raise error(f"{label} must be {knob.describe()}, not {value!r}")
    return int(value) if knob.kind is int else float(value)


def check_optional(name: str, value, label: str | None = None):
    return None if value is None else check(name, value, label)


def argument(name: str):
    """An argparse ``type=`` for knob ``name``: the text read as its kind, then :func:`check`."""
    knob = KNOBS[name]

    def parse(text: str):
        try:
            value = float(text) if knob.kind is float else int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"needs {knob.describe()}, not {text!r}") from None
        try:
            return check(name, value, "it")
        except KnobError:
            raise argparse.ArgumentTypeError(f"needs {knob.describe()}, not {text}") from None

    parse.__name__ = knob.kind.__name__
    return parse


__all__ = ["KNOBS", "MAX_SECONDS", "Knob", "KnobError", "argument", "check", "check_optional"]
