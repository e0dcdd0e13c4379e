#!/usr/bin/env bash
# Fetch the MMA (Musical MIDI Accompaniment) example grooves from Debian (GPL-2+): not committed.
# Usage: bash data/fetch_mma.sh [OUT_DIR]   (default data/external/mma)
set -euo pipefail
out="${1:-$(dirname "$0")/external/mma}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download mma >/dev/null && dpkg-deb -x mma_*.deb root)
mkdir -p "$out"
find "$tmp/root" -iname '*.mid' -exec cp {} "$out/" \;
echo "wrote $(ls "$out" | wc -l) MMA MIDI files to $out"
