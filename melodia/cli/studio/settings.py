"""The page's settings as a command line, in the musician's words.

Each field of the page is one option of ``melodia generate`` / ``accompany`` / ``infill`` /
``restyle``
(:data:`FIELDS`), so a page's request becomes an argument list (:func:`to_argv`) that melodia's
own parser checks. Where the command line says ``argument --seconds: must be > 0, not -3``, the
page says ``Seconds: must be > 0, not -3`` (:func:`plain`), naming the knob the musician sees. A
value the studio can check up front
(a style the model does not know, a key, a line-up, form letters: :func:`precheck`) is refused
when the job is asked for, not after it waited in the queue and loaded its model.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from melodia.errors import MelodiaError
from melodia.midi import read_midi

COMMANDS = ("generate", "accompany", "infill", "restyle")
NEEDS_SONG = ("accompany", "infill", "restyle")  # commands that play with a dropped file
# page field -> command-line option (a flag without a value where the value is True)
FIELDS = {
    "seconds": "--seconds", "bars": "--bars", "seed": "--seed", "temperature": "--temperature",
    "top_p": "--top-p", "top_k": "--top-k", "sampler": "--sampler", "style": "--style",
    "tempo": "--tempo", "lineup": "--lineup", "randomness": "--randomness", "key": "--key",
    "density": "--density", "form": "--form", "span": "--bars", "tracks": "--tracks",
    "candidates": "--candidates", "harmony": "--harmony", "num": "--num", "repeat": "--repeat",
    "drum_grid": "--drum-grid", "memory": "--memory", "keep": "--keep", "feel": "--feel",
    "lead": "--lead",
}
FLAGS = {"drum_grid"}  # fields that are a flag: on (true) or left out
ONLY = {"generate": {"seconds", "bars", "seed", "temperature", "top_p", "top_k", "sampler",
                     "style", "tempo", "lineup", "randomness", "key", "density", "form", "num",
                     "repeat", "drum_grid", "memory"},
        "accompany": {"seed", "temperature", "sampler", "style", "tempo", "lineup", "randomness",
                      "harmony", "memory", "repeat"},
        "infill": {"seed", "temperature", "sampler", "style", "tempo", "randomness", "span",
                   "tracks", "candidates", "memory"},
        "restyle": {"seed", "temperature", "sampler", "style", "lineup", "randomness",
                    "harmony", "memory", "keep", "feel", "lead", "repeat"}}
MAX_TEXT = 200  # characters in one field
MAX_TAKES = 4  # variations of one job, side by side on the page


class SettingsError(MelodiaError):
    """A page's settings that make no command line."""


@dataclass
class Upload:
    """A MIDI file dropped on the page: kept under the output folder as ``path``."""

    id: str
    name: str  # the file's own name, for the command line shown
    path: Path
    seconds: float
    notes: int


def to_argv(command: str, settings: dict[str, Any], model: str, upload: Upload | None
            ) -> tuple[list[str], list[str]]:
    """The argument list for ``settings`` (with the model's path or name, and the uploaded
    song or primer), and the same list as the page shows it (the upload by its own name)."""
    if command not in COMMANDS:
        raise SettingsError(f"unknown command {command!r}: choose {', '.join(COMMANDS)}")
    argv = [command]
    if command in NEEDS_SONG:
        if upload is None:
            raise SettingsError(f"{command} needs a MIDI file: drop one on the page")
        argv.append(str(upload.path))
    if command == "restyle" and not settings.get("style"):
        raise SettingsError("Style: restyle needs one, the band that plays the song (swing, "
                            "metal, bossa...)")
    argv += ["--model", model]  # a model from --models by its path: the line replays it
    for name, value in settings.items():
        if name not in ONLY[command]:
            raise SettingsError(f"{command} does not take {name!r}")
        if value is None or value == "" or value is False:
            continue
        if name in FLAGS:
            if value is not True:
                raise SettingsError(f"{name} is on (true) or off (false), not {value!r}")
            argv.append(FIELDS[name])
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise SettingsError(f"{name} takes a number or a word, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(f"{name} must be a finite number, not {value}")
        text = str(value).strip()
        if len(text) > MAX_TEXT or any(ord(c) < 32 for c in text):
            raise SettingsError(f"{name}: at most {MAX_TEXT} printable characters")
        argv += [FIELDS[name], text]
    if command == "generate" and upload is not None:
        argv += ["--primer", str(upload.path)]
    kept = None if upload is None else str(upload.path)
    shown = [upload.name if kept is not None and arg == kept else arg for arg in argv]
    return argv, shown


def length(command: str, args: argparse.Namespace, upload: Upload | None
            ) -> tuple[float | None, int | None]:
    """How long the music will be, in seconds where known now, else in 4/4 bars (for the
    progress bar): generate's --seconds, or its bars (times the sections of a form) at
    --tempo; an accompanied song's length; the end of an infill's span."""
    if command in ("accompany", "restyle") and upload is not None:
        return upload.seconds, None
    if command == "infill" and upload is not None:
        from melodia.midi.bars import bar_span  # deferred: numpy

        try:
            return bar_span(read_midi(upload.path), args.bars)[1], None
        except (ValueError, MelodiaError):
            return None, None
    if args.form:
        bars = (args.bars or 8) * len(args.form)  # form's default: 8 bars a section
    elif args.bars:
        bars = args.bars
    else:
        return (args.seconds if args.seconds is not None else 10.0), None
    return (bars * 4 * 60.0 / args.tempo if args.tempo else None), bars



# command-line option -> the page's name for that knob
LABELS = {
    "--seconds": "Seconds", "--bars": "Bars", "--seed": "Seed", "--temperature": "Temperature",
    "--top-p": "Top p", "--top-k": "Top k", "--sampler": "Sampler", "--style": "Style",
    "--tempo": "Tempo", "--lineup": "Line-up", "--randomness": "Randomness", "--key": "Key",
    "--density": "Density", "--form": "Form", "--tracks": "Tracks",
    "--candidates": "Candidates", "--harmony": "Harmony", "--num": "Variations",
    "--repeat": "Repeat", "--memory": "Memory", "--keep": "Keep", "--feel": "Feel",
    "--lead": "Lead",
}
_ARGUMENT = re.compile(r"^argument (--[a-z-]+)(?:/-\w)?: ")


def plain(message: str, command: str = "") -> str:
    """``argument --seconds: must be > 0`` -> ``Seconds: must be > 0``; other words kept
    (``--bars`` of infill is the page's "Bars to fill")."""
    match = _ARGUMENT.match(message)
    if match is None:
        return message
    option = match.group(1)
    label = "Bars to fill" if option == "--bars" and command == "infill" else \
        LABELS.get(option, option)
    return f"{label}: {message[match.end():]}"


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]}?)" if close else ""


def precheck(settings: dict[str, Any], band: bool, styles: Callable[[], list[str]]) -> None:
    """Refuse what can be known wrong before the job runs (raising ``ValueError`` with the
    page's words): a style outside ``styles()`` (the model's, read once asked), style or
    line-up for a model without a band, a key, a line-up, form letters."""
    style, lineup = settings.get("style"), settings.get("lineup")
    if not band and (style or lineup):
        raise ValueError(f"{'Style' if style else 'Line-up'}: the piano model plays no band; "
                         "choose the band model for styles and line-ups")
    if style:
        known = styles()
        if str(style).lower() not in known:
            raise ValueError(f"Style: this model knows no style {style!r}"
                             f"{_did_you_mean(str(style), known)}; it knows "
                             f"{', '.join(known) or 'none'}")
    num = str(settings.get("num") or "1").strip()
    if num.isdigit() and int(num) > MAX_TAKES:
        raise ValueError(f"Variations: at most {MAX_TAKES} at once, not {num}")
    checks = {"key": _key, "lineup": _lineup, "form": _form}
    for name, check in checks.items():
        if settings.get(name):
            try:
                check(str(settings[name]))
            except (MelodiaError, ValueError) as err:  # a line-up's error is a ValueError
                raise ValueError(f"{LABELS['--' + name]}: {err}") from None


def _key(text: str) -> None:
    from melodia.features.keys import parse_key  # deferred: numpy

    parse_key(text)


def _lineup(text: str) -> None:
    from melodia.midi.instruments import parse_lineup  # deferred: pretty_midi

    parse_lineup(text)


def _form(text: str) -> None:
    from melodia.generation.form import parse_form  # deferred: torch

    parse_form(text)


__all__ = ["COMMANDS", "FIELDS", "LABELS", "MAX_TEXT", "NEEDS_SONG", "ONLY", "SettingsError", "Upload", "length",
           "plain", "precheck", "to_argv"]
