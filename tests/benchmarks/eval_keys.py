"""Does the key asked for come out? ``--key K`` pieces, read back by music21's key analysis.

For each key (as a user spells it: ``E- major`` is music21's own spelling), ``--seeds`` pieces of
``--seconds`` are written by ``melodia generate --key K`` and parsed by music21
(``converter.parse(path).analyze('key')``, the Krumhansl-Schmuckler estimate music21 prints). A
piece counts when music21's tonic pitch class and mode are the asked key's. Run on demand::

    python tests/benchmarks/eval_keys.py                        # the shipped piano model
    python tests/benchmarks/eval_keys.py --keys 'D minor,E- major,A minor,G major' --seeds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def check(model: str, keys: list[str], seeds: int, seconds: float) -> dict:
    import music21

    from melodia.cli import main as melodia
    from melodia.features.keys import parse_key

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in keys:
            asked = parse_key(key)
            found = []
            for seed in range(1, seeds + 1):
                path = Path(tmp) / f"{key.replace(' ', '_')}-{seed}.mid"
                code = melodia(["generate", "--model", model, "--key", key, "--seed", str(seed),
                                "--seconds", str(seconds), "-o", str(path)])
                if code:
                    raise SystemExit(f"melodia generate --key {key!r} failed ({code})")
                k = music21.converter.parse(str(path)).analyze("key")
                found.append({"seed": seed, "music21": str(k),
                              "match": (k.tonic.pitchClass, k.mode) == asked})
            share = sum(f["match"] for f in found) / len(found)
            results[key] = {"share": share, "pieces": found}
            print(f"--key {key!r}: music21 finds it in {share:.0%} of {seeds} "
                  f"({', '.join(f['music21'] for f in found)})", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="piano")
    p.add_argument("--keys", default="D minor,E- major,A minor,G major")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    start = time.perf_counter()
    results = check(args.model, args.keys.split(","), args.seeds, args.seconds)
    total = sum(r["share"] for r in results.values()) / len(results)
    print(f"all keys: {total:.0%} (goal >= 80%); {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"keys": results, "overall": total}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
