"""Benchmark: MIDI file -> event ids, melodia vs note_seq (Magenta) vs MidiTok MIDILike.

Run on demand (not part of the test suite), in an environment that has all three:

    python -m venv /tmp/bench && /tmp/bench/bin/pip install note_seq miditok torch==2.13.0
    /tmp/bench/bin/pip install -e .
    /tmp/bench/bin/python tests/benchmarks/bench_encoding.py [MIDI_DIR] [--corpus DIR]

MIDI_DIR defaults to the 8 MAESTRO performances (``bash data/fetch_maestro.sh`` puts them in
data/external/maestro). Each tool reads the files from disk and produces ids, sustain applied
where the tool supports it (MidiTok's MIDILike has no sustain step). Medians of several runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def default_dir() -> Path:
    for candidate in (ROOT.parent / "shared" / "corpus" / "piano", ROOT / "data/external/maestro"):
        if list(candidate.glob("maestro_*.mid")):
            return candidate
    sys.exit("no MAESTRO files: run `bash data/fetch_maestro.sh` or pass a folder")


def timed(fn, files, repeats):
    times, events = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        events = sum(len(fn(f)) for f in files)
        times.append(time.perf_counter() - start)
    return statistics.median(times), events


def melodia_encoder():
    from melodia.encoding import get_encoding

    enc = get_encoding("piano")
    return lambda path: enc.encode_file(path)


def note_seq_encoder():
    import note_seq
    from note_seq import performance_lib
    from note_seq.performance_encoder_decoder import PerformanceOneHotEncoding

    onehot = PerformanceOneHotEncoding(num_velocity_bins=32)

    def encode(path):
        ns = note_seq.midi_file_to_note_sequence(str(path))
        ns = note_seq.apply_sustain_control_changes(ns)
        quantized = note_seq.quantize_note_sequence_absolute(ns, 100)
        perf = performance_lib.Performance(quantized, num_velocity_bins=32)
        return [onehot.encode_event(e) for e in perf]

    return encode


def miditok_encoder():
    import miditok

    config = miditok.TokenizerConfig(num_velocities=32, use_sustain_pedals=False,
                                     use_programs=False)
    tokenizer = miditok.MIDILike(config)

    def encode(path):
        seqs = tokenizer(Path(path))
        seqs = seqs if isinstance(seqs, list) else [seqs]
        return [i for s in seqs for i in s.ids]

    return encode


def compare_with_note_seq(files, mel, ns) -> None:
    """Same vocabulary, so decode both streams with melodia and compare the notes.

    The order of simultaneous events differs (melodia: offsets then onsets, each by pitch;
    note_seq: by note index), so ids are compared as music, not position by position.
    """
    import numpy as np

    from melodia.encoding import get_encoding

    enc = get_encoding("piano")
    total = differ = 0
    for f in files:
        a, _ = enc.decode_quantized(mel(f))
        b, _ = enc.decode_quantized(np.array(ns(f)))
        rows_a = set(map(tuple, a.tolist()))
        rows_b = set(map(tuple, b.tolist()))
        total += len(rows_a)
        differ += len(rows_a ^ rows_b)
    print(f"decoded notes: {total:,} from melodia, {differ} differ from note_seq's decoding "
          f"(symmetric difference of the two note sets)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("midi_dir", nargs="?", type=Path)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--corpus", type=Path, help="also time `melodia prepare` on this folder")
    args = parser.parse_args()
    files = sorted((args.midi_dir or default_dir()).glob("maestro_*.mid")) or \
        sorted((args.midi_dir or default_dir()).glob("*.mid"))
    print(f"{len(files)} files from {files[0].parent}")

    rows = []
    mel = melodia_encoder()
    mel(files[0])  # warm-up: imports
    rows.append(("melodia", *timed(mel, files, args.repeats)))
    ns = note_seq_encoder()
    ns(files[0])
    rows.append(("note_seq Performance", *timed(ns, files, max(1, args.repeats // 3))))
    mt = miditok_encoder()
    mt(files[0])
    rows.append(("MidiTok MIDILike", *timed(mt, files, max(1, args.repeats // 2))))

    base = rows[0][1]
    print(f"{'tool':<22}{'seconds':>10}{'events':>11}{'events/s':>13}{'melodia speed-up':>18}")
    for name, seconds, events in rows:
        print(f"{name:<22}{seconds:>10.4f}{events:>11,}{events / seconds:>13,.0f}"
              f"{seconds / base:>17.1f}x")

    compare_with_note_seq(files, mel, ns)

    if args.corpus:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "melodia.cli", "prepare", str(args.corpus),
                            "-o", out, "--workers", "2", "--quiet"], check=True)
            seconds = time.perf_counter() - start
        n = sum(1 for p in args.corpus.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
        print(f"melodia prepare --workers 2 on {args.corpus}: {n} files in {seconds:.2f} s "
              f"({n / seconds:.0f} files/s, whole process incl. start-up)")


if __name__ == "__main__":
    main()
