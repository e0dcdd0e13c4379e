"""Event ids -> timed MIDI messages, one event at a time, for live playing.

:class:`StreamDecoder` is the streaming twin of ``encoding.decode``: it is fed the ids a model
emits (``melodia.iter_events``) and answers each with the MIDI messages that event produces,
stamped with their time in seconds since the stream started. Like the batch decoder it never
fails: ids outside the vocabulary are ignored, a note-off for a silent note is dropped, a re-struck
note is ended first, and :meth:`StreamDecoder.release` silences whatever still sounds.

::

    decoder = StreamDecoder(checkpoint.encoding)
    for event_id in melodia.iter_events("piano", seed=1):
        for time_s, message in decoder.feed(event_id):
            ...

Channels: a piano stream plays on ``channel``. In a band stream each instrument (PROGRAM event)
gets a channel the first time it appears, with a ``program_change``: drums (PROGRAM 128) channel
9 (MIDI channel 10), melodic instruments the next free channel of 0..15 (skipping 9) from
``channel`` on. A band stream's notes before any PROGRAM belong to program 0, as in the batch
decoder.
"""

from __future__ import annotations

import logging
from typing import Iterable, Iterator

import mido
import numpy as np

from melodia.encoding.events import (NOTE_OFF, NOTE_ON, PROGRAM, TEMPO, TIME_SHIFT, VELOCITY,
                                     lookup_tables)
from melodia.encoding.performance import PerformanceEncoding
from melodia.encoding.quantize import bin_to_velocity
from melodia.midi.instruments import DRUMS

log = logging.getLogger(__name__)

DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0
CHANNELS = 16
DEFAULT_VELOCITY = 64  # MIDI velocity before any VELOCITY event (as the batch decoder)
DEFAULT_QPM = 120.0  # quarter notes per minute before any TEMPO event (MIDI's default)
ALL_SOUND_OFF = 120  # control change numbers
ALL_NOTES_OFF = 123

Timed = tuple[float, mido.Message]  # (seconds since the stream start, message)


def control_off(channel: int) -> list[mido.Message]:
    """All Notes Off (CC123) then All Sound Off (CC120) for one channel."""
    return [mido.Message("control_change", channel=channel, control=ALL_NOTES_OFF, value=0),
            mido.Message("control_change", channel=channel, control=ALL_SOUND_OFF, value=0)]


class StreamDecoder:
    """Decode event ids one at a time into ``(time_s, mido.Message)`` pairs.

    Parameters
    ----------
    encoding : the model's encoding (``checkpoint.encoding``): piano or band.
    channel : MIDI channel 0..15 of a piano stream, and the first one tried for a band's melodic
        instruments (default 0).
    """

    def __init__(self, encoding: PerformanceEncoding, channel: int = 0) -> None:
        if not 0 <= channel < CHANNELS:
            raise ValueError(f"channel must be in 0..{CHANNELS - 1}, not {channel}")
        self.encoding = encoding
        self.base_channel = channel
        kinds, values = lookup_tables(encoding.vocab)
        self._kinds: list[int] = kinds.tolist()
        self._values: list[int] = values.tolist()
        bins = encoding.config.velocity_bins
        self._velocity_of_bin: list[int] = [DEFAULT_VELOCITY] + bin_to_velocity(
            np.arange(1, bins + 1), bins).tolist()
        self._band = any(r.type == "PROGRAM" for r in encoding.vocab.ranges)
        self._steps = 0
        self._velocity = DEFAULT_VELOCITY
        self._instrument = 0
        self._qpm = DEFAULT_QPM
        self._sounding: set[tuple[int, int]] = set()
        self._channel_of: dict[int, int] = {} if self._band else {0: channel}
        self._warned_bad_id = False
        self._warned_full = False

    # ------------------------------------------------------------------------- state

    @property
    def time_s(self) -> float:
        """Seconds since the stream start: the TIME_SHIFT steps fed so far / steps_per_second."""
        return self._steps / self.encoding.config.steps_per_second

    @property
    def sounding(self) -> set[tuple[int, int]]:
        """``(channel, note)`` of every note switched on and not yet off (a copy)."""
        return set(self._sounding)

    @property
    def channels(self) -> tuple[int, ...]:
        """MIDI channels (0..15) in use so far, the base channel always among them, sorted."""
        return tuple(sorted({self.base_channel, *self._channel_of.values()}))

    @property
    def instrument_channels(self) -> dict[int, int]:
        """Instrument (GM program 0..127, 128 = drums) -> its MIDI channel, as assigned so far."""
        return dict(self._channel_of)

    @property
    def qpm(self) -> float:
        """Tempo in quarter notes per minute from the last TEMPO event (120 before any)."""
        return self._qpm

    # ------------------------------------------------------------------------ decode

    def feed(self, event_id: int) -> list[Timed]:
        """The messages one event id produces, each with its time in seconds since the start.

        TIME_SHIFT, VELOCITY, PROGRAM and TEMPO produce no message of their own (a PROGRAM's
        first appearance comes with its ``program_change`` at the next note); NOTE_ON gives a
        ``note_on`` (after a ``note_off`` if that note already sounds); NOTE_OFF a ``note_off``
        when the note sounds, else nothing. Never raises: unknown ids are ignored (logged once).
        """
        index = self._index(event_id)
        if index is None:
            return []
        kind, value = self._kinds[index], self._values[index]
        if kind == TIME_SHIFT:
            self._steps += value
        elif kind == VELOCITY:
            self._velocity = self._velocity_of_bin[value]
        elif kind == PROGRAM:
            self._instrument = value
        elif kind == TEMPO:
            self._qpm = float(self.encoding.bin_to_qpm(value))
        elif kind == NOTE_ON:
            return self._note_on(value)
        elif kind == NOTE_OFF:
            return self._note_off(value)
        return []

    def release(self, at_s: float | None = None) -> list[Timed]:
        """Silence everything: a ``note_off`` for each sounding note, then CC123 (All Notes Off)
        and CC120 (All Sound Off) on every channel in use; ``at_s`` (seconds since the start)
        defaults to :attr:`time_s`. Afterwards nothing sounds; feeding may go on."""
        time_s = self.time_s if at_s is None else float(at_s)
        out = [(time_s, mido.Message("note_off", channel=c, note=n))
               for c, n in sorted(self._sounding)]
        self._sounding.clear()
        out += [(time_s, m) for c in self.channels for m in control_off(c)]
        return out

    # ---------------------------------------------------------------------- helpers

    def _index(self, event_id) -> int | None:
        try:
            index = int(event_id)
        except (TypeError, ValueError, OverflowError):
            index = -1
        if 0 <= index < len(self._kinds):
            return index
        if not self._warned_bad_id:
            log.warning("ignoring event id %r outside the vocabulary 0..%d (further ones are "
                        "ignored silently)", event_id, len(self._kinds) - 1)
            self._warned_bad_id = True
        return None

    def _note_on(self, note: int) -> list[Timed]:
        out: list[Timed] = []
        channel = self._channel(out)
        if channel is None:
            return out
        time_s = self.time_s
        if (channel, note) in self._sounding:
            out.append((time_s, mido.Message("note_off", channel=channel, note=note)))
        out.append((time_s, mido.Message("note_on", channel=channel, note=note,
                                         velocity=self._velocity)))
        self._sounding.add((channel, note))
        return out

    def _note_off(self, note: int) -> list[Timed]:
        channel = self._channel_of.get(self._instrument)
        if channel is None or (channel, note) not in self._sounding:
            return []
        self._sounding.discard((channel, note))
        return [(self.time_s, mido.Message("note_off", channel=channel, note=note))]

    def _channel(self, out: list[Timed]) -> int | None:
        """The current instrument's channel, assigned (with a program change) on first use;
        None when the 16 channels are taken (its notes are then dropped, logged once)."""
        instrument = self._instrument
        if instrument in self._channel_of:
            return self._channel_of[instrument]
        channel = DRUM_CHANNEL if instrument == DRUMS else self._free_channel()
        if channel is None or channel in self._channel_of.values():
            if not self._warned_full:
                log.warning("no free MIDI channel for instrument %d: its notes are dropped",
                            instrument)
                self._warned_full = True
            return None
        self._channel_of[instrument] = channel
        program = 0 if instrument == DRUMS else instrument
        out.append((self.time_s, mido.Message("program_change", channel=channel,
                                              program=program)))
        return channel

    def _free_channel(self) -> int | None:
        taken = set(self._channel_of.values())
        for k in range(CHANNELS):
            channel = (self.base_channel + k) % CHANNELS
            if channel != DRUM_CHANNEL and channel not in taken:
                return channel
        return None


def stream_messages(ids: Iterable[int], encoding: PerformanceEncoding,
                    channel: int = 0) -> Iterator[Timed]:
    """``(time_s, message)`` for every id of ``ids`` (lazily, so an endless generator works),
    ending with :meth:`StreamDecoder.release` once ``ids`` is exhausted."""
    decoder = StreamDecoder(encoding, channel)
    for event_id in ids:
        yield from decoder.feed(event_id)
    yield from decoder.release()


__all__ = ["DRUM_CHANNEL", "StreamDecoder", "Timed", "control_off", "stream_messages"]
