"""Metadata that travels: absolute paths of the machine that wrote a file taken out of it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

# an absolute POSIX path inside a string: "/" not preceded by a name character, then at least
# one folder ("/root/out/run", "/work/data/x.mid"); relative paths ("runs/band2") stay
_ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:[\w.+-]+/)+[\w.+-]*")


def strip_paths(obj: Any, root: str | Path | None = None) -> Any:
    """``obj`` (JSON-like) with every absolute path made relative to ``root`` (default: the
    current directory) when it lies below it, else cut to its last component.

    >>> strip_paths({"data": "/work/corpus/a.mid", "other": "/elsewhere/b.mid"}, root="/work")
    {'data': 'corpus/a.mid', 'other': 'b.mid'}
    """
    base = Path(root if root is not None else os.getcwd()).resolve()

    def relative(match: re.Match) -> str:
        found = Path(match.group(0))
        try:
            return found.relative_to(base).as_posix() or "."
        except ValueError:
            return found.name or "."

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _ABSOLUTE.sub(relative, value)
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v) for v in value)
        return value

    return walk(obj)


__all__ = ["strip_paths"]
