#!/usr/bin/env bash
# Issue 20's data lever for the band, at the CPU pilot budget: the same 4 x 256 transformer
# (context 256, 900 steps) trained on Freedoom alone and on Freedoom + the MMA grooves (music
# that repeats the way accompaniment does). Validation is the same 6 Freedoom files in both rows
# (the content-hash split keeps them where they were when files are added); 8 x 30 s from each
# row: bar return and 16th-grid share per group against the Freedoom files.
#   bash tests/benchmarks/evidence_band_data.sh [MMA_DIR] [WORK_DIR]
# MMA_DIR holds Debian mma's example .mid files (GPL-2+: not committed; default
# ../shared/corpus/band/mma); WORK_DIR defaults to runs/band-data. Set OMP_NUM_THREADS to share
# the machine.
set -euo pipefail
mma="${1:-../shared/corpus/band/mma}"; w="${2:-runs/band-data}"
melodia prepare data/midi/freedoom -o "$w/freedoom" --encoding band --quiet
melodia prepare data/midi/freedoom "$mma" -o "$w/freedoom+mma" --encoding band --quiet
for data in freedoom freedoom+mma; do
    melodia train "$w/$data" -o "$w/tf-$data" --config data/recipes/cpu_small.toml \
        --kind transformer --layers 4 --hidden-size 256 --embed-dim 256 --heads 4 --context 256 \
        --dropout 0.1 --lr 1e-3 --steps 900 --eval-every 300 --quiet
done
for data in freedoom freedoom+mma; do
    run="$w/tf-$data"; mkdir -p "$w/gen-$data"
    for s in 1 2 3 4 5 6 7 8; do
        melodia generate --model "$run" --seconds 30 --seed "$s" -o "$w/gen-$data/$s.mid" --force
    done
    echo "== $data: structure of 8 x 30 s against Freedoom"
    python tests/benchmarks/eval_structure.py "$w/gen-$data" data/midi/freedoom
    echo "== $data: NLL on the Freedoom validation files"
    melodia evaluate "$run" "$w/freedoom" --split validation --segment-events 256
done
