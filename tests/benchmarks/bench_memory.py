"""Speed of batch-1 generation with the piece's short-term model on (issue 34's bar: >= 1,000
events/s on this 2-core CPU, and events 10,000-11,000 as fast as events 1,000-2,000, within 10%:
the memory's cost per event must not grow with the piece).

    python tests/benchmarks/bench_memory.py [--model piano] [--events 11000] [--memory 0 1]

For each ``--memory`` level, in one process and one after the other: ``melodia.iter_events``
(what ``stream`` plays; top-p and grammar as a user gets them) for ``--events`` events with one
thread, timed per 1,000 events. Prints events/s for events 1,000-2,000, 10,000-11,000 and all.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def timed(model: str, memory: float, events: int, seed: int) -> list[float]:
    """Seconds taken by each 1,000 events of one stream."""
    from melodia.generation.config import GenerateConfig
    from melodia.generation.generator import iter_events

    stream = iter_events(model, config=GenerateConfig(seed=seed, memory=memory, threads=1))
    next(stream)  # set-up and priming are not what is measured
    laps, start = [], time.perf_counter()
    for i in range(1, events + 1):
        next(stream)
        if i % 1000 == 0:
            now = time.perf_counter()
            laps.append(now - start)
            start = now
    return laps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="piano")
    p.add_argument("--events", type=int, default=11000)
    p.add_argument("--memory", type=float, nargs="+", default=[0.0, 1.0])
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    print(f"{'memory':>7} {'events 1k-2k':>13} {'events 10k-11k':>15} {'all':>9}  (events/s)")
    for memory in args.memory:
        laps = timed(args.model, memory, args.events, args.seed)
        early = 1000 / laps[1] if len(laps) > 1 else float("nan")
        late = 1000 / laps[10] if len(laps) > 10 else float("nan")
        print(f"{memory:7.2f} {early:13.0f} {late:15.0f} {1000 * len(laps) / sum(laps):9.0f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
