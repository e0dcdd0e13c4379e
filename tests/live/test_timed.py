"""melodia.live.timed on a real JACK server: a sender process plays a message every 20 ms into
a timed input while this process holds Python's lock; the arrival times keep their spacing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from melodia.live.ports import PortError
from melodia.live.timed import open_timed_input

pytestmark = pytest.mark.usefixtures("jack_server")

SENDER = """
import sys, time, rtmidi
out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="melodia-tick-sender")
ports = out.get_ports()
out.open_port(next(i for i, p in enumerate(ports) if sys.argv[1] in p))
time.sleep(0.2)
start = time.perf_counter()
for k in range(80):
    while time.perf_counter() < start + k * 0.02:
        time.sleep(0.0005)
    out.send_message([0x90, 20 + k, 100])  # the note tells which message it is
time.sleep(0.2)
out.close_port()
"""


def test_arrival_times_keep_their_spacing_while_python_is_busy():
    name = f"melodia-timed-{time.perf_counter_ns()}"
    got: list[tuple[int, float, float]] = []
    source = open_timed_input(f"virtual:{name}", "jack", lambda m, at: got.append(
        (m.note, at, time.perf_counter())))
    try:
        sender = subprocess.Popen([sys.executable, "-c", SENDER, name])
        while not got:  # the sender's first message, then hold the lock for 0.5 s of its ticks
            time.sleep(0.001)
        switch = sys.getswitchinterval()
        sys.setswitchinterval(5.0)  # nothing else in this process runs until this loop ends
        try:
            busy = time.perf_counter()
            while time.perf_counter() < busy + 0.5:
                pass
        finally:
            sys.setswitchinterval(switch)
        assert sender.wait(30) == 0
        time.sleep(0.1)
    finally:
        source.close()
    # a cycle a busy non-realtime JACK server misses loses its MIDI: the rest must be there
    index = np.array([note - 20 for note, _, _ in got])
    assert len(got) >= 72 and (np.diff(index) > 0).all()
    stamps = np.array([at for _, at, _ in got])
    handed = np.array([when for _, _, when in got])
    assert np.diff(handed).max() > 0.3  # the stall happened: they were handed over late...
    slope, intercept = np.polyfit(index, stamps, 1)
    assert slope == pytest.approx(0.02, rel=0.02)  # ...but their times keep the 20 ms spacing
    off = np.abs(stamps - (intercept + slope * index))  # (read when handed over: up to 0.5 s)
    assert np.percentile(off, 95) < 0.012 and off.max() < 0.05
    walls = np.array([source.wall(at) for at in stamps])
    assert (walls <= handed + 1e-6).all() and np.median(handed - walls) < 0.3


def test_an_unknown_input_is_one_line_naming_the_ports():
    with pytest.raises(PortError, match="no MIDI input matching 'no-such-port-here'"):
        open_timed_input("no-such-port-here", "jack", lambda m, at: None)


def test_close_is_clean_and_idempotent():
    source = open_timed_input(f"virtual:melodia-close-{time.perf_counter_ns()}", "jack",
                              lambda m, at: None)
    reader = next(t for t in threading.enumerate() if t.name == "melodia-timed-input")
    source.close()
    source.close()
    assert source.closed and not reader.is_alive()


class _ShiftingPorts:
    """rtmidi's MidiIn as far as opening goes, where a port appears at the list's head between
    the first read and the open (another program starting): the index read first is stale."""

    def __init__(self) -> None:
        self.lists = [["a:out", "player:out"], ["new:out", "a:out", "player:out"]]
        self.reads, self.opened = 0, []

    def get_ports(self) -> list[str]:
        ports = self.lists[min(self.reads, 1)]
        self.reads += 1
        return ports

    def open_port(self, index: int, _name: str) -> None:
        self.opened.append(self.lists[1][index])  # rtmidi reads the list again: the new one

    def close_port(self) -> None:
        self.opened.pop()


def test_a_port_list_that_moves_while_opening_still_connects_the_named_port():
    """(The path itself runs for real in every live test; this one provokes the race.)"""
    from melodia.live.timed import open_named

    midi_in = _ShiftingPorts()
    assert open_named(midi_in, "player", "jack") == "player:out"
    assert midi_in.opened == ["player:out"]  # the stale index (a:out) was closed again
