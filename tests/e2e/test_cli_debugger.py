"""The debugger and profiler as a user drives them from the CLI, on a 2-instance job,
and the report opened in headless Chromium with its charts drawn."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image
from tests._browser import chromium_path, render
from tests._server import RunningServer
from tests.e2e.test_cli import kennel
from tests.e2e.test_profiler_report_browser import artifacts_dir

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_two_instance_job_with_rules_describe_and_report_in_chromium(
    server: RunningServer, tmp_path: Path
) -> None:
    env = server.env
    kennel(env, "datasets", "make-demo", "cli-dbg-digits", "--image-size", "16")
    trained = kennel(
        env,
        "train", "--name", "cli-dbg", "--dataset", "cli-dbg-digits",
        "--instance-count", "2", "--instance-type", "ml.m5.large",
        "-H", "arch=small-cnn", "-H", "epochs=3", "-H", "image-size=16", "-H", "lr=0.05",
        "-H", "batch-size=16",
        "--rule", "exploding_tensor", "--rule", "vanishing_gradient:threshold=1e-12",
        "--rule", "LoadBalancing", "--save-interval", "5",
    )  # fmt: skip
    assert "Completed" in trained.stdout, trained.stdout
    job = json.loads(kennel(env, "jobs", "describe", "cli-dbg", "--json").stdout)
    rules = {s["rule_configuration_name"]: s for s in job["rule_evaluations"]}
    assert set(rules) == {"ExplodingTensor", "VanishingGradient", "LoadBalancing"}
    assert rules["ExplodingTensor"]["status"] == "NoIssuesFound", rules
    assert rules["VanishingGradient"]["status"] == "NoIssuesFound", rules
    assert rules["LoadBalancing"]["status"] in ("NoIssuesFound", "IssuesFound"), rules
    assert job["debugger"]["save_interval"] == 5
    human = kennel(env, "jobs", "describe", "cli-dbg").stdout
    assert "Rules" in human and "ExplodingTensor" in human and "NoIssuesFound" in human

    report = tmp_path / "cli-dbg-report.html"
    written = kennel(env, "jobs", "report", "cli-dbg", "-o", str(report))
    assert "Wrote the report" in written.stdout
    page = report.read_text()
    assert "algo-1" in page and "algo-2" in page  # both instances' data

    bad = kennel(env, "train", "--dataset", "cli-dbg-digits", "--rule", "no_such", check=False)
    assert bad.returncode == 1 and "VanishingGradient" in bad.stderr  # the known rules
    typo = kennel(env, "train", "--dataset", "cli-dbg-digits", "--rule", "overfit:nope=1",
                  "--no-wait", check=False)  # fmt: skip
    assert typo.returncode == 1 and "nope" in typo.stderr
    missing = kennel(env, "jobs", "report", "no-such-job", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr

    if chromium_path() is None:
        pytest.skip("no Chromium: run scripts/install-browser (CI installs it)")
    screenshot = artifacts_dir(tmp_path) / "two-instance-profiler-report.png"
    dom = render(report, screenshot, width=1400, height=4400)
    print(f"\nscreenshot: {screenshot}")
    drawn = re.findall(r'<div[^>]*class="[^"]*js-plotly-plot', dom)
    assert len(drawn) >= 4, f"only {len(drawn)} charts drawn"
    assert dom.count('class="main-svg"') >= len(drawn)
    with Image.open(screenshot) as image:
        colours = image.convert("RGB").resize((350, 1100)).getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 200, "the page looks blank"
