"""Golden outputs: SHA-256 of what the commands write, recorded before the package moved house.

Each case runs the real command line in this process (``melodia.cli.main``) and hashes the file it
wrote. ``tests/test_golden.py`` compares them with ``tests/data/golden.json``; a change in any
hash means a user would get different music from the same command.

Record anew (only when a change of output is intended, and say so in the commit):

    python tests/golden.py --write tests/data/golden.json
    python tests/golden.py --write runs/golden-shared.json --shared   # + ../shared/corpus
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "midi"
SHARED = ROOT.parent / "shared" / "corpus"
PRIMER = DATA / "chorales" / "bach__bwv1.6.mxl.mid"
SEEDS = (1, 2, 3, 4, 5)
SECONDS = "3"

# name -> generate arguments (besides --seed, --seconds and -o)
GENERATE = {
    "piano": [],
    "piano-key": ["--key", "D minor"],
    "piano-density": ["--density", "8"],
    "piano-primer": ["--primer", str(PRIMER)],
    "piano-embedding": ["--sampler", "embedding"],
    "band": ["--model", "band"],
    "band-style-lineup": ["--model", "band", "--style", "funk", "--lineup", "drums,bass,guitar",
                          "--tempo", "110"],
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(argv: list[str]) -> None:
    from melodia.cli import main

    code = main(argv)
    if code != 0:
        raise RuntimeError(f"melodia {' '.join(argv)} exited {code}")


def generate_hashes(names: list[str] | None = None, seeds=SEEDS) -> dict[str, str]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(GENERATE):
            for seed in seeds:
                path = Path(tmp) / f"{name}-{seed}.mid"
                _run(["generate", *GENERATE[name], "--seed", str(seed), "--seconds", SECONDS,
                      "-o", str(path)])
                out[f"generate/{name}/{seed}"] = _sha(path)
    return out


def corpus_files(shared: bool = False) -> list[tuple[str, Path, str]]:
    """(key, file, encoding) for the committed corpus (and ../shared/corpus when asked)."""
    found = [(f"chorales/{p.name}", p, "piano") for p in sorted((DATA / "chorales").glob("*.mid"))]
    found += [(f"freedoom/{p.name}", p, "band") for p in sorted((DATA / "freedoom").glob("*.mid"))]
    if shared:
        found += [(f"shared/{p.relative_to(SHARED)}", p, "band" if "band" in p.parts else "piano")
                  for p in sorted(SHARED.rglob("*.mid")) if "malformed" not in p.parts]
    return found


def _codec_part(files: list[tuple[str, Path, str]]) -> dict[str, str]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, path, encoding in files:
            tokens, midi = Path(tmp) / "t.json", Path(tmp) / "d.mid"
            _run(["encode", str(path), "--encoding", encoding, "-o", str(tokens)])
            _run(["decode", str(tokens), "-o", str(midi)])
            out[f"encode/{key}"] = _sha(tokens)
            out[f"decode/{key}"] = _sha(midi)
    return out


def codec_hashes(files: list[tuple[str, Path, str]], workers: int = 2) -> dict[str, str]:
    """encode -> tokens.json -> decode -> MIDI, both outputs hashed, for each file (the files
    shared among ``workers`` fresh processes: each runs the real command line)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    parts = [files[k::workers] for k in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        found = list(pool.map(_codec_part, parts))
    return {key: value for part in found for key, value in part.items()}


def evaluate_hash() -> dict[str, str]:
    """`evaluate --json` on two fixed folders of chorales (the folder paths left out)."""
    chorales = sorted((DATA / "chorales").glob("*.mid"))
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in (("a", chorales[:8]), ("b", chorales[-8:])):
            (Path(tmp) / name).mkdir()
            for f in files:
                shutil.copy(f, Path(tmp) / name / f.name)
        report = Path(tmp) / "report.json"
        from contextlib import redirect_stdout

        with report.open("w") as out, redirect_stdout(out):
            _run(["evaluate", "--generated", f"{tmp}/a", "--reference", f"{tmp}/b", "--json",
                  "--seed", "1", "--quiet"])
        data = json.loads(report.read_text())
    data.pop("generated"), data.pop("reference")
    text = json.dumps(data, sort_keys=True).encode()
    return {"evaluate/chorales": hashlib.sha256(text).hexdigest()}


def all_hashes(shared: bool = False) -> dict[str, str]:
    return {**generate_hashes(), **codec_hashes(corpus_files(shared)), **evaluate_hash()}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", type=Path, help="JSON file to write (default: print)")
    ap.add_argument("--shared", action="store_true", help="also ../shared/corpus")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    text = json.dumps(all_hashes(a.shared), indent=0, sort_keys=True) + "\n"
    if a.write:
        a.write.parent.mkdir(parents=True, exist_ok=True)
        a.write.write_text(text)
    else:
        print(text)
