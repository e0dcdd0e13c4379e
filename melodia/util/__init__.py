"""Helpers every stage may use: atomic writes, time limits, portable metadata (no torch)."""

from melodia.util.atomic import atomic_write
from melodia.util.portable import strip_paths
from melodia.util.timelimit import TimeLimitExceeded, time_limit

__all__ = ["TimeLimitExceeded", "atomic_write", "strip_paths", "time_limit"]
