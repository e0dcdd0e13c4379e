#!/usr/bin/env bash
# Recipe of melodia's shipped piano model (melodia/models/piano.pt): fetch the data, prepare,
# train, export fp16 weights, score on held-out data. See data/recipes/piano_default.md.
#
# Usage: bash data/recipes/train_piano_default.sh [WORK_DIR]     (default: runs/piano-default)
# Env:   STEPS (default 2000), THREADS (default 1: on a shared CPU, OpenMP threads that wait at
#        barriers for descheduled siblings slow training 10x or more; 2+ helps only when idle),
#        OUT (default melodia/models/piano.pt)
#
# Data: the 8 MAESTRO performances inside MidiTok 3.1.0's source distribution on PyPI
# (tests/MIDIs_one_track/Maestro_1..8.mid, CC BY-NC-SA 4.0), fetched by data/fetch_maestro.sh;
# they are not committed to this repository. Every file lands in the train split (hash split,
# no MAESTRO csv), so the trainer holds out the last 5% of each file for validation.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-runs/piano-default}"
steps="${STEPS:-2000}"
out="${OUT:-$root/melodia/models/piano.pt}"
export OMP_NUM_THREADS="${THREADS:-1}"
mkdir -p "$work"

if [ ! -f "$work/maestro/maestro_8.mid" ]; then
  bash "$root/data/fetch_maestro.sh" "$work/maestro"
fi
( cd "$work/maestro" && sha1sum maestro_*.mid ) > "$work/maestro.sha1"

melodia prepare "$work/maestro" -o "$work/dataset" --workers 2 --quiet

melodia train "$work/dataset" -o "$work/run" --device cpu --quiet \
  --steps "$steps" --batch-size 32 --seq-len 256 --lr 2e-3 --min-lr 1e-4 --warmup-steps 100 \
  --layers 2 --hidden-size 256 --embed-dim 256 --dropout 0.2 --tie-embeddings \
  --eval-every 250 --eval-events 0 --seed 0 --controls

python - "$work" "$out" "$steps" <<'PY'
"""Export best.pt with fp16 weights (no optimizer state) and score it on the held-out tails."""
import json, sys
from pathlib import Path

import numpy as np
import torch

from melodia.checkpoint import load_checkpoint, save_checkpoint
from melodia.corpus import TokenDataset
from melodia.dataset import holdout_tail
from melodia.evaluate import model_totals, ngram_totals
from melodia.infer import FastStepper

work, out, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
best = load_checkpoint(work / "run" / "best.pt")
save_checkpoint(out, best.model.half(), best.encoding, best.step, metrics=best.metrics,
                train_config=best.train_config,
                extra={"recipe": "data/recipes/train_piano_default.sh", "steps_run": steps,
                       "weights": "float16", "data": (work / "maestro.sha1").read_text()})
shipped = load_checkpoint(out)
data = TokenDataset(work / "dataset")
heads, tails = holdout_tail(data.sequences("train"), 0.05)
report = {"checkpoint_step": shipped.step, "parameters": shipped.model.num_parameters(),
          "file_bytes": out.stat().st_size, "heldout_events": int(sum(len(t) - 1 for t in tails))}
report["model_nll"] = model_totals(shipped.model, tails, shipped.encoding,
                                   segment_events=None).result("model").nll
for n in (1, 5):
    report[f"{n}gram_nll"] = ngram_totals(heads, tails, shipped.encoding, n,
                                          segment_events=None).result(f"{n}-gram").nll
# the fast stepper (used by `melodia generate`), fp32 and int8, fed one event at a time
from melodia.controls import compute_controls
from melodia.infer import sequence_nll
for precision in ("fp32", "int8"):
    stepper, total, count = FastStepper(shipped.model, precision), 0.0, 0
    for tail in tails:
        ids = torch.from_numpy(np.asarray(tail, dtype=np.int64))[None]
        ctrl = torch.from_numpy(compute_controls(tail, shipped.encoding))[None]
        total += sequence_nll(stepper, ids, ctrl) * (len(tail) - 1)
        count += len(tail) - 1
    report[f"stepper_{precision}_nll"] = total / count
print(json.dumps(report, indent=1))
(work / "shipped_report.json").write_text(json.dumps(report, indent=1))
PY
echo "shipped model: $out"
