#!/usr/bin/env bash
# Fetch the full MAESTRO v3.0.0 MIDI release (1,276 piano performances, ~199 h; a ~57 MB zip)
# from its official home, and unpack it. Not run in CI (it needs the internet beyond PyPI/Debian).
# Licence: CC BY-NC-SA 4.0 (Hawthorne et al., "Enabling Factorized Piano Music Modeling and
# Generation with the MAESTRO Dataset", ICLR 2019): models trained on it inherit the terms.
#
# Usage: bash data/fetch_maestro_full.sh [OUT_DIR]      (default data/external)
# Then:  melodia prepare OUT_DIR/maestro-v3.0.0 -o data/maestro-v3
#        (prepare reads maestro-v3.0.0.csv beside the MIDI files: its train/validation/test
#        split is kept, so the test performances never reach training)
set -euo pipefail
out="${1:-$(dirname "$0")/external}"
url="https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0-midi.zip"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
if command -v curl >/dev/null; then
  curl -fL --retry 3 -o "$tmp/maestro.zip" "$url"
else
  python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "$url" "$tmp/maestro.zip"
fi
mkdir -p "$out"
python3 -m zipfile -e "$tmp/maestro.zip" "$out"
sha256sum "$tmp/maestro.zip" | sed "s|$tmp/||" > "$out/maestro-v3.0.0-midi.zip.sha256"
n=$(find "$out/maestro-v3.0.0" -name '*.midi' | wc -l)
echo "unpacked $n performances into $out/maestro-v3.0.0 (sha256 of the zip in $out/maestro-v3.0.0-midi.zip.sha256)"
echo "next: melodia prepare $out/maestro-v3.0.0 -o data/maestro-v3"
