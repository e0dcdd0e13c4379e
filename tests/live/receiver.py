"""Record what a MIDI port plays: a JACK MIDI input connected to an output of another program.

    python tests/live/receiver.py --port NAME --out FILE.json [--seconds S] [--count N]
    python tests/live/receiver.py --virtual NAME --out FILE.json ...   (a port others play into)

Waits up to ``--wait`` seconds for a JACK port whose name contains NAME to appear (a virtual output
opened with melodia shows up as ``RtMidiOut Client:NAME``), connects to it, prints ``ready`` on
stdout, then records every message until ``--seconds`` have passed, ``--count`` messages arrived,
or SIGTERM/SIGINT. On exit it writes JSON::

    {"port": full port name, "messages": [{"bytes": [...], "time_s": perf_counter, "delta_s": rtmidi delta}]}
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

import rtmidi


def find_port(midi_in: rtmidi.MidiIn, name: str, wait_s: float) -> int | None:
    deadline = time.perf_counter() + wait_s
    while True:
        for index, port in enumerate(midi_in.get_ports()):
            if name in port:
                return index
        if time.perf_counter() > deadline:
            return None
        time.sleep(0.05)


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
    args = parser.parse_args(argv)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    midi_in = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="melodia-receiver")
    midi_in.ignore_types(sysex=False, timing=False, active_sense=False)
    if args.virtual is None:
        index = find_port(midi_in, args.port, args.wait)
        if index is None:
            print(f"no JACK MIDI port contains {args.port!r}: {midi_in.get_ports()}",
                  file=sys.stderr)
            return 1
        port = midi_in.get_ports()[index]
    else:
        port = args.virtual
    messages = []

    def record(event, _data) -> None:
        data, delta_s = event
        messages.append({"bytes": list(data), "time_s": time.perf_counter(), "delta_s": delta_s})
        if args.count is not None and len(messages) >= args.count:
            done.set()
        if args.stall_every and len(messages) % args.stall_every == 0:
            time.sleep(args.stall_s)  # the callback runs in JACK's process thread: cycles missed

    midi_in.set_callback(record)
    if args.virtual is None:
        midi_in.open_port(index, "in")
    else:
        midi_in.open_virtual_port(args.virtual)
    print("ready", flush=True)
    done.wait(args.seconds)
    midi_in.cancel_callback()
    midi_in.close_port()
    with open(args.out, "w") as f:
        json.dump({"port": port, "messages": messages}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
