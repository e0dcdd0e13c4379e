"""Live accompaniment through real JACK ports: entry, timing and stuck notes.

    python tests/benchmarks/bench_live_accompany.py [--runs 3]

Needs a JACK server (``jackd --no-realtime -d dummy``, as ``.ci/run`` starts one). Each run is
three processes, as in ``tests/live/test_accompany_live.py``: a player (``tests/live/player.py``)
plays the melody of a Bach chorale the band model never trained on into a JACK port, in time
with melodia's one-bar count-in; ``melodia stream --model band --accompany ... --lineup
drums,bass --tempo 120`` plays with it into another port; a receiver records what comes back.
Each run ends one way in turn: melodia's ``--seconds``, SIGINT, SIGTERM, the player quitting
(its port vanishing). Printed per run and over all: the band's first note against the player's
first note (goal: within one beat, 500 ms), melodia's send jitter p99 (goal <= 2 ms),
underruns (goal 0), notes left sounding at the receiver (goal 0), player's notes echoed (goal 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.live.test_accompany_live import TOP, _play  # noqa: E402
from tests.live.test_stream import _unended  # noqa: E402


def _figure(err: str, before: str, after: str) -> float | None:
    if before not in err:
        return None
    return float(err.split(before)[1].split(after)[0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="rounds of the four endings")
    args = p.parse_args()
    rows = []
    for r in range(args.runs):
        for how in ("time", "SIGINT", "SIGTERM", "vanish"):
            with tempfile.TemporaryDirectory() as tmp:
                code, err, got, player = _play(Path(tmp), how)
            entry = _figure(err, "the band came in ", " ms")
            p99 = _figure(err, "send jitter p99 ", " ms")
            under = _figure(err, " ms, ", " underruns")
            stuck = sum(_unended(got).values())
            echoes = sum(1 for m in got if m.type == "note_on" and m.velocity and m.channel != 9
                         and m.note >= TOP)
            rows.append((how, code, entry, p99, under, stuck, echoes, len(player["notes"])))
            print(f"run {r + 1} {how:8s} exit {code}  entry {entry} ms  jitter p99 {p99} ms  "
                  f"underruns {under}  stuck {stuck}  echoes {echoes}  "
                  f"player notes {len(player['notes'])}", flush=True)
    entries = [abs(r[2]) for r in rows if r[2] is not None]
    p99s = [r[3] for r in rows if r[3] is not None]
    print(f"\n{len(rows)} runs: |entry| max {max(entries):.0f} ms (goal <= 500), jitter p99 max "
          f"{max(p99s):.2f} ms (goal <= 2), underruns {sum(r[4] or 0 for r in rows):.0f}, "
          f"stuck notes {sum(r[5] for r in rows)}, echoes {sum(r[6] for r in rows)}, "
          f"bad exits {sum(r[1] not in (0, 130) for r in rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
