"""Event encodings: MIDI <-> integer event ids. No torch here, and no files except token JSON.

- ``piano``: :class:`PerformanceEncoding`, Performance RNN's 388 events (Magenta-compatible ids).
- ``band``: :class:`BandEncoding`, the same plus PROGRAM (instrument) and TEMPO events.

>>> piano = get_encoding("piano")
>>> piano.vocab.size, piano.vocab.encode_event("NOTE_ON", 60)
(388, 60)
>>> str(piano.vocab.decode_event(316))  # ten-millisecond steps: 610 ms
'TIME_SHIFT 61'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from melodia.encoding.band import BandConfig, BandEncoding
from melodia.encoding.performance import PerformanceConfig, PerformanceEncoding
from melodia.encoding.vocab import Event, EventRange, Vocabulary
from melodia.errors import EncodingError
from melodia.midi import MAX_SECONDS, to_pretty_midi

ENCODINGS: dict[str, type[PerformanceEncoding]] = {"piano": PerformanceEncoding,
                                                   "band": BandEncoding}

Encoding = PerformanceEncoding  # the common interface of all encodings


def get_encoding(name: str = "piano", config: dict[str, Any] | None = None,
                 **overrides: Any) -> PerformanceEncoding:
    """Build an encoding by name, from a config dict (as saved) and/or keyword overrides."""
    if name not in ENCODINGS:
        raise EncodingError(f"unknown encoding {name!r}; choose one of {sorted(ENCODINGS)}")
    cls = ENCODINGS[name]
    return cls(cls.config_class.from_dict({**(config or {}), **overrides}))


def encoding_from_dict(data: dict[str, Any]) -> PerformanceEncoding:
    """Inverse of ``encoding.to_dict()``: ``{"name": ..., "config": {...}}``; anything else is
    one EncodingError saying what an encoding record holds."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise EncodingError(f"an encoding record needs a name ({' or '.join(ENCODINGS)}) and a "
                            f"config, got {str(data)[:80]}")
    config = data.get("config")
    if config is not None and not isinstance(config, dict):
        raise EncodingError(f"the {data['name']} encoding's config must be a JSON object, got "
                            f"{str(config)[:80]}")
    try:
        return get_encoding(data["name"], config)
    except EncodingError:
        raise
    except (TypeError, ValueError) as err:
        raise EncodingError(f"the {data['name']} encoding's config is invalid: {err}") from None


def encode(midi, encoding: str = "piano", max_seconds: float | None = MAX_SECONDS,
           **config: Any):
    """Event ids (``np.ndarray`` of int32) for a MIDI path, bytes, ``Score`` or ``PrettyMIDI``.

    ``config`` overrides the encoding's defaults, e.g. ``encode(path, sustain=False)``; pieces
    longer than ``max_seconds`` (2 h; ``None`` = no limit) raise ``MidiReadError``.
    """
    return get_encoding(encoding, **config).encode(midi, max_seconds)


def decode(ids, encoding: str = "piano", **config: Any):
    """A ``pretty_midi.PrettyMIDI`` for any id sequence of the encoding's vocabulary."""

    return to_pretty_midi(get_encoding(encoding, **config).decode(ids))


def load_tokens(path: str | Path) -> tuple[str | None, dict[str, Any] | None, list[int]]:
    """Read ids from a ``melodia encode`` JSON, a JSON list, or whitespace-separated integers.

    Returns ``(encoding name or None, config or None, ids)``.
    """
    def no_constant(name: str):
        raise EncodingError(f"{path}: ids must be integers, not {name}")

    try:
        text = Path(path).read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError:
        raise EncodingError(f"{path}: not a text file of ids (binary data)") from None
    try:
        data = (json.loads(text, parse_constant=no_constant) if text.startswith(("{", "["))
                else text.split())
    except json.JSONDecodeError as err:
        raise EncodingError(f"{path}: not valid JSON ({err})") from None
    name = config = None
    if isinstance(data, dict):
        if "ids" not in data:
            raise EncodingError(f"{path}: a tokens JSON object needs an 'ids' list")
        name, config, data = data.get("encoding"), data.get("config"), data["ids"]
    if not isinstance(data, list):
        raise EncodingError(f"{path}: ids must be a list of integers")
    bad = [x for x in data if type(x) is not int and not (isinstance(x, str) and _is_int(x))]
    if bad:
        raise EncodingError(f"{path}: ids must be integers, not {bad[0]!r}")
    return name, config, [int(x) for x in data]


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit() and text.isascii()


__all__ = ["BandConfig", "BandEncoding", "ENCODINGS", "Encoding", "Event", "EventRange",
           "PerformanceConfig", "PerformanceEncoding", "Vocabulary", "decode", "encode",
           "encoding_from_dict",
           "get_encoding", "load_tokens"]
