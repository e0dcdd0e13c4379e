"""A real studio server (``melodia studio`` in a subprocess) and a real headless Chromium
(Debian's, driven by Selenium through Debian's chromedriver) for the studio's tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


class Server:
    """A running ``melodia studio``: its ``url``, its ``out`` folder, JSON calls to its API."""

    def __init__(self, root: Path, *extra: str) -> None:
        self.root, self.out = root, root / "out"
        self.log = root / "studio.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "melodia.cli", "studio", "--no-browser", "--out",
                 str(self.out), *extra], stderr=subprocess.PIPE, stdout=log, text=True)
        self.first_lines = ""  # what it printed up to its address (a warning, say)
        while "melodia studio at http://" not in (line := self.proc.stderr.readline()):
            self.first_lines += line
            assert line, self.first_lines + self.proc.stderr.read()
        self.url = line.split(" at ")[1].split()[0]  # the address with its token, as printed
        self.base, _, self.token = self.url.partition("/?token=")
        assert self.token, line

    def call(self, path: str, body=None, method: str | None = None, raw: bytes | None = None,
             headers: dict | None = None, token: bool = True) -> tuple[int, dict]:
        """A request as the studio's page makes it (JSON, with the token) unless told otherwise:
        ``headers`` replace the page's, ``token=False`` leaves the token out."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json"} if data is not None else {}
        if token:
            sent["X-Melodia-Token"] = self.token
        request = urllib.request.Request(self.base + path, data=data,
                                         method=method or ("POST" if data is not None else "GET"),
                                         headers={**sent, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, {"text": text.decode(errors="replace")}

    def fetch(self, path: str) -> bytes:
        request = urllib.request.Request(self.base + path,
                                         headers={"X-Melodia-Token": self.token})
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()

    def wait(self, job_id: str, timeout: float = 120.0) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            _, job = self.call(f"/api/jobs/{job_id}")
            if job["state"] not in ("queued", "running"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still running after {timeout} s")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.proc.stderr.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio")
    srv = Server(root)
    yield srv
    err = srv.stop()
    assert "Traceback" not in err, err


def _first(paths) -> str | None:
    return next((p for p in paths if os.path.exists(p)), None) or None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium. Missing, it fails the test (never a skip): `.ci/run` installs it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = _first(CHROMIUM) or shutil.which("chromium")
    driver_path = _first(CHROMEDRIVER) or shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.fail("the studio's browser tests need Chromium and its driver: "
                    "sudo apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1100,1400",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
