"""Encode a MIDI file into Performance RNN events, look at them, and decode them back.

    python examples/encode_decode.py data/midi/chorales/bach__bwv1.6.mxl.mid
"""

import sys
from pathlib import Path

from melodia.encoding import get_encoding
from melodia.midi import read_midi, write_midi

path = Path(sys.argv[1] if len(sys.argv) > 1 else "data/midi/chorales/bach__bwv1.6.mxl.mid")
for name in ("piano", "band"):
    enc = get_encoding(name)
    ids = enc.encode_file(path)
    print(f"{name}: {len(ids)} events from {read_midi(path).note_count} notes; first ten:")
    print("   ", ", ".join(enc.describe(ids[:10])))
    out = write_midi(enc.decode(ids), Path(f"{path.stem}.{name}.mid"))
    print(f"    decoded back to {out}")
