"""Record what a MIDI port plays: a JACK MIDI input connected to an output of another program.

    python tests/live/receiver.py --port NAME --out FILE.json [--seconds S] [--count N]
    python tests/live/receiver.py --virtual NAME --out FILE.json ...   (a port others play into)

Waits up to ``--wait`` seconds for a JACK port whose name contains NAME to appear (a virtual output
opened with melodia shows up as ``RtMidiOut Client:NAME``), connects to it, prints ``ready`` on
stdout, then records every message until ``--seconds`` have passed, ``--count`` messages arrived,
or SIGTERM/SIGINT. On exit it writes JSON::

    {"port": full port name,
     "messages": [{"bytes": [...], "time_s": perf_counter, "delta_s": rtmidi delta}]}

It reads rtmidi's queue from Python, never from JACK's process thread: a Python callback there
waits for the interpreter's lock, and a listener that misses its JACK cycle on a busy machine
never gets that cycle's MIDI (tests/benchmarks/bench_late_listener.py, which asks for exactly
that with ``--stall-every``). JACK's thread stamps each message (rtmidi's delta times); a
message's ``time_s`` is its stamp put on ``perf_counter``'s axis by the smallest lag seen between
a stamp and the moment Python read it (a read can be late, never early).
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
import threading
import time

import rtmidi

from melodia.live.ports import PortError
from melodia.live.timed import open_named

POLL_S = 0.001  # how often the queue is read when empty
QUEUE = 8192  # rtmidi's queue: what it holds while Python is busy


def connect(midi_in: rtmidi.MidiIn, name: str, wait_s: float, as_name: str) -> str | None:
    """Connect ``midi_in`` to the first JACK output whose name contains ``name``, waiting up to
    ``wait_s`` for it to appear (melodia's own :func:`melodia.live.timed.open_named`, which
    checks the index rtmidi opens by); its full name, or None."""
    deadline = time.perf_counter() + wait_s
    while True:
        try:
            return open_named(midi_in, name, "jack", as_name)
        except PortError:
            if time.perf_counter() > deadline:
                return None
            time.sleep(0.02)


def arrivals(raw: list[tuple[list[int], float, float]]) -> list[float]:
    """Each message's arrival on ``perf_counter``'s axis: its JACK stamp (the running sum of
    rtmidi's deltas) plus the smallest read-minus-stamp lag of all."""
    if not raw:
        return []
    stamps = list(itertools.accumulate((delta for _, delta, _ in raw[1:]), initial=0.0))
    lag = min(read - stamp for (_, _, read), stamp in zip(raw, stamps))
    return [stamp + lag for stamp in stamps]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", default=None, help="connect to the port whose name contains this")
    parser.add_argument("--virtual", default=None,
                        help="open a virtual input port of this name instead (like a synth's)")
    parser.add_argument("--out", required=True, help="JSON file to write on exit")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--count", type=int, default=None, help="stop after this many messages")
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the port")
    parser.add_argument("--stall-every", type=int, default=0, metavar="N",
                        help="a late listener: every Nth message blocks JACK's process thread")
    parser.add_argument("--stall-s", type=float, default=0.02, help="for this long")
    parser.add_argument("--stall-in", choices=("jack", "python"), default="jack",
                        help="where a stall happens: in a callback on JACK's process thread (a "
                        "late listener), or in the Python loop that reads the queue")
    args = parser.parse_args(argv)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    midi_in = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="melodia-receiver",
                           queue_size_limit=QUEUE)
    midi_in.ignore_types(sysex=False, timing=False, active_sense=False)
    raw: list[tuple[list[int], float, float]] = []  # bytes, rtmidi delta, read at

    def record(event, _data) -> None:  # --stall-in jack only: a late listener, on purpose
        raw.append((list(event[0]), event[1], time.perf_counter()))
        if len(raw) % args.stall_every == 0:
            time.sleep(args.stall_s)  # the callback runs in JACK's process thread: cycles missed

    in_jack = bool(args.stall_every) and args.stall_in == "jack"
    if in_jack:
        midi_in.set_callback(record)
    if args.virtual is not None:
        midi_in.open_virtual_port(port := args.virtual)
    elif (port := connect(midi_in, args.port, args.wait, "in")) is None:
        print(f"no JACK MIDI port contains {args.port!r}: {midi_in.get_ports()}",
              file=sys.stderr)
        return 1
    print("ready", flush=True)
    deadline = None if args.seconds is None else time.perf_counter() + args.seconds

    def wanted() -> bool:
        return args.count is None or len(raw) < args.count

    while wanted() and not done.is_set() and (deadline is None or time.perf_counter() < deadline):
        got = None if in_jack else midi_in.get_message()
        if got is None:
            done.wait(POLL_S)
            continue
        raw.append((list(got[0]), got[1], time.perf_counter()))
        if args.stall_every and len(raw) % args.stall_every == 0:
            time.sleep(args.stall_s)  # Python busy elsewhere: the queue keeps what comes
    while wanted() and not in_jack and (got := midi_in.get_message()) is not None:
        raw.append((list(got[0]), got[1], time.perf_counter()))  # what came before the stop
    if in_jack:
        midi_in.cancel_callback()
    midi_in.close_port()
    messages = [{"bytes": data, "time_s": at, "delta_s": delta}
                for (data, delta, _), at in zip(raw, arrivals(raw))]
    with open(args.out, "w") as f:
        json.dump({"port": port, "messages": messages}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
