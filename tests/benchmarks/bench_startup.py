"""How fast melodia starts: ``generate --seconds 1`` and ``stream``'s first note, against the bare
import of what they need, with where the time goes.

    python tests/benchmarks/bench_startup.py [--runs 5] [--json OUT.json]

Each figure is the median wall time of ``--runs`` fresh processes, all in one run so the ratios
compare like with like on this machine's load:

- ``bare import``: ``python -c "import torch, pretty_midi, mido"``;
- ``generate``: ``melodia generate --seconds 1 -o X.mid --seed 1`` (goal <= 1.3x the bare import);
- ``stream first note``: from launching ``melodia stream --api jack --virtual NAME`` to the first
  note-on a separate JACK client (tests/live/receiver.py) receives (goal <= 1.5 s). Needs a JACK
  server (``jackd -d dummy``).

``--profile`` adds one in-process run of ``generate`` split into imports, model loading, set-up,
sampling and writing (from ``-X importtime`` and timers around the library's calls).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MELODIA = [sys.executable, "-m", "melodia"]


def wall(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def first_note(runs: int) -> list[float]:
    """Seconds from launching ``melodia stream`` to the first note-on at another JACK client."""
    times = []
    for i in range(runs):
        name = f"melodia-start-{os.getpid()}-{i}"
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "got.json"
            receiver = subprocess.Popen(
                [sys.executable, str(ROOT / "tests/live/receiver.py"), "--port", name, "--out",
                 str(out), "--seconds", "20", "--count", "1", "--wait", "20"],
                stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)  # the receiver is up (imported rtmidi) before melodia starts
            start = time.perf_counter()
            stream = subprocess.Popen([*MELODIA, "stream", "--api", "jack", "--virtual", name,
                                       "--seconds", "6", "--seed", "1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            receiver.wait(40)
            stream.wait(40)
            got = json.loads(out.read_text())["messages"]
            notes = [m["time_s"] for m in got if m["bytes"][0] & 0xF0 == 0x90 and m["bytes"][2]]
            times.append(notes[0] - start if notes else float("nan"))
    return times


def profile() -> dict[str, float]:
    """One in-process ``generate --seconds 1``, split by stage."""
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import melodia.cli\n"
        "from melodia.generation import generator as g\n"
        "from melodia.model import registry as r\n"
        "t1 = time.perf_counter(); spent = {}\n"
        "def timed(name, fn):\n"
        "    def run(*a, **k):\n"
        "        s = time.perf_counter(); out = fn(*a, **k)\n"
        "        spent[name] = spent.get(name, 0) + time.perf_counter() - s; return out\n"
        "    return run\n"
        "g.load_stepper = timed('load model', g.load_stepper)\n"
        "g._start = timed('set-up (plan, controls, prime)', g._start)\n"
        "g.sample_rows = timed('sampling', g.sample_rows)\n"
        "import melodia.midi as m; from melodia.cli import make\n"
        "import tempfile, os; out = os.path.join(tempfile.mkdtemp(), 'p.mid')\n"
        "melodia.cli.main(['generate', '--seconds', '1', '-o', out, '--seed', '1'])\n"
        "t2 = time.perf_counter()\n"
        "import json, sys; print(json.dumps({'imports': t1 - t0, **spent,"
        " 'whole command': t2 - t1}))\n")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-stream", action="store_true", help="skip the JACK first-note figure")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        bare = wall([sys.executable, "-c", "import torch, pretty_midi, mido"], args.runs)
        gen = wall([*MELODIA, "generate", "--seconds", "1", "-o", f"{tmp}/x.mid", "--seed", "1"],
                   args.runs)
    figures["bare_import_s"], figures["generate_s"] = bare, gen
    ratio = statistics.median(gen) / statistics.median(bare)
    print(f"bare import of torch, pretty_midi, mido: {statistics.median(bare):.2f} s (median of "
          f"{args.runs}; {min(bare):.2f}-{max(bare):.2f})")
    print(f"melodia generate --seconds 1:            {statistics.median(gen):.2f} s "
          f"({min(gen):.2f}-{max(gen):.2f}) = {ratio:.2f}x the bare import (goal <= 1.3x)")
    figures["generate_ratio"] = ratio
    if not args.no_stream:
        notes = first_note(args.runs)
        figures["stream_first_note_s"] = notes
        print(f"melodia stream, launch to first note:   {statistics.median(notes):.2f} s "
              f"({min(notes):.2f}-{max(notes):.2f}; goal <= 1.5 s)")
    if args.profile:
        figures["profile_s"] = profile()
        for stage, seconds in figures["profile_s"].items():
            print(f"  {stage:32s} {seconds:6.2f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
