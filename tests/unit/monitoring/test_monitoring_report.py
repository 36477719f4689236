"""render_report: one self-contained page with the design's sections, drawn offline."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tests._browser import chromium_path, render
from tests.unit.monitoring._monitoring_library import (
    LibrarySetup,
    inverted,
    library_setup,
    sample,
)

from kennel.monitoring._drift import Window, compare
from kennel.monitoring._quality import model_quality
from kennel.monitoring._report import SECTIONS, render_report

CHARTS = 3
"""Drift over time, class mix, confusion matrix."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> LibrarySetup:
    return library_setup(tmp_path_factory)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _page(setup: LibrarySetup, *, labelled: bool = True) -> str:
    images = inverted(sample(setup.test_images, 40, seed=0))
    result = compare(setup.baseline, Window.from_images(setup.model, images))
    classes = setup.classes
    predicted = [classes[i] for i in range(10)] * 3
    actual = [classes[(i + (i % 3 == 0)) % 10] for i in range(10)] * 3
    quality = model_quality(predicted, actual, classes) if labelled else None
    execution: dict[str, Any] = {
        "id": "exec-3",
        "status": "CompletedWithViolations",
        "started": "2026-12-03T10:00:00Z",
        "window_start": "2026-12-03T09:00:00Z",
        "window_end": "2026-12-03T10:00:00Z",
        "counts": {"records": 40, "images": 40},
        "result": {**result.to_dict(), "quality": quality},
        "metrics": {**result.metrics(), **({"accuracy": 0.6} if labelled else {})},
    }
    history = [
        {
            "id": f"exec-{i}",
            "status": "Completed",
            "started": f"2026-12-03T0{7 + i}:00:00Z",
            "metrics": {"embedding_p_value": 0.5, "embedding_mmd": 0.01, "class_mix_psi": 0.05},
        }
        for i in (1, 2)
    ]
    samples = [_png(image) for image in images[:6]] + [b"not an image"]
    return render_report(
        endpoint="digits<&>",
        execution=execution,
        history=history,
        baseline=setup.baseline,
        samples=samples,
    )


def test_the_page_is_self_contained(setup: LibrarySetup) -> None:
    page = _page(setup)
    assert page.startswith("<!DOCTYPE html>")
    # No script, style or font fetched from anywhere: plotly.js is inlined once.
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=", page)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page)
    assert page.count("<script>/**\n* plotly.js v") == 1
    assert page.count("Plotly.newPlot(") == CHARTS
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 6
    assert "digits&lt;&amp;&gt;" in page and "digits<&>" not in page


def test_the_page_has_the_designed_sections(setup: LibrarySetup) -> None:
    page = _page(setup)
    titles = re.findall(r"<h2 id=\"[^\"]+\">([^<]+)</h2>", page)
    assert titles == [t.replace("&", "&amp;") for t in SECTIONS]
    assert "Live accuracy <b>0.6</b> on 30 labelled predictions" in page
    assert "drifted: brightness" in page
    assert page.count('class="badge violated"') >= 2


def test_without_labels_the_page_says_how_to_send_them(setup: LibrarySetup) -> None:
    page = _page(setup, labelled=False)
    assert "No ground truth joined" in page and "kennel endpoints labels" in page


def test_the_page_draws_offline_in_chromium(setup: LibrarySetup, tmp_path: Path) -> None:
    if chromium_path() is None:
        pytest.skip("no Chromium: run scripts/install-browser (CI installs it)")
    html_path = tmp_path / "report.html"
    html_path.write_text(_page(setup), encoding="utf-8")
    dom = render(html_path, tmp_path / "report.png", width=1200, height=3000)
    drawn = re.findall(r'<div[^>]*class="[^"]*js-plotly-plot', dom)
    assert len(drawn) == CHARTS, f"{len(drawn)} of {CHARTS} charts drawn"
    assert dom.count('class="main-svg"') >= CHARTS
    assert dom.count('class="heatmaplayer') == 1 and dom.count('class="trace bars"') >= 3
