"""Only the musician drives the studio: real HTTP requests against a running server from
another site (Origin), under another name (Host: DNS rebinding), without the token, as a
browser's simple requests (text/plain, forms), and 300 jobs at once; the page's own address
works, and another address to listen on needs --allow-remote."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

from melodia.cli.studio.door import Door
from melodia.cli.studio.jobs import MAX_WAITING
from tests.studio.conftest import Server

EVIL = {"Origin": "http://evil.example"}
LONG = {"command": "generate", "model": "piano", "settings": {"seconds": "3000"}}


def _jobs(server) -> int:
    return len(server.call("/api/history")[1])


def test_requests_from_another_site_are_refused(server):
    before = _jobs(server)
    port = server.base.rsplit(":", 1)[1]
    for origin in ("http://evil.example", "null", f"http://evil.example:{port}",
                   "http://127.0.0.1:1"):
        code, answer = server.call("/api/jobs", LONG, headers={"Origin": origin})
        assert code == 403 and "another page" in answer["error"], (origin, answer)
    code, answer = server.call("/api/upload", raw=b"MThd", headers={
        **EVIL, "Content-Type": "application/octet-stream"})
    assert code == 403
    assert _jobs(server) == before  # nothing was queued
    code, job = server.call("/api/jobs", {"command": "generate", "model": "piano", "settings": {
        "seconds": "1"}}, headers={"Origin": server.base})  # the page's own origin
    assert code == 200
    code, answer = server.call(f"/api/jobs/{job['id']}/cancel", method="POST", raw=b"",
                               headers=EVIL)
    assert code == 403
    assert server.wait(job["id"])["state"] == "done"  # the foreign cancel did nothing


def test_a_simple_request_a_browser_sends_without_asking_is_refused(server):
    before = _jobs(server)
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        code, answer = server.call("/api/jobs", LONG, headers={"Content-Type": kind})
        assert code == 415 and "JSON" in answer["error"], (kind, answer)
        code, answer = server.call("/api/upload", raw=b"MThd", headers={"Content-Type": kind})
        assert code == 415, (kind, answer)
        code, _ = server.call("/api/jobs", LONG, headers={"Content-Type": kind}, token=False)
        assert code == 403
    assert _jobs(server) == before


def test_another_host_name_is_refused(server):
    port = server.base.rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
        for path, body in (("/api/history", None), ("/api/jobs", LONG), ("/", None)):
            code, answer = server.call(path, body, headers={"Host": host})
            assert code == 403, (host, path, answer)
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        assert server.call("/api/history", headers={"Host": host})[0] == 200


def test_without_the_token_only_the_page_files_answer(server):
    done = server.call("/api/history")[1]
    paths = ["/api/history", "/api/options", "/", "/api/jobs/0001-generate"]
    paths += [job["midi"] for job in done if job["midi"]][:1]
    for path in paths:
        code, answer = server.call(path, token=False)
        assert code == 403 and "token" in str(answer), (path, answer)
        code, _ = server.call(path, token=False, headers={"X-Melodia-Token": "guess"})
        assert code == 403
    assert server.call("/api/jobs", LONG, token=False)[0] == 403
    with urllib.request.urlopen(server.base + "/static/studio.js", timeout=30) as response:
        assert response.status == 200
    # the printed address: a cookie for this port's studio, then the page (with its token)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(server.url, timeout=30) as response:
        page = response.read().decode()
        assert response.url == server.base + "/" and "token=" not in response.url
    assert f'content="{server.token}"' in page
    with opener.open(server.base + "/api/history", timeout=30) as response:
        assert response.status == 200
    try:
        opener.open(urllib.request.Request(server.base + "/api/history",
                                           headers={"Host": "evil.example"}), timeout=30)
        raise AssertionError("a foreign Host passed with the cookie")
    except urllib.error.HTTPError as err:
        assert err.code == 403


def test_the_queue_is_capped_in_one_line(server):
    ids = []
    for _ in range(MAX_WAITING + 1):  # one runs, MAX_WAITING wait
        code, job = server.call("/api/jobs", LONG)
        assert code == 200, job
        ids.append(job["id"])
    for _ in range(3):
        code, answer = server.call("/api/jobs", LONG)
        assert code == 429 and "waiting already" in answer["error"]
        assert "\n" not in answer["error"]
    for job_id in reversed(ids):
        server.call(f"/api/jobs/{job_id}/cancel", method="POST", raw=b"")
    assert all(server.wait(job_id)["state"] == "cancelled" for job_id in ids)
    code, job = server.call("/api/jobs", {"command": "generate", "model": "piano",
                                          "settings": {"seconds": "1"}})
    assert code == 200 and server.wait(job["id"])["state"] == "done"  # the musician's own


def test_listening_beyond_this_computer_needs_allow_remote(tmp_path):
    refused = subprocess.run([sys.executable, "-m", "melodia.cli", "studio", "--no-browser",
                              "--host", "0.0.0.0", "--out", str(tmp_path / "a")],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").glob("*.json"))
    server = Server(tmp_path, "--host", "0.0.0.0", "--allow-remote")
    try:
        assert "warning: listening on 0.0.0.0" in server.first_lines
        port = server.base.rsplit(":", 1)[1]
        server.base = f"http://127.0.0.1:{port}"
        assert server.call("/api/history")[0] == 200
        assert server.call("/api/history", token=False)[0] == 403
        assert server.call("/api/history", headers={"Host": f"evil.example:{port}"})[0] == 403
    finally:
        assert "Traceback" not in server.stop()


def test_door_names_and_origins():
    door = Door.for_host("127.0.0.1", 8765)
    assert door.host_ok("127.0.0.1:8765") and door.host_ok("[::1]:8765")
    assert not door.host_ok("192.168.1.5:8765") and not door.host_ok("")
    assert door.origin_ok("http://localhost:8765") and not door.origin_ok("http://localhost:1")
    assert not door.origin_ok("https://localhost:8765") and not door.origin_ok("null")
    remote = Door.for_host("0.0.0.0", 8765)
    assert remote.host_ok("192.168.1.5:8765") and not remote.host_ok("evil.example:8765")
    assert door.token != remote.token and len(door.token) >= 24
