#!/usr/bin/env bash
# Recipe of melodia's shipped band model (melodia/weights/band.pt): build the labelled band corpus,
# prepare it, train, export. See data/recipes/band_default.md (the model card).
#
# Usage: bash data/recipes/train_band_default.sh [WORK_DIR]     (default: runs/band-default)
# Env:   DEVICE (default auto: cuda when there is one), STEPS (default 2000),
#        FILES_PER_STYLE (MMA songs per style, default 100), THREADS (CPU training threads,
#        default 1), OUT (default melodia/weights/band.pt)
#
# Needs the Debian package mma (apt-get install mma): it renders the grooves of six styles
# (GPL-2+: generated here, never committed). Freedoom's music (BSD) is data/midi/freedoom, the
# `metal` style. The shipped model was trained on one H200 (2000 steps, ~5 minutes); on a CPU the
# same recipe takes hours (STEPS=300 gives a rough model in ~40 minutes on 2 cores).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-runs/band-default}"
steps="${STEPS:-2000}"
device="${DEVICE:-auto}"
out="${OUT:-$root/melodia/weights/band.pt}"
export OMP_NUM_THREADS="${THREADS:-1}"
mkdir -p "$work"

if [ ! -f "$work/src/SHA1SUMS" ]; then
  rm -rf "$work/src"
  python3 "$root/data/band/make_corpus.py" "$work/src" --files-per-style "${FILES_PER_STYLE:-100}"
fi
# one folder per style -> the style labels; src/splits.csv holds ~10% per style out for test and
# ~5% for validation
melodia prepare "$work/src" -o "$work/band" --encoding band --labels-from-folders --workers 2 --quiet

melodia train "$work/band" -o "$work/run" --device "$device" --quiet \
  --steps "$steps" --batch-size 64 --seq-len 256 --lr 2e-3 --min-lr 1e-4 --warmup-steps 100 \
  --layers 2 --hidden-size 512 --embed-dim 256 --dropout 0.3 --transpose 5 \
  --eval-every 250 --eval-events 0 --seed 0

python "$root/data/recipes/export_band.py" "$work/run/best.pt" "$work/band" "$out" \
  --data-sha1 "$work/src/SHA1SUMS"
echo "shipped model: $out"
echo "figures: melodia evaluate $out $work/band --split test" \
  "&& python tests/benchmarks/eval_band.py $out --dataset $work/band --per-style 6"
