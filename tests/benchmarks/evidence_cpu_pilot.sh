#!/usr/bin/env bash
# The family comparison at a CPU pilot budget (~15 min of training each on 2 cores): an LSTM and a
# transformer on the 6 MAESTRO training performances, validation maestro_8 (the test file
# maestro_5 is not touched), then 8 x 30 s from each against maestro_8 and held-out NLL on the
# same 256-event segments. Figures: issue 20's note.
#   bash tests/benchmarks/evidence_cpu_pilot.sh [MAESTRO_DIR] [WORK_DIR]
# MAESTRO_DIR holds maestro_1..8.mid (bash data/fetch_maestro.sh fetches them; default
# data/external/maestro); WORK_DIR defaults to runs/evidence.
set -euo pipefail
src="${1:-data/external/maestro}"; work="${2:-runs/evidence}"
mkdir -p "$work/maestro" "$work/val"
cp "$src"/maestro_[1-8].mid "$work/maestro/"
cp "$src/maestro_8.mid" "$work/val/"
printf 'midi_filename,split\n' > "$work/maestro/splits.csv"
for i in 1 2 3 4 6 7; do echo "maestro_$i.mid,train" >> "$work/maestro/splits.csv"; done
printf 'maestro_5.mid,test\nmaestro_8.mid,validation\n' >> "$work/maestro/splits.csv"
melodia prepare "$work/maestro" -o "$work/maestro6" --quiet
melodia train "$work/maestro6" -o "$work/lstm-2x256" --config data/recipes/cpu_small.toml \
    --steps 4000 --eval-every 500 --quiet
melodia train "$work/maestro6" -o "$work/transformer-4x256" --config data/recipes/cpu_small.toml \
    --kind transformer --layers 4 --hidden-size 256 --embed-dim 256 --heads 4 --context 256 \
    --dropout 0.1 --lr 1e-3 --steps 1200 --eval-every 200 --quiet
for run in lstm-2x256 transformer-4x256; do
    python tests/benchmarks/eval_quality.py "$work/$run" --reference "$work/val" --num 8 \
        --seconds 30 --seed 0 --out "$work/gen-$run" --json "$work/$run.json"
    melodia evaluate "$work/$run" "$work/maestro6" --split validation --segment-events 256
done
