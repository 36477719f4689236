"""The profiler report from a real (tiny) training run's hook output.

Host ``algo-1`` is a real training loop with the real hook (losses, weights, gradients,
labels, step timings, an evaluation pass per epoch); ``algo-2`` is synthetic and
starved for data; both get synthetic system samples (the instance monitor is not part
of the hook). ``build_report`` is shared with the browser test.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from kennel.debugger import Trial, read_trial
from kennel.debugger._hook import Hook, HookConfig, modes
from kennel.debugger._report import (
    MAX_POINTS,
    phase_shares,
    profiler_report,
    step_stats,
    thin,
)

SECTIONS = (
    "Rules",
    "System utilisation",
    "Step time",
    "Time split by phase",
    "Training and validation loss",
    "Gradient norms per layer",
)
SLOW_STEP = 17
CHARTS = 6
"""Plotly figures in the full report: system, step time, phases, loss, scalars, gradients."""


def run_training(out_dir: Path, *, epochs: int = 3) -> None:
    """A real loop: an MLP on random 3-class data, the hook watching, one evaluation pass
    per epoch, and one step whose data loading stalls (the outlier to find)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(192, 8)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # learnable, so the loss falls
    hook = Hook(
        HookConfig(
            out_dir=out_dir,
            save_interval=5,
            collections=frozenset({"losses", "weights", "gradients", "labels"}),
        )
    )
    hook.register_module(model)
    hook.register_loss(criterion)
    step = 0
    try:
        for epoch in range(epochs):
            hook.set_mode(modes.TRAIN)
            model.train()
            for start in range(0, 160, 16):
                if step == SLOW_STEP:
                    time.sleep(0.1)  # a stalled data loader
                batch, labels = x[start : start + 16], y[start : start + 16]
                optimizer.zero_grad()
                criterion(model(batch), labels).backward()
                optimizer.step()
                step += 1
            hook.save_scalar("learning_rate", 0.1 / (epoch + 1))
            hook.set_mode(modes.EVAL)
            model.eval()
            with torch.no_grad():
                criterion(model(x[160:]), y[160:])
    finally:
        hook.close()


def write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def write_starved_host(root: Path, start: float, steps: int = 30) -> None:
    """``algo-2``: every step waits ~60 % of its time for data; step 12 stalls."""
    records = []
    t = start
    for step in range(steps):
        data = 0.03 + (0.5 if step == 12 else 0.0) + 0.001 * (step % 3)
        phases = {
            "data": data,
            "forward": 0.008,
            "backward": 0.012,
            "optimizer": 0.003,
            "hook": 0.0005,
        }
        total = sum(phases.values())
        records.append({"rank": 1, "step": step, "start": t, **phases, "total": total, "batch": 16})
        t += total
    write_lines(root / "algo-2" / "framework.jsonl", records)


def write_system(root: Path, host: str, start: float, *, samples: int, busy: float) -> None:
    write_lines(
        root / host / "system.jsonl",
        [
            {
                "t": start + 0.5 * i,
                "cpu": [busy + 10 * ((i + c) % 3) for c in range(4)],
                "proc_cpu": 3 * busy + 5 * (i % 4),
                "cpus": 4,
                "mem_pct": 20 + busy / 2 + i % 7,
                "proc_rss_mb": 400 + i,
                "read_mb_s": busy / 5 + 20 * (i % 5 == 0),
                "write_mb_s": 0.5,
            }
            for i in range(samples)
        ],
    )


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def sample_job(started: float, ended: float) -> dict[str, Any]:
    """A training job dict as ``job_to_dict`` gives it (the fields the report reads)."""
    return {
        "name": "mlp-profiled",
        "status": "Completed",
        "secondary_status": "Completed",
        "failure_reason": None,
        "instance_type": "ml.m5.xlarge",
        "instance_count": 2,
        "hyperparameters": {"lr": "0.1", "epochs": "3"},
        "status_transitions": [],
        "final_metrics": {"validation:loss": 0.61},
        "created_at": iso(started - 5),
        "training_started_at": iso(started),
        "ended_at": iso(ended),
    }


SAMPLE_RULES: list[dict[str, Any]] = [
    {
        "rule_configuration_name": "LossNotDecreasing",
        "rule": "LossNotDecreasing",
        "kind": "debugger",
        "status": "NoIssuesFound",
        "status_details": "The loss fell from 1.1 to 0.6.",
        "summary": "The training loss stops falling.",
        "advice": "Lower the learning rate.",
        "parameters": {},
        "actions": [],
        "last_modified_time": "2025-01-01T00:00:00+00:00",
    },
    {
        "rule_configuration_name": "IOBottleneck",
        "rule": "IOBottleneck",
        "kind": "profiler",
        "status": "IssuesFound",
        "status_details": "algo-2 waited for data in 61% of its step time.",
        "summary": "Steps wait for input data.",
        "advice": "Use more DataLoader workers and prefetching.",
        "parameters": {"threshold": 50},
        "actions": [],
        "last_modified_time": "2025-01-01T00:00:01+00:00",
    },
]


def build_report(root: Path) -> tuple[str, Trial]:
    """Train for real into ``root/algo-1``, add the synthetic data, render the page."""
    started = time.time()
    run_training(root / "algo-1")
    ended = time.time()
    write_starved_host(root, started)
    write_system(root, "algo-1", started, samples=40, busy=35)
    write_system(root, "algo-2", started, samples=40, busy=15)
    trial = read_trial(root)
    return profiler_report(sample_job(started, ended), trial, SAMPLE_RULES), trial


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Trial]:
    return build_report(tmp_path_factory.mktemp("debug"))


def outside_plotly_js(page: str) -> str:
    """The page without the one inlined plotly.js bundle (which names map-tile CDNs it
    only fetches for map charts)."""
    bundles = [
        m
        for m in re.finditer(r"<script[^>]*>(.*?)</script>", page, re.S)
        if len(m.group(1)) > 1_000_000
    ]
    assert len(bundles) == 1, f"plotly.js must be inlined exactly once, not {len(bundles)}"
    return page[: bundles[0].start(1)] + page[bundles[0].end(1) :]


def test_the_real_run_wrote_what_the_report_reads(report: tuple[str, Trial]) -> None:
    _, trial = report
    assert set(trial.hosts) == {"algo-1", "algo-2"}
    assert len(trial.steps("algo-1")) == 30 and trial.losses("eval")
    gradients = [r for r in trial.tensor_records() if r.get("gradients")]
    assert len(gradients) == 6 and "0.weight" in gradients[0]["gradients"]


def test_the_page_is_self_contained(report: tuple[str, Trial]) -> None:
    page, _ = report
    rest = outside_plotly_js(page)
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert "cdn." not in rest and "http://" not in rest and "https://" not in rest
    assert rest.count("Plotly.newPlot(") == CHARTS


def test_every_section_is_drawn(report: tuple[str, Trial]) -> None:
    page, _ = report
    for title in SECTIONS:
        assert f">{title}</h2>" in page
    assert 'class="nodata"' in page  # only for the GPU, which these instances lack
    assert page.count('class="nodata"') == 1 and "No GPU on these instances" in page
    assert "algo-2: data loading takes" in page  # the starved host is called out
    assert "mlp-profiled" in page and "ml.m5.xlarge &times; 2" in page


def test_the_worst_steps_table_names_the_stalls(report: tuple[str, Trial]) -> None:
    page, trial = report
    table = page[page.index("<th>largest phase</th>") :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr><td>(algo-\d)</td>\s*<td class=\"num\">(\d+)</td>", table)
    assert ("algo-2", "12") in rows and ("algo-1", str(SLOW_STEP)) in rows
    assert rows[0] == ("algo-2", "12")  # the slowest first
    assert "data loading (0.53 s)" in table


def test_issues_found_come_first_in_the_rules_table(report: tuple[str, Trial]) -> None:
    page, _ = report
    issue, quiet = page.index("<b>IOBottleneck</b>"), page.index("<b>LossNotDecreasing</b>")
    assert issue < quiet
    assert "Use more DataLoader workers and prefetching." in page
    assert "Lower the learning rate." not in page  # advice only for a rule that fired


def test_an_empty_trial_says_what_is_missing_and_how_to_get_it() -> None:
    page = profiler_report({"name": "nothing-yet", "status": "InProgress"}, Trial(), [])
    for title in SECTIONS:
        assert f">{title}</h2>" in page
    for note in (
        "No rules ran",
        "No system metrics",
        "No step timings",
        "No losses recorded",
        "No gradients saved",
    ):
        assert note in page
    assert "Plotly.newPlot" not in page and "<script" not in page


def test_missing_losses_fall_back_to_the_final_metrics() -> None:
    job = sample_job(1.7e9, 1.7e9 + 60) | {"final_metrics": {"validation:loss": 0.25}}
    page = profiler_report(job, Trial(), [])
    assert "No losses recorded" in page and "<td>validation:loss</td>" in page
    assert "1m 00s" in page


def test_step_outliers_use_a_robust_sigma_with_a_median_floor() -> None:
    regular = [{"step": i, "total": 0.100 + 0.001 * (i % 2)} for i in range(50)]
    stats = step_stats("h", [*regular, {"step": 50, "total": 0.15}, {"step": 51, "total": 0.5}])
    assert stats is not None
    assert stats.median == pytest.approx(0.1, abs=0.002)
    assert stats.threshold == pytest.approx(0.2, abs=0.003)  # 2x median beats 3 sigma here
    assert [stats.steps[i] for i in stats.outliers] == [51]
    noisy = [{"step": i, "total": 0.1 + 0.05 * (i % 5)} for i in range(50)]
    stats = step_stats("h", noisy)
    assert stats is not None and stats.threshold > 2 * stats.median and not stats.outliers


def test_phase_shares_sum_to_one() -> None:
    records = [
        {"data": 0.6, "forward": 0.2, "backward": 0.1, "optimizer": 0.05, "hook": 0.0, "total": 1.0}
    ] * 3
    shares = phase_shares(records)
    assert shares["data"] == pytest.approx(0.6)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert phase_shares([]) == {}


def test_long_series_are_thinned_but_keep_their_spikes() -> None:
    xs = list(range(100_000))
    ys = [1.0] * 100_000
    ys[54_321] = 50.0
    x, y = thin(xs, ys)
    assert len(x) <= MAX_POINTS and max(y) == 50.0 and x[0] == 0
    assert list(x) == sorted(x)


def test_a_long_job_makes_a_page_of_reasonable_size(tmp_path: Path) -> None:
    """100k steps on 2 hosts, 20k system samples each: the data adds well under 2 MB."""
    trial = Trial()
    for rank, host in enumerate(("algo-1", "algo-2")):
        steps = [
            json.dumps(
                {
                    "rank": rank,
                    "step": i,
                    "start": 1e9 + 0.05 * i,
                    "data": 0.01,
                    "forward": 0.01,
                    "backward": 0.02,
                    "optimizer": 0.005,
                    "hook": 0.0,
                    "total": 0.045 + 0.001 * (i % 7),
                }
            )
            for i in range(100_000)
        ]
        trial.add(host, "framework.jsonl", steps)
        system = [
            json.dumps(
                {
                    "t": 1e9 + i,
                    "cpu": [50, 60],
                    "proc_cpu": 90,
                    "cpus": 2,
                    "mem_pct": 40,
                    "read_mb_s": 1,
                    "write_mb_s": 0,
                }
            )
            for i in range(20_000)
        ]
        trial.add(host, "system.jsonl", system)
    losses = [json.dumps({"step": i, "mode": "train", "loss": 1 / (1 + i)}) for i in range(100_000)]
    trial.add("algo-1", "losses.jsonl", losses)
    started = time.perf_counter()
    page = profiler_report({"name": "long", "status": "Completed"}, trial, [])
    elapsed = time.perf_counter() - started
    data = len(outside_plotly_js(page))
    assert data < 2_000_000, f"{data} bytes besides plotly.js"
    assert elapsed < 20, f"rendering took {elapsed:.1f} s"


def test_naive_job_times_are_utc() -> None:
    """SQLite gives kennel's datetimes back without their zone; they are UTC."""
    trial = Trial()
    trial.add("algo-1", "system.jsonl", [json.dumps({"t": 1_700_000_090.0, "cpu": [10]})])
    job = {"name": "j", "status": "InProgress", "training_started_at": "2023-11-14T22:13:20"}
    assert "1m 30s so far" in profiler_report(job, trial, [])
