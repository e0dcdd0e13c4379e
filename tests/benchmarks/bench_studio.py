"""The studio's goal: from a click on Generate to music playing in the page, for 10 s of piano.

    python tests/benchmarks/bench_studio.py [--runs 5] [--seconds 10]

Starts ``melodia studio`` and a headless Chromium (as ``tests/studio`` does), loads the page,
sets ``--seconds``, clicks Generate and measures, in the page's own clock, the time from the
click to the ``playing`` event of its audio element with ``currentTime`` moving (the MIDI made,
rendered by FluidSynth, fetched and started). Goal: under 3 s. Also printed: the server's own
time for the job (generation and rendering).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.studio.conftest import CHROMEDRIVER, CHROMIUM, Server, _first

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seconds", default="10")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp())
    server = Server(root)
    options = webdriver.ChromeOptions()
    options.binary_location = _first(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={root / 'c'}"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(_first(CHROMEDRIVER)), options=options)
    times, jobs = [], []
    try:
        for run in range(args.runs):
            browser.get(server.url)
            WebDriverWait(browser, 30).until(
                lambda d: len(Select(d.find_element(By.ID, "model")).options) >= 2)
            Select(browser.find_element(By.ID, "model")).select_by_value("piano")
            field = browser.find_element(By.ID, "seconds")
            field.clear()
            field.send_keys(args.seconds)
            browser.execute_script(
                "window.__t = null; const a = document.getElementById('audio');"
                "a.addEventListener('timeupdate', () => { if (window.__t === null && "
                "a.currentTime > 0) window.__t = performance.now() - window.__click; });"
                "document.getElementById('go').addEventListener('click', "
                "() => { window.__click = performance.now(); }, { capture: true });")
            browser.find_element(By.ID, "go").click()
            WebDriverWait(browser, 60).until(lambda d: d.execute_script("return window.__t"))
            ms = browser.execute_script("return window.__t")
            href = browser.find_element(By.ID, "download-mid").get_attribute("href")
            job = server.call(f"/api/jobs/{href.rsplit('/', 1)[1].split('.')[0]}")[1]
            times.append(ms / 1000)
            jobs.append(job["elapsed"])
            print(f"run {run + 1}: music playing {ms / 1000:.2f} s after the click "
                  f"(server job {job['elapsed']:.2f} s: {job['events']} events)", flush=True)
    finally:
        browser.quit()
        server.stop()
    print(f"\n{args.seconds} s of piano, {len(times)} runs: click -> playing median "
          f"{statistics.median(times):.2f} s, worst {max(times):.2f} s (goal < 3 s); server job "
          f"median {statistics.median(jobs):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
