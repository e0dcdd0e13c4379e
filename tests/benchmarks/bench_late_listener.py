"""What a late JACK listener receives: the cause of the stuck note.

    python tests/benchmarks/bench_late_listener.py [--messages 300] [--stalls 0,0.02,0.05]

Sends ``--messages`` note messages at 100 per second through RtMidi's JACK output into a separate
JACK client (tests/live/receiver.py with a virtual input) whose callback blocks for each stall
(it runs in JACK's process thread, so the client misses cycles), and prints how many arrive. A
client that misses a cycle never gets that cycle's MIDI: a lost note-off is a note left
sounding. Needs a JACK server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def received(messages: int, stall_s: float) -> int:
    import rtmidi

    name = f"late-{os.getpid()}-{int(stall_s * 1000)}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "got.json"
        receiver = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/live/receiver.py"), "--virtual", name, "--out",
             str(out), "--seconds", str(messages / 100 + 3), "--stall-every",
             "1" if stall_s else "0", "--stall-s", str(stall_s)],
            stdout=subprocess.PIPE, text=True)
        assert receiver.stdout.readline().strip() == "ready"
        port = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="late-sender")
        port.open_port(next(i for i, p in enumerate(port.get_ports()) if name in p))
        time.sleep(0.2)
        for k in range(messages):
            pitch = 60 + (k // 2) % 12
            port.send_message([0x90, pitch, 64] if k % 2 == 0 else [0x80, pitch, 0])
            time.sleep(0.01)
        receiver.wait(messages / 100 + 30)
        port.close_port()
        return len(json.loads(out.read_text())["messages"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--stalls", default="0,0.02,0.05", help="seconds each callback blocks")
    args = p.parse_args(argv)
    for stall in (float(s) for s in args.stalls.split(",")):
        got = received(args.messages, stall)
        print(f"listener blocking {stall * 1000:.0f} ms per message: {got} of {args.messages} "
              f"arrived", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
