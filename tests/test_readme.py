"""README.md's Python examples run as pasted, from an empty folder (not the clone)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_from_an_empty_folder(tmp_path: Path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    script = "\n".join(blocks)
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    for made in ("new.mid", "new.wav", "funk.mid", "out.mid"):
        assert (tmp_path / made).stat().st_size > 100, made
