"""A MIDI input that knows when each message arrived, however busy Python is.

A mido callback runs when Python gets round to it: while torch imports, a model loads or the
band generates, the interpreter's lock can be held for tens or hundreds of milliseconds, and a
``perf_counter`` read in the callback says the message came that much later than it did. Beat
clock measured that way runs slow (a 100 BPM clock measured at 80 on a busy machine), and a
player's note lands late in the band's stream.

:class:`TimedInput` reads python-rtmidi's queue from a thread of its own instead. The MIDI
system's thread stamps every message on arrival (rtmidi's delta times) without Python's lock,
so the stamps keep their spacing through any stall. The stamps' own origin is unknown; the
input relates them to ``perf_counter`` by the smallest lag seen between a message's stamp and
the moment it was read (a read can be late, never early), over the last :data:`LAG_WINDOW`
messages. Times handed out are on the stamps' axis (:meth:`TimedInput.clock` reads it now);
:meth:`TimedInput.wall` turns one into ``perf_counter`` time.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from melodia.live.ports import (APIS, PortError, _check_api, _find, _keep, _quiet_stderr,
                                _rtmidi)

log = logging.getLogger(__name__)

POLL_S = 0.001  # how often the reader looks at rtmidi's queue when it is empty
QUEUE = 4096  # rtmidi's queue: 40 s of beat clock at 100 BPM if the reader stalls that long
LAG_WINDOW = 512  # messages the stamp-to-perf_counter lag is the smallest over
ACTIVE_SENSING = 0xFE


class TimedInput:
    """An open MIDI input calling ``callback(message, at)`` from a reader thread, ``at`` the
    message's arrival on :meth:`clock`'s axis (see the module's text). Close it when done."""

    def __init__(self, midi_in, name: str, callback: Callable) -> None:
        self._in, self.name, self._callback = midi_in, name, callback
        self._stamp = 0.0  # the latest message's arrival on the stamps' axis
        self._lags: collections.deque[float] = collections.deque(maxlen=LAG_WINDOW)
        self._lag: float | None = None  # perf_counter minus stamp; None before the first message
        self._done = threading.Event()
        self.closed = False
        self._thread = threading.Thread(target=self._read, name="melodia-timed-input",
                                        daemon=True)
        self._thread.start()

    def _read(self) -> None:
        import mido

        while not self._done.is_set():
            got = self._in.get_message()
            if got is None:
                self._done.wait(POLL_S)
                continue
            data, delta_s = got
            read_at = time.perf_counter()
            self._stamp += delta_s if self._lag is not None else 0.0
            self._lags.append(read_at - self._stamp)
            self._lag = min(self._lags)
            if not data or data[0] == ACTIVE_SENSING:
                continue
            try:
                message = mido.Message.from_bytes(data)
            except (ValueError, TypeError):
                log.info("skipped a malformed MIDI message on %r: %s", self.name, list(data)[:8])
                continue
            self._callback(message, self._stamp)

    def clock(self) -> float:
        """Now, on the stamps' axis (``perf_counter`` until the first message arrives)."""
        lag = self._lag
        return time.perf_counter() - (lag or 0.0)

    def wall(self, at: float) -> float:
        """The ``perf_counter`` time of ``at`` (a time on the stamps' axis)."""
        return at + (self._lag or 0.0)

    def close(self) -> None:
        if self.closed:
            return
        self._done.set()
        self._thread.join(1.0)
        self._in.close_port()
        self._in.delete()
        self.closed = True


def open_named(midi_in, name: str, api: str, as_name: str = "in", tries: int = 5) -> str:
    """Connect ``midi_in`` (an rtmidi input) to the input ``name`` finds (as ``as_name``); the
    port's full name, PortError if there is none. rtmidi opens by an index into a list it reads
    again, and a port that comes or goes in between moves the index: the list is read once more
    after opening, and a changed one means close and try again."""
    for _ in range(tries):
        names = midi_in.get_ports()
        opened = _find(names, name, "input", api)
        index = names.index(opened)
        midi_in.open_port(index, as_name)
        if midi_in.get_ports()[:index + 1] == names[:index + 1]:
            return opened
        midi_in.close_port()
    raise PortError(f"the MIDI inputs kept changing while opening {name!r} ({api})")


def open_timed_input(name: str, api: str | None, callback: Callable) -> TimedInput:
    """Open the input a user named (``virtual:NAME``: a virtual input called NAME; else the
    existing input port it names, or the first whose name contains it) as a
    :class:`TimedInput`."""
    api = _check_api(api)
    rtmidi = _rtmidi()
    virtual = name[len("virtual:"):] if name.startswith("virtual:") else None
    with _quiet_stderr():
        midi_in = rtmidi.MidiIn(rtapi=getattr(rtmidi, f"API_{APIS[api]}"), name="melodia",
                                queue_size_limit=QUEUE)
    midi_in.ignore_types(sysex=False, timing=False, active_sense=False)  # (each one's delta counts)
    try:
        if virtual is not None:
            midi_in.open_virtual_port(virtual)
            opened = virtual
        else:
            opened = open_named(midi_in, name, api)
    except PortError:
        midi_in.delete()
        raise
    except (OSError, RuntimeError, rtmidi.RtMidiError) as err:
        midi_in.delete()
        raise PortError(f"cannot open MIDI input {name!r} ({api}): {err}") from err
    timed = TimedInput(midi_in, opened, callback)
    _keep(timed)
    log.info("opened MIDI input %r (%s%s)", opened, api, ", virtual" if virtual else "")
    return timed


__all__ = ["TimedInput", "open_named", "open_timed_input"]
