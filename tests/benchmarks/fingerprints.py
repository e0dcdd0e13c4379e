"""Hashes of generation outputs beyond tests/test_golden.py's set, to show that a refactor changes
no music: beam search, batches, the embedding sampler, top-p, iter_events, the band's knobs,
chord and file primers (25 cases, ~45 s on 2 cores). Run it before and after a change and compare:

    python tests/benchmarks/fingerprints.py before.json     # on the old checkout
    python tests/benchmarks/fingerprints.py after.json --compare before.json
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from melodia.generation import (GenerateConfig, SamplerConfig,  # noqa: E402 (after the path)
                                generate_ids, iter_events)

MAESTRO = ROOT.parent / "shared" / "corpus" / "piano" / "maestro_1.mid"  # the shared corpus
FREEDOOM = ROOT / "data" / "midi" / "freedoom" / "doom1_D_E1M5.mid"


def h(pieces) -> str:
    joined = b"".join(np.asarray(p, np.int64).tobytes() + b"|" for p in pieces)
    return hashlib.sha256(joined).hexdigest()[:16]


def ids(model: str, primer=None, **config) -> str:
    return h(generate_ids(model, GenerateConfig(**config), primer=primer).pieces)


def fingerprints() -> dict[str, str]:
    out = {}
    for model in ("piano", "band"):
        for seed in (1, 2, 3):
            for beam, spi in ((2, 1), (3, 2)):
                sampler = SamplerConfig(beam_size=beam, steps_per_iteration=spi)
                out[f"{model} beam{beam} spi{spi} s{seed}"] = ids(model, seconds=3, seed=seed,
                                                                   sampler=sampler)
        out[f"{model} num3"] = ids(model, seconds=3, seed=4, num=3)
        out[f"{model} emb num2"] = ids(model, seconds=3, seed=5, num=2,
                                       sampler=SamplerConfig(sampler="embedding"))
        out[f"{model} events topp"] = ids(model, events=200, seed=6,
                                          sampler=SamplerConfig(top_p=0.9, temperature=0.8))
        out[f"{model} iter"] = h([list(itertools.islice(iter_events(model, seed=7), 400))])
    out["band knobs"] = ids("band", seconds=3, seed=8, style="funk", lineup="drums,bass,guitar",
                            randomness="drums=0.2,bass=0.9", instrument_temperature="guitar=1.2")
    out["piano chord"] = ids("piano", [60, 64, 67], seconds=3, seed=9, primer_seconds=2)
    out["band chord"] = ids("band", [40, 47], seconds=3, seed=9)
    out["piano file primer"] = ids("piano", MAESTRO, seconds=3, seed=10, primer_seconds=3)
    out["band file primer"] = ids("band", FREEDOOM, seconds=3, seed=10, primer_seconds=3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="JSON file to write the hashes to")
    ap.add_argument("--compare", metavar="JSON", help="hashes of another checkout to compare with")
    a = ap.parse_args()
    out = fingerprints()
    Path(a.out).write_text(json.dumps(out, indent=1))
    if not a.compare:
        print(f"{len(out)} fingerprints in {a.out}")
        return 0
    before = json.loads(Path(a.compare).read_text())
    same = [k for k in before if before[k] == out.get(k)]
    for k in before:
        print("same    " if k in same else "CHANGED ", k)
    print(f"{len(same)} of {len(before)} identical")
    return 0 if len(same) == len(before) else 1


if __name__ == "__main__":
    sys.exit(main())
