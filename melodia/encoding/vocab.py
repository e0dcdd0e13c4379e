"""A vocabulary is a table of event ranges; ids, ``encode_event`` and ``decode_event`` derive from it.

Each :class:`EventRange` ``(type, min, max)`` owns ``max - min + 1`` consecutive ids, in table
order. For the piano performance table::

    NOTE_ON    0..127  -> ids   0..127
    NOTE_OFF   0..127  -> ids 128..255
    TIME_SHIFT 1..100  -> ids 256..355
    VELOCITY   1..32   -> ids 356..387

which is exactly the index layout of Magenta's ``PerformanceOneHotEncoding`` with 32 velocity bins.
"""

from __future__ import annotations

from dataclasses import dataclass

from melodia.errors import EncodingError


@dataclass(frozen=True)
class EventRange:
    """Events of one type with integer values ``min..max`` inclusive."""

    type: str
    min: int
    max: int

    def __post_init__(self) -> None:
        if self.max < self.min:
            raise ValueError(f"{self.type}: max {self.max} < min {self.min}")

    @property
    def size(self) -> int:
        return self.max - self.min + 1


@dataclass(frozen=True)
class Event:
    """One event, e.g. ``Event("NOTE_ON", 60)``."""

    type: str
    value: int

    def __str__(self) -> str:
        return f"{self.type} {self.value}"


class Vocabulary:
    """Maps events to ids and back, from a table of :class:`EventRange`."""

    def __init__(self, ranges: tuple[EventRange, ...]) -> None:
        names = [r.type for r in ranges]
        if len(set(names)) != len(names):
            raise ValueError(f"event types must be unique: {names}")
        self.ranges = ranges
        self._offsets: dict[str, int] = {}
        offset = 0
        for r in ranges:
            self._offsets[r.type] = offset
            offset += r.size
        self.size = offset

    def __len__(self) -> int:
        return self.size

    def range(self, type: str) -> EventRange:
        return self.ranges[list(self._offsets).index(type)]

    def offset(self, type: str) -> int:
        """Id of the smallest value of ``type``: ``id = offset(type) + value - range.min``."""
        return self._offsets[type]

    def encode_event(self, type: str, value: int) -> int:
        if type not in self._offsets:
            raise EncodingError(f"unknown event type {type!r}; known: {list(self._offsets)}")
        r = self.range(type)
        if not r.min <= value <= r.max:
            raise EncodingError(f"{type} value {value} outside {r.min}..{r.max}")
        return self._offsets[type] + value - r.min

    def decode_event(self, index: int) -> Event:
        if not 0 <= index < self.size:
            raise EncodingError(f"id {index} is outside the vocabulary 0..{self.size - 1}")
        for r in self.ranges:
            offset = self._offsets[r.type]
            if index < offset + r.size:
                return Event(r.type, r.min + index - offset)
        raise AssertionError("unreachable: ranges cover 0..size-1")

    def table(self) -> list[tuple[str, int, int, int]]:
        """Rows ``(type, min, max, first id)``, for documentation and golden tests."""
        return [(r.type, r.min, r.max, self._offsets[r.type]) for r in self.ranges]
