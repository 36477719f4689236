"""Trial start latency: slot free -> the trial script's first line, warm vs cold.

A real kennel server (warm trials on) runs a tuning job of 8 short trials, 2 at a time,
on warm slots; for every trial after the first two (which took slots free from the start)
the latency is ``first_line - slot_freed_at``: the script stamps its first line with
``time.time()`` and the training job records when its slot was freed. The baseline is the
cold path on the same server: an ordinary training job created the moment the previous
one ended, measured from the create call to its first line; two cold jobs run before the
tuning job and two after, so drift over the run shows up in both.

Run alone: ``python benchmarks/_trial_start.py`` (prints a table and the dict);
``benchmarks/tuning.py`` prints the RESULT line.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TRIALS = 8
PARALLEL = 2
COLD_JOBS_EACH_SIDE = 2
JOB_TIMEOUT_SECONDS = 120.0
FIRST_LINE = re.compile(r"first_line=([0-9.]+)")
SCRIPT = """import time
print(f"first_line={time.time():.6f}", flush=True)
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, default=0.5)
parser.add_argument("--epochs", type=int, default=2)
args, _ = parser.parse_known_args()
for epoch in range(args.epochs):
    time.sleep(0.25)
    print(f"epoch={epoch} objective_loss={args.x * 0.8**epoch:.5f}", flush=True)
"""
METRIC = {"name": "objective:loss", "regex": r"objective_loss=([0-9.]+)"}


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _first_line(api: Any, job: str) -> float:
    log = api.get(f"/api/v1/training-jobs/{job}/logs", params={"host": "algo-1"})["data"]
    found = FIRST_LINE.findall(log)
    if not found:
        raise RuntimeError(f"{job} printed no first line:\n{log[-2000:]}")
    return float(found[0])


def _wait(api: Any, path: str, timeout: float = JOB_TIMEOUT_SECONDS) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = api.get(path)
        if body["status"] not in ("InProgress", "Stopping"):
            return body
        time.sleep(0.2)
    raise RuntimeError(f"{path} did not end in {timeout} s")


def _cold_job(api: Any, source: str, index: int) -> float:
    """One ordinary (cold) training job: create -> its script's first line, in seconds."""
    name = f"cold-start-{index}"
    created = time.time()
    api.post(
        "/api/v1/training-jobs",
        {
            "name": name,
            "entry_point": "trial.py",
            "source_uri": source,
            "dataset": "start-digits",
            "hyperparameters": {"x": 0.5},
            "metric_definitions": [METRIC],
        },
    )
    job = _wait(api, f"/api/v1/training-jobs/{name}")
    if job["status"] != "Completed":
        raise RuntimeError(f"{name} ended {job['status']}: {job['failure_reason']}")
    return _first_line(api, name) - created


def _warm_trials(api: Any, source: str) -> tuple[list[float], float]:
    """Latencies of the trials after the first PARALLEL; also the tuning job's seconds."""
    began = time.monotonic()
    api.post(
        "/api/v1/tuning-jobs",
        {
            "name": "warm-start",
            "dataset": "start-digits",
            "entry_point": "trial.py",
            "source_uri": source,
            "metric_definitions": [METRIC],
            "objective": {"metric_name": "objective:loss", "type": "Minimize"},
            "strategy": "Random",
            "random_seed": 3,
            "parameter_ranges": {"continuous": [{"name": "x", "min_value": 0.1, "max_value": 1}]},
            "max_training_jobs": TRIALS,
            "max_parallel_training_jobs": PARALLEL,
        },
    )
    job = _wait(api, "/api/v1/tuning-jobs/warm-start", timeout=TRIALS * JOB_TIMEOUT_SECONDS)
    if job["status"] != "Completed":
        raise RuntimeError(f"the tuning job ended {job['status']}: {job['failure_reason']}")
    latencies = []
    for trial in sorted(job["trials"], key=lambda t: t["number"])[PARALLEL:]:
        name = trial["training_job_name"]
        training = api.get(f"/api/v1/training-jobs/{name}")
        if not training["slot_freed_at"]:
            raise RuntimeError(f"{name} did not run on a warm slot")
        latencies.append(_first_line(api, name) - _seconds(training["slot_freed_at"]))
    return latencies, time.monotonic() - began


def measure_trial_start() -> dict[str, float]:
    """Warm p50/p90 over the tuning job's later trials, and the cold p50 beside them."""
    sys.path.insert(0, str(REPO))
    from tests._server import start_server, stop_server
    from tests._uploads import upload_sources

    with tempfile.TemporaryDirectory(prefix="kennel-trial-start-") as tmp:
        work = Path(tmp)
        server = start_server(work / "home", KENNEL_WARM_TRIALS="1")
        try:
            script = work / "trial.py"
            script.write_text(SCRIPT)
            source = upload_sources(server, work, script)
            with server.client() as api:
                api.post("/api/v1/datasets", {"name": "start-digits", "demo": {"image_size": 16}})
                cold = [_cold_job(api, source, i) for i in range(COLD_JOBS_EACH_SIDE)]
                warm, tuning_seconds = _warm_trials(api, source)
                cold += [
                    _cold_job(api, source, COLD_JOBS_EACH_SIDE + i)
                    for i in range(COLD_JOBS_EACH_SIDE)
                ]
        finally:
            stop_server(server)
    ordered = sorted(warm)
    result = {
        "p50_s": statistics.median(warm),
        "p90_s": ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))],
        "samples": float(len(warm)),
        "cold_p50_s": statistics.median(cold),
    }
    print(f"{'path':<6} {'samples':>7} {'p50 s':>8} {'max s':>8}  latencies (s)")
    print(
        f"{'warm':<6} {len(warm):>7} {result['p50_s']:>8.3f} {max(warm):>8.3f}  "
        + " ".join(f"{v:.3f}" for v in warm)
    )
    print(
        f"{'cold':<6} {len(cold):>7} {result['cold_p50_s']:>8.3f} {max(cold):>8.3f}  "
        + " ".join(f"{v:.2f}" for v in cold)
    )
    print(f"tuning job of {TRIALS} trials x {PARALLEL} parallel took {tuning_seconds:.1f} s")
    return result


if __name__ == "__main__":
    print(measure_trial_start())
