"""A stream's first seconds, kept for its next start: the first note before torch has loaded.

``melodia stream``'s first note waits on importing torch (1.3-3 s of one core; the port already
opens meanwhile, :mod:`melodia.live.start`). But a stream's music is a pure function of the
model file, the settings and the seed, so melodia keeps the first :data:`HEAD_S` seconds of what
a stream will play (its MIDI messages, with their times) in ``$XDG_CACHE_HOME/melodia/headstarts``
(``~/.cache/...``). The next stream with the same model file and settings plays them at once,
with no torch, while torch imports and the model loads in the background; the model then makes
the same head (same seed) and its stream goes on where the kept one ends: the same music, note
for note, as a stream without the cache.

- ``--seed S``: the head of seed S, kept at the end of the first stream with it;
- no seed: a *spare*, the head of a seed drawn at the end of the previous stream, used once (the
  command says the seed, so the piece can be played again).

The model's own head is checked against the kept one; if they differ (another torch build, a
model file replaced under the same name and time stamp), the kept file is dropped and the stream
goes on with the model's continuation (logged). Live accompaniment and call and response wait
on a player, so they keep nothing.

This module imports no torch.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import mido

from melodia.live.decode import Timed
from melodia.util.atomic import atomic_write

log = logging.getLogger(__name__)

HEAD_S = 8.0  # seconds of music kept: more than a slow machine takes to import torch and load
VERSION = 1
MAX_BYTES = 4 << 20  # a kept head larger than this is not one of ours: ignored
# options that do not change what a stream plays (where it goes, for how long, how it is told)
_NOT_MUSIC = {"port", "virtual", "api", "seconds", "bars", "seed", "lookahead", "quiet",
              "verbose", "list_styles", "command"}

@dataclass(frozen=True)
class HeadStart:
    """The first :data:`HEAD_S` seconds of one stream: its seed and its timed messages."""

    seed: int
    messages: list[Timed]


def headstart_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "melodia" / "headstarts"


def plain_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that are plain values (what JSON carries; not the command's function)."""
    return {k: v for k, v in options.items()
            if isinstance(v, (str, int, float, bool, list, tuple, type(None)))}


def settings_key(model: str, options: Mapping[str, Any]) -> str:
    """A name for what a stream plays, but its seed: the model (and the size and time of its
    files) and every option that changes the music (plain values of ``options``)."""
    plain = {k: v for k, v in sorted(plain_options(options).items()) if k not in _NOT_MUSIC}
    text = json.dumps([VERSION, model, _stamp(model), plain], default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def _stamp(model: str) -> list:
    """Size and modification time of the files a model name stands for (the shipped ones are
    in melodia/weights)."""
    path = Path(model)
    if not path.exists() and "/" not in model and "\\" not in model:
        path = Path(__file__).resolve().parents[1] / "weights" / f"{model}.pt"
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]


def _file(key: str, seed: int | None) -> Path:
    return headstart_dir() / f"{key}-{'spare' if seed is None else seed}.json"


def read_headstart(key: str, seed: int | None) -> HeadStart | None:
    """The kept head of ``seed`` (None: the spare, which is taken: removed as it is read), or
    None if there is none or it cannot be read (an unreadable file is removed)."""
    path = _file(key, seed)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ValueError("too large")
        data = json.loads(path.read_text())
        if seed is None:
            path.unlink()
        if data.get("version") != VERSION or data.get("key") != key:
            raise ValueError("another version")
        messages = [(float(t), mido.Message.from_bytes(list(b))) for t, b in data["messages"]]
        if not messages or any(b[0] < a[0] for a, b in zip(messages, messages[1:])):
            raise ValueError("no messages in time order")
        return HeadStart(int(data["seed"]), messages)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, IndexError) as err:
        log.info("ignoring the kept start %s: %s", path, err)
        path.unlink(missing_ok=True)
        return None


def write_headstart(key: str, head: HeadStart, spare: bool) -> Path:
    """Keep ``head`` under ``key`` (as the spare, or as its seed's), atomically."""
    data = {"version": VERSION, "key": key, "seed": head.seed,
            "messages": [[round(t, 6), message.bytes()] for t, message in head.messages]}
    text = json.dumps(data, separators=(",", ":")).encode()
    return atomic_write(_file(key, None if spare else head.seed), lambda f: f.write(text))


def has_headstart(key: str, seed: int | None) -> bool:
    return _file(key, seed).exists()


def head_of(messages: Iterator[Timed], seed: int) -> HeadStart:
    """The first :data:`HEAD_S` seconds of a stream's ``messages`` (consumed up to there)."""
    head = []
    for t, message in messages:
        if t >= HEAD_S:
            break
        head.append((t, message))
    return HeadStart(seed, head)


def after_head(messages: Iterator[Timed], head: HeadStart, key: str) -> Iterator[Timed]:
    """``messages`` (the model's stream, from its start) past the kept ``head``, checked on the
    way. A stream that does not begin with the head drops the kept file and goes on from the
    head's end: the notes the head left sounding end there, and the model's own messages from
    then on follow (those it made for the time the head played are not played)."""
    for i, (t, message) in enumerate(head.messages):
        made = next(messages, None)
        if made is None or abs(made[0] - t) > 1e-5 or made[1].bytes() != message.bytes():
            log.warning("the kept start of this stream differs from the model's at message "
                        "%d; dropped it, the model goes on after it", i)
            _file(key, head.seed).unlink(missing_ok=True)
            end = head.messages[-1][0]
            later = itertools.dropwhile(lambda timed: timed[0] < end, messages)
            return itertools.chain(_ending(head.messages, end), later)
    return messages


def _ending(messages: list[Timed], at: float) -> list[Timed]:
    """Note-offs at ``at`` for the notes ``messages`` leave sounding, and the sustain pedal up
    where they leave it down."""
    sounding: dict[tuple[int, int], bool] = {}
    pedal: dict[int, bool] = {}
    for _, m in messages:
        if m.type == "note_on" and m.velocity:
            sounding[(m.channel, m.note)] = True
        elif m.type in ("note_on", "note_off"):
            sounding.pop((m.channel, m.note), None)
        elif m.type == "control_change" and m.control == 64:
            pedal[m.channel] = m.value >= 64
    return ([(at, mido.Message("note_off", channel=c, note=n)) for c, n in sounding]
            + [(at, mido.Message("control_change", channel=c, control=64, value=0))
               for c, down in pedal.items() if down])


__all__ = ["HEAD_S", "HeadStart", "after_head", "has_headstart", "head_of",
           "headstart_dir", "plain_options", "read_headstart", "settings_key",
           "write_headstart"]
