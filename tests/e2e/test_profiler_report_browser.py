"""The profiler report as a user sees it: opened offline in headless Chromium.

The page is the unit test's (a real tiny training run plus synthetic hosts); here it must
actually draw: Plotly's SVGs in the DOM after its scripts ran, and a screenshot that is
not blank. The screenshot is kept in ``$KENNEL_TEST_ARTIFACTS`` when set (CI uploads it).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from PIL import Image
from tests._browser import BrowserError, chromium_path, render
from tests.unit.debugger.test_profiler_report import CHARTS, SECTIONS, build_report

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 1400, 4400


def artifacts_dir(tmp_path: Path) -> Path:
    configured = os.environ.get("KENNEL_TEST_ARTIFACTS")
    folder = Path(configured) if configured else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_report_draws_every_chart_offline(tmp_path: Path) -> None:
    if chromium_path() is None:
        pytest.skip("no Chromium: run scripts/install-browser (CI installs it)")
    page, _ = build_report(tmp_path / "debug")
    html_path = tmp_path / "profiler-report.html"
    html_path.write_text(page, encoding="utf-8")
    screenshot = artifacts_dir(tmp_path) / "profiler-report.png"

    started = time.perf_counter()
    dom = render(html_path, screenshot, width=WIDTH, height=HEIGHT)
    print(f"\nscreenshot: {screenshot} ({time.perf_counter() - started:.1f} s in Chromium)")

    # Each chart's div holds its drawn plot: Plotly adds 'main-svg' SVGs (2 or more per
    # chart) only once newPlot ran, i.e. plotly.js loaded from the page itself.
    drawn = re.findall(r'<div[^>]*class="[^"]*js-plotly-plot', dom)
    assert len(drawn) == CHARTS, f"{len(drawn)} of {CHARTS} charts drawn"
    assert dom.count('class="main-svg"') >= CHARTS
    assert dom.count('class="heatmaplayer') >= 1 and dom.count('class="trace bars"') >= 2
    for title in SECTIONS:
        assert f">{title}</h2>" in dom

    assert screenshot.stat().st_size > 50_000
    with Image.open(screenshot) as image:
        assert image.size == (WIDTH, HEIGHT)
        small = image.convert("RGB").resize((WIDTH // 4, HEIGHT // 4))
        colours = small.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 200, "the page looks blank"
        # Not mostly white: charts' lines, bars and the heatmap cover a fair share.
        white = sum(n for n, c in colours if isinstance(c, tuple) and min(c) >= 245)
        assert white < 0.95 * small.width * small.height


def fake_browser(tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fake-chromium"
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(0o755)
    monkeypatch.setenv("KENNEL_CHROMIUM", str(path))
    page = tmp_path / "page.html"
    page.write_text("<p>hello</p>", encoding="utf-8")
    return page


def test_a_failing_browser_is_reported_with_its_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = fake_browser(tmp_path, "echo 'Missing X server or $DISPLAY' >&2\nexit 3\n", monkeypatch)
    with pytest.raises(BrowserError, match=r"exited with 3(?s:.*)Missing X server"):
        render(page, tmp_path / "shot.png")


def test_a_hanging_browser_is_killed_with_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"echo starting >&2\nsleep 60 &\necho $! > {pid_file}\nsleep 60\n"
    page = fake_browser(tmp_path, script, monkeypatch)
    started = time.perf_counter()
    with pytest.raises(BrowserError, match=r"did not finish within 1 s(?s:.*)starting"):
        render(page, tmp_path / "shot.png", timeout=1)
    assert time.perf_counter() - started < 10
    child = Path(f"/proc/{pid_file.read_text().strip()}/status")
    deadline = time.monotonic() + 5
    while child.exists() and "zombie" not in child.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not child.exists() or "zombie" in child.read_text(), "a child outlived the timeout"
