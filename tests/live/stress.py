"""Stuck-note stress: ``stream`` stopped by real SIGINT / SIGTERM at random moments, with the CPU
starved by busy processes and, in some runs, a second listener vanishing mid-note; a separate
JACK client (tests/live/receiver.py) records what arrives and every note-on must meet its own
note-off (CC 123 at the end does not count).

    python tests/live/stress.py --runs 50 --busy 2 [--model band] [--seed 0] [--json OUT]

It runs ``stream()`` in its own main thread and signals itself (``os.kill(getpid(), ...)``), so
the signal handlers of a real ``melodia stream`` are what stops it, while the model stays loaded
between runs. Prints one line per run and exits 1 if any run left a note sounding. Needs a JACK
server; used by tests/live/test_stress.py and, with more runs, on demand.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECEIVER = ROOT / "tests" / "live" / "receiver.py"


def unended(messages: list[list[int]]) -> list[tuple[int, int]]:
    """(channel, pitch) of every note-on not followed by a note-off of its own."""
    sounding: dict[tuple[int, int], int] = {}
    for data in messages:
        if len(data) < 3:  # not a note message (program change, clock)
            continue
        kind, channel = data[0] & 0xF0, data[0] & 0x0F
        if kind == 0x90 and data[2]:
            sounding[(channel, data[1])] = sounding.get((channel, data[1]), 0) + 1
        elif kind == 0x80 or (kind == 0x90 and not data[2]):
            if sounding.get((channel, data[1])):
                sounding[(channel, data[1])] -= 1
    return [key for key, n in sounding.items() if n]


def _receiver(port: str, out: Path, stall_every: int = 0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(RECEIVER), "--port", port, "--out", str(out),
                             "--seconds", "60", "--wait", "30", "--stall-every",
                             str(stall_every)], stdout=subprocess.PIPE, text=True)


BUSY = {  # what starves the CPU: a spinning interpreter, or torch's threads multiplying
    "spin": "while True: pass",
    "torch": "import torch\ntorch.set_num_threads(2)\nx = torch.randn(768, 768)\n"
             "while True: x = torch.tanh(x @ x)",
}


def _busy(n: int, kind: str = "spin") -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BUSY[kind]]) for _ in range(n)]


class _Recorded:
    """The port ``stream`` opens, noting what it sends and when (to tell lost messages)."""

    def __init__(self, port) -> None:
        self.port, self.sent = port, []

    def send(self, message) -> None:
        self.sent.append((time.perf_counter(), message.bytes()))
        self.port.send(message)

    def close(self) -> None:
        self.port.close()


def _recording(opened: list):
    from melodia.live import ports

    def open_output(*args, **kwargs):
        opened.append(_Recorded(ports.open_output(*args, **kwargs)))
        return opened[-1]
    return open_output


def lost(sent: list[tuple[float, list[int]]], got: list[list[int]], since: float) -> int:
    """Messages sent after ``since`` (the listener was connected) that never arrived."""
    from collections import Counter

    due = Counter(tuple(b) for t, b in sent if t > since)
    return sum((due - Counter(tuple(b) for b in got)).values())


def one_run(index: int, rng: random.Random, model: str, vanish: bool, tmp: Path,
            stall_every: int = 0) -> dict:
    from melodia.generation.config import GenerateConfig
    from melodia.live import stream as stream_module
    from melodia.live.stream import StreamConfig, stream

    name = f"melodia-stress-{os.getpid()}-{index}"
    main_out, gone_out = tmp / f"{index}.json", tmp / f"{index}-gone.json"
    listener = _receiver(name, main_out, stall_every)
    other = _receiver(name, gone_out) if vanish else None
    sig = (signal.SIGINT, signal.SIGTERM)[index % 2]
    stop_at = rng.uniform(0.2, 2.5)
    config = StreamConfig(model=model, virtual=name, api="jack", seconds=30.0,
                          generate=GenerateConfig(seed=index, tempo=140.0,
                                                  lineup="drums,bass,keys" if model == "band"
                                                  else None))
    started, connected = threading.Event(), []

    def fire() -> None:
        started.wait(60)
        for proc in (listener, other):
            if proc is not None:  # both listeners connected before the music starts
                proc.stdout.readline()
        connected.append(time.perf_counter() + 0.05)  # its first JACK cycle
        time.sleep(stop_at)
        if vanish:
            other.kill()  # the second listener's port vanishes mid-stream, unannounced
            time.sleep(rng.uniform(0.05, 0.5))
        os.kill(os.getpid(), sig)

    timer = threading.Thread(target=fire, daemon=True)
    timer.start()
    began = time.perf_counter()
    started.set()
    opened: list = []
    real_open, stream_module.open_output = stream_module.open_output, _recording(opened)
    try:
        stats = stream(config)
    finally:
        stream_module.open_output = real_open
    took = time.perf_counter() - began
    timer.join(30)
    time.sleep(0.3)  # JACK hands on the last cycle's messages
    listener.send_signal(signal.SIGTERM)
    listener.wait(30)
    if other is not None:
        other.wait(30)
    got = [m["bytes"] for m in json.loads(main_out.read_text())["messages"]]
    stuck = unended(got)
    sent = opened[0].sent if opened else []
    return {"run": index, "signal": signal.Signals(sig).name, "stop_at_s": round(stop_at, 3),
            "vanish": vanish, "sent": len(sent), "notes": stats.notes, "received": len(got),
            "lost": lost(sent, got, connected[0] if connected else float("inf")),
            "stuck": stuck, "seconds": round(took, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--busy", type=int, default=2, help="busy processes starving the CPU")
    p.add_argument("--busy-kind", choices=sorted(BUSY), default="spin")
    p.add_argument("--model", default="band")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vanish-every", type=int, default=5, help="every Nth run: a listener dies")
    p.add_argument("--stall-every", type=int, default=0, metavar="N",
                   help="a late listener: every Nth message it gets blocks its JACK cycle 20 ms")
    p.add_argument("--echo-s", type=float, default=None,
                   help="the player's second note-off delay (default melodia's; 0: same cycle)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from melodia.model.registry import load_model

    load_model(args.model)  # cached: every run plays the same loaded model
    if args.echo_s is not None:
        from melodia.live import scheduler

        scheduler.ECHO_S = args.echo_s
    rng = random.Random(args.seed)
    busy = _busy(args.busy, args.busy_kind)
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                r = one_run(i, rng, args.model, i % args.vanish_every == args.vanish_every - 1,
                            Path(tmp), args.stall_every)
                results.append(r)
                print(f"run {i:2d}: {r['signal']} at {r['stop_at_s']:.2f} s"
                      f"{', a listener vanished' if r['vanish'] else ''}: sent {r['sent']}, "
                      f"received {r['received']} (lost {r['lost']}), {r['notes']} notes, "
                      f"stuck {r['stuck']}",
                      flush=True)
    finally:
        for proc in busy:
            proc.kill()
    stuck = sum(bool(r["stuck"]) for r in results)
    print(f"{len(results)} runs, {args.busy} busy processes: {stuck} with a stuck note; "
          f"{sum(r['lost'] for r in results)} of {sum(r['sent'] for r in results)} messages "
          f"lost on the way")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if stuck else 0


if __name__ == "__main__":
    raise SystemExit(main())
