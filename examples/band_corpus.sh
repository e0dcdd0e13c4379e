#!/usr/bin/env bash
# Encode the shipped Freedoom band music with the band encoding and look at the result.
set -euo pipefail
melodia prepare data/midi/freedoom -o runs/freedoom --encoding band --workers 2
python - <<'PY'
from melodia.corpus import TokenDataset

ds = TokenDataset("runs/freedoom")
print(ds)
first = ds.files("train")[0]
print(first["path"], first["events"], "events,", first["duration_s"], "s")
print(ds.encoding.describe(ds.ids(first)[:12]))
PY
