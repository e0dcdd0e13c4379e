"""What a late JACK listener receives: the cause of the stuck note.

    python tests/benchmarks/bench_late_listener.py [--messages 300] [--stalls 0,0.02,0.05]

Sends ``--messages`` note messages at 100 per second through RtMidi's JACK output into a separate
JACK client (tests/live/receiver.py with a virtual input) that stalls after each message, and
prints how many arrive. Stalled in a callback on JACK's process thread, the client misses cycles:
it never gets those cycles' MIDI (a lost note-off is a note left sounding). Stalled in Python while
it reads rtmidi's queue (as melodia.live.timed and the test receiver read), it loses nothing.
Needs a JACK server.
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


def received(messages: int, stall_s: float, stall_in: str = "jack") -> int:
    import rtmidi

    name = f"late-{os.getpid()}-{stall_in}-{int(stall_s * 1000)}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "got.json"
        receiver = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/live/receiver.py"), "--virtual", name, "--out",
             str(out), "--seconds", str(messages / 100 + 3), "--stall-every",
             "1" if stall_s else "0", "--stall-s", str(stall_s), "--stall-in", stall_in],
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
    for stall_in in ("jack", "python"):
        for stall in (float(s) for s in args.stalls.split(",")):
            got = received(args.messages, stall, stall_in)
            print(f"listener blocking {stall * 1000:.0f} ms per message in {stall_in:6s}: "
                  f"{got} of {args.messages} arrived", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
