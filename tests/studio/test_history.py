"""The studio's history against real servers: a restart on the same folder shows, serves and
plays everything made before, job ids never repeat (past 9999 too), a record that cannot be read
is skipped in one line, a job cut off by the studio's end is marked so, one studio per folder,
every job keeps its own copy of the file it was given, and dropped files are bounded."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pretty_midi
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from melodia.cli.studio.history import MAX_UPLOADS, bound_uploads, read_records
from tests.conftest import DATA
from tests.studio.conftest import Server

CHORALE = DATA / "chorales" / "bach__bwv10.7.mxl.mid"
OCTET = {"Content-Type": "application/octet-stream"}


def _generate(server: Server, seconds: str = "2", seed: int = 1) -> dict:
    code, job = server.call("/api/jobs", {"command": "generate", "model": "piano",
                                          "settings": {"seconds": seconds, "seed": seed}})
    assert code == 200, job
    return server.wait(job["id"])


def test_a_restart_shows_serves_and_plays_what_was_made_before(tmp_path, browser):
    first = Server(tmp_path)
    try:
        made = _generate(first)
        midi, wav = first.fetch(made["midi"]), first.fetch(made["audio"])
    finally:
        assert "Traceback" not in first.stop()
    record = json.loads((tmp_path / "out" / f"{made['id']}.json").read_text())
    assert record["state"] == "done" and record["line"] == made["line"]

    again = Server(tmp_path)
    try:
        code, jobs = again.call("/api/history")
        assert code == 200 and [j["id"] for j in jobs] == [made["id"]]
        assert jobs[0]["line"] == made["line"] and jobs[0]["state"] == "done"
        assert again.fetch(jobs[0]["midi"]) == midi and again.fetch(jobs[0]["audio"]) == wav
        after = _generate(again, seed=2)
        assert after["id"] == "0002-generate" and made["id"] == "0001-generate"
        assert (again.out / "0001-generate.mid").read_bytes() == midi  # nothing overwritten

        browser.get(again.url)
        entry = WebDriverWait(browser, 30).until(lambda d: next(
            (li for li in d.find_elements(By.CSS_SELECTOR, "#history li")
             if li.text.startswith("0001-generate done")), None))
        entry.find_element(By.CSS_SELECTOR, "button.replay").click()
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(
            "const a = document.getElementById('audio'); return a.src.endsWith("
            "'/files/0001-generate.wav') && !a.paused && a.currentTime > 0;"))
        assert browser.find_element(By.ID, "line").text == made["line"]
    finally:
        assert "Traceback" not in again.stop()


def test_ids_go_on_past_9999_and_bad_or_cut_off_records_are_handled(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    base = {"command": "generate", "settings": {"model": "piano", "seconds": "2"},
            "line": "melodia generate --model piano --seconds 2 -o X.mid", "message": "",
            "events": 10, "seconds_done": 1.0, "elapsed": 1.0, "seed": 5, "partial": False,
            "created": 1.0, "midi": False, "audio": False, "given": None, "takes": 1}
    (out / "9998-generate.json").write_text(json.dumps({**base, "id": "9998-generate",
                                                        "state": "done"}))
    (out / "9999-generate.json").write_text(json.dumps({**base, "id": "9999-generate",
                                                        "state": "running"}))
    (out / "0005-generate.json").write_text("{not json")
    (out / "0006-generate.json").write_text(json.dumps({**base, "id": "0006-generate",
                                                        "state": "done", "events": "many"}))
    server = Server(tmp_path)
    try:
        code, jobs = server.call("/api/history")
        assert [j["id"] for j in jobs] == ["9999-generate", "9998-generate"]
        assert jobs[0]["state"] == "failed" and "stopped before" in jobs[0]["message"]
        assert jobs[1]["state"] == "done" and jobs[1]["midi"] is None  # its file is not there
        made = _generate(server)
        assert made["id"] == "10000-generate" and made["state"] == "done"
        assert server.call("/api/history")[1][0]["id"] == "10000-generate"
        assert server.fetch("/files/10000-generate.mid")[:4] == b"MThd"
    finally:
        assert "Traceback" not in server.stop()
    said = server.first_lines  # printed before the address: one line per record skipped
    assert "0005-generate.json not read back" in said and "0006-generate.json" in said
    assert len(said.strip().splitlines()) == 2
    assert (out / "0005-generate.json").read_text() == "{not json"  # left as it was
    assert json.loads((out / "9999-generate.json").read_text())["state"] == "failed"
    assert [r["id"] for r in read_records(out)] == ["9998-generate", "9999-generate",
                                                     "10000-generate"]


def test_one_studio_per_folder(tmp_path):
    server = Server(tmp_path)
    try:
        second = subprocess.run([sys.executable, "-m", "melodia.cli", "studio", "--no-browser",
                                 "--out", str(server.out)], capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2 and "another melodia studio is using" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert server.call("/api/history")[0] == 200  # the first goes on
    finally:
        assert "Traceback" not in server.stop()


def test_jobs_keep_their_given_file_and_dropped_files_are_bounded(server):
    code, up = server.call("/api/upload", raw=CHORALE.read_bytes(),
                           headers={**OCTET, "X-Filename": "chorale.mid"})
    assert code == 200
    code, job = server.call("/api/jobs", {"command": "infill", "model": "band",
                                          "upload": up["id"], "settings": {"span": "2-2"}})
    assert code == 200 and job["given"] == "chorale.mid"
    given = server.out / f"{job['id']}-given.mid"
    assert given.read_bytes() == CHORALE.read_bytes()
    assert "chorale.mid" in job["line"] and str(given) not in job["line"]
    for i in range(MAX_UPLOADS + 2):  # the first drop goes, the job's copy stays
        code, _ = server.call("/api/upload", raw=CHORALE.read_bytes(),
                              headers={**OCTET, "X-Filename": f"c{i}.mid"})
        assert code == 200
    assert len(list((server.out / "uploads").glob("*.mid"))) == MAX_UPLOADS
    code, answer = server.call("/api/jobs", {"command": "infill", "model": "band",
                                             "upload": up["id"], "settings": {"span": "2-2"}})
    assert code == 400 and "no longer here" in answer["error"]
    done = server.wait(job["id"])
    assert done["state"] == "done", done
    assert given.read_bytes() == CHORALE.read_bytes()
    tracks = pretty_midi.PrettyMIDI(io.BytesIO(server.fetch(done["midi"]))).instruments
    assert len(tracks) >= 4


def test_bound_uploads_removes_the_oldest_first(tmp_path):
    import os

    for i in range(5):
        path = tmp_path / f"u{i}.mid"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
    assert bound_uploads(tmp_path, keep=3) == ["u0", "u1"]
    assert bound_uploads(tmp_path, keep=3, max_bytes=150) == ["u2", "u3"]
    assert [p.name for p in tmp_path.iterdir()] == ["u4.mid"]
