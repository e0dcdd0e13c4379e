#!/usr/bin/env bash
# Issue 20's data lever for the piano, at the CPU pilot budget: the pilot's 4 x 256 transformer
# (context 256, 1200 steps; bash tests/benchmarks/evidence_cpu_pilot.sh is the row without the
# lever) trained on the 6 MAESTRO training performances plus the 411 Bach chorales of the shared
# corpus (music21's, BSD: scores that repeat their phrases). Validation and the comparison are
# maestro_8 only (the test file maestro_5 is not touched): held-out NLL on 256-event segments and
# 8 x 30 s against maestro_8.
#   bash tests/benchmarks/evidence_piano_data.sh [MAESTRO_DIR] [CHORALES_DIR] [WORK_DIR]
set -euo pipefail
src="${1:-data/external/maestro}"; chorales="${2:-../shared/corpus/chorales}"
w="${3:-runs/piano-data}"
mkdir -p "$w/maestro" "$w/val"
cp "$src"/maestro_[1-8].mid "$w/maestro/"
cp "$src/maestro_8.mid" "$w/val/"
printf 'midi_filename,split\n' > "$w/maestro/splits.csv"
for i in 1 2 3 4 6 7; do echo "maestro_$i.mid,train" >> "$w/maestro/splits.csv"; done
printf 'maestro_5.mid,test\nmaestro_8.mid,validation\n' >> "$w/maestro/splits.csv"
melodia prepare "$w/maestro" -o "$w/maestro6" --quiet
melodia prepare "$w/maestro" "$chorales" -o "$w/maestro6+chorales" --quiet
melodia train "$w/maestro6+chorales" -o "$w/tf-chorales" --config data/recipes/cpu_small.toml \
    --kind transformer --layers 4 --hidden-size 256 --embed-dim 256 --heads 4 --context 256 \
    --dropout 0.1 --lr 1e-3 --steps 1200 --eval-every 200 --quiet
python tests/benchmarks/eval_quality.py "$w/tf-chorales" --reference "$w/val" --num 8 \
    --seconds 30 --seed 0 --out "$w/gen-tf-chorales" --json "$w/tf-chorales.json"
melodia evaluate "$w/tf-chorales" "$w/maestro6" --split validation --segment-events 256
