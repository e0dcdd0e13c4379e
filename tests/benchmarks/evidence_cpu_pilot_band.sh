#!/usr/bin/env bash
# Band rows of issue 20's CPU pilot: an LSTM, a transformer and an attention RNN at about the same
# CPU budget (~12 min each on 2 cores) on the committed Freedoom corpus (hash split: 58 train,
# 6 validation files), then 8 x 30 s from each (line-up and tempo drawn by seed): bar return and
# 16th-grid share per group against the Freedoom files, and validation NLL on the same 256-event
# segments.
#   bash tests/benchmarks/evidence_cpu_pilot_band.sh [WORK_DIR]     (default runs/band-evidence)
set -euo pipefail
w="${1:-runs/band-evidence}"
melodia prepare data/midi/freedoom -o "$w/freedoom" --encoding band --quiet
melodia train "$w/freedoom" -o "$w/lstm-2x256" --config data/recipes/cpu_small.toml --steps 3000 \
    --eval-every 500 --quiet
melodia train "$w/freedoom" -o "$w/transformer-4x256" --config data/recipes/cpu_small.toml \
    --kind transformer --layers 4 --hidden-size 256 --embed-dim 256 --heads 4 --context 256 \
    --dropout 0.1 --lr 1e-3 --steps 900 --eval-every 300 --quiet
melodia train "$w/freedoom" -o "$w/attention-rnn-2x256" --config data/recipes/cpu_small.toml \
    --kind attention-rnn --context 256 --steps 3000 --eval-every 500 --quiet
for run in lstm-2x256 transformer-4x256 attention-rnn-2x256; do
    mkdir -p "$w/gen-$run"
    for s in 1 2 3 4 5 6 7 8; do
        melodia generate --model "$w/$run" --seconds 30 --seed "$s" -o "$w/gen-$run/$s.mid"
    done
    python tests/benchmarks/eval_structure.py "$w/gen-$run" data/midi/freedoom
    melodia evaluate "$w/$run" "$w/freedoom" --split validation --segment-events 256
done
