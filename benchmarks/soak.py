"""Soak: an endpoint and a function driven together at a fixed rate for a bounded time.

One real kennel server (a subprocess, temporary home, free port on 127.0.0.1) holds:

* an endpoint of one ml.m5.large instance serving the built-in image classifier with
  seeded random weights: by default the quickstart's ``small-cnn`` at 64 px, 133 classes
  (``--arch resnet18`` or ``resnet50`` at 224 px for the flagship's shape, at many times
  the CPU per request);
* the dog-breed project's function (``examples/functions/dog_breed``, unchanged): it takes
  ``{"url": ...}`` and calls InvokeEndpoint on that endpoint from inside its execution
  environment, with its role's temporary credentials; the endpoint's model server fetches
  the image from a small HTTP server in this process (``KENNEL_FETCH_ALLOW_NETWORKS``
  allows 127.0.0.1 for that).

Both are driven open-loop at fixed rates for ``--duration`` seconds: the endpoint by
``kennel.loadgen`` (SigV4-signed InvokeEndpoint of a 224 px JPEG), the function by a
boto3 ``lambda`` client (Invoke, no retries) from a bounded thread pool on the same
``LoadPlan`` clock. An arrival that finds ``--max-in-flight`` requests outstanding is not
sent and counts as an error: a soak is to keep its rate.

Every ``--sample-interval`` seconds the RSS and CPU time of the server and all its
descendants (Ray's head processes, workers and actors, model servers, the function
template and its environments) are read with psutil and summed by role. The first
``--warmup`` seconds are load but not measurement (caches fill, environments start); over
the rest, the window:

* **errors**: every request of the run, warm-up included, that got no 2xx answer, a
  function error (``X-Amz-Function-Error``) or a function answer other than
  ``statusCode`` 200, plus arrivals never sent;
* **latency**: p99 of the window's last third against its first third (the baseline,
  measured in the same run), per target; the worse target's ratio is the result;
* **memory**: per role, the RSS of its processes that lived through the window (a
  function environment started meanwhile is more processes, not growth of the others; it
  is listed below the table) at the window's start and end, the growth, and the
  least-squares slope in MB/min; the result is the largest growth in % among roles, from
  the fitted line (a single sample's noise does not decide it).

    RESULT soak_errors <n> goal<=0
    RESULT soak_p99_last_vs_first <ratio> goal<=1.5
    RESULT soak_memory_growth_pct <pct> goal<=10

The client's CPU per request is printed beside kennel's (all its processes; CPU by role is
in the memory table), and how many CPUs other work on the machine kept busy in the first
and the last third: on a shared 2-core machine that is what makes the latency ratio noisy.

    python benchmarks/soak.py [--duration 120] [--endpoint-rps 20] [--function-rps 5]
                              [--json soak.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from functions import TRUST, code_zip
from rich.console import Console
from rich.table import Table
from serving import (
    INSTANCE_TYPE,
    REGION,
    create_endpoint,
    jpeg_bodies,
    machine_busy,
    wait_in_service,
)

REPO = Path(__file__).resolve().parent.parent
FUNCTION_SOURCE = REPO / "examples" / "functions" / "dog_breed" / "lambda_function.py"
CLASSES = 133
IMAGE_SIZES = {"small-cnn": 64, "resnet18": 224, "resnet50": 224}
MAX_RPS = 200.0
MAX_DURATION = 3600.0
SETUP_TIMEOUT = 300.0
REQUEST_TIMEOUT = 60.0
"""Read timeout of one function invocation; also bounds the drain at the end."""
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
MB = 2**20
NOT_SENT = "NotSent"
"""The error of a function arrival that found ``--max-in-flight`` requests outstanding
(the endpoint's loadgen calls it ``ClientSaturated``)."""

console = Console(highlight=False, width=None if sys.stdout.isatty() else 130)


class Stopped(Exception):
    """The soak was interrupted (Ctrl-C, SIGTERM): the loads stop early."""


# Options ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument(
        "--warmup", type=float, help="seconds of load before measuring (default: a sixth, <= 20)"
    )
    parser.add_argument("--endpoint-rps", type=float, default=20.0)
    parser.add_argument("--function-rps", type=float, default=5.0)
    parser.add_argument("--sample-interval", type=float, default=3.0, help="seconds")
    parser.add_argument("--max-in-flight", type=int, default=32, help="per target")
    parser.add_argument("--arch", choices=sorted(IMAGE_SIZES), default="small-cnn")
    parser.add_argument("--json", type=Path, help="write the whole report here")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(20.0, args.duration / 6)
    problems = []
    if not 10 <= args.duration <= MAX_DURATION:
        problems.append(f"--duration must be 10..{MAX_DURATION:g} s")
    if not 0 <= args.warmup <= args.duration / 2:
        problems.append("--warmup must be 0..half of --duration")
    for name in ("endpoint_rps", "function_rps"):
        if not 0.1 <= getattr(args, name) <= MAX_RPS:
            problems.append(f"--{name.replace('_', '-')} must be 0.1..{MAX_RPS:g}")
    if not 0.5 <= args.sample_interval <= (args.duration - args.warmup) / 6:
        # At least two samples in each third of the window.
        problems.append("--sample-interval must be 0.5 s..a sixth of the measured window")
    if not 1 <= args.max_in_flight <= 256:
        problems.append("--max-in-flight must be 1..256")
    if problems:
        parser.error("; ".join(problems))
    return args


# Set-up ----------------------------------------------------------------------------------


def build_model(work: Path, arch: str) -> Path:
    """model.tar.gz of the built-in classifier, ``arch`` with seeded random weights."""
    import torch

    from kennel.trainer._package import package_model, write_model_dir
    from kennel.trainer.inference import IMAGENET_MEAN, IMAGENET_STD, build_network

    torch.manual_seed(0)
    classes = [f"{i:03d}.breed{i}" for i in range(1, CLASSES + 1)]
    config = {
        "arch": arch,
        "image_size": IMAGE_SIZES[arch],
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "pretrained": None,
    }
    write_model_dir(work / "model", build_network(arch, CLASSES), classes, config)
    return package_model(work / "model", work / "model.tar.gz")


def lambda_client(server: Any, max_in_flight: int) -> Any:
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1},  # a soak counts every failure, hides none
        connect_timeout=5,
        read_timeout=REQUEST_TIMEOUT,
        max_pool_connections=max_in_flight,
    )
    return server.session.client(
        "lambda", endpoint_url=server.url, region_name=REGION, config=config
    )


def create_function(server: Any, lam: Any, name: str, endpoint: str) -> None:
    """The dog-breed function, with a role that may invoke ``endpoint`` and nothing else."""
    iam = server.session.client("iam", endpoint_url=server.url, region_name=REGION)
    sts = server.session.client("sts", endpoint_url=server.url, region_name=REGION)
    account = sts.get_caller_identity()["Account"]
    invoke = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sagemaker:InvokeEndpoint",
                "Resource": f"arn:aws:sagemaker:{REGION}:{account}:endpoint/{endpoint}",
            }
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    policy = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(invoke))["Policy"]
    for arn in (BASIC_EXECUTION, policy["Arn"]):
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Arn"],
        # The example's file, unchanged, as app.py: the handler is app.lambda_handler.
        Handler="app.lambda_handler",
        Code={"ZipFile": code_zip(FUNCTION_SOURCE.read_text())},
        Environment={"Variables": {"ENDPOINT_NAME": endpoint}},
        MemorySize=256,
        Timeout=30,
    )


def check_function(lam: Any, name: str, event: bytes) -> None:
    """Invoke until one answer is 200 with the model's scores (the function host starts in
    the background); raise with the last answer if none is within the set-up time."""
    deadline = time.monotonic() + SETUP_TIMEOUT
    last = ""
    for _ in range(int(SETUP_TIMEOUT)):
        _, error, detail = invoke_once(lam, name, event)
        if error is None:
            return
        last = f"{error}: {detail}"
        if time.monotonic() > deadline:
            break
        time.sleep(1.0)
    raise RuntimeError(f"function {name} does not answer: {last}")


def invoke_once(lam: Any, name: str, event: bytes) -> tuple[int | None, str | None, str]:
    """(HTTP status, error or None, detail) of one Invoke whose answer must be the
    dog-breed function's 200 with a list of scores."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = lam.invoke(FunctionName=name, Payload=event)
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status, error.response.get("Error", {}).get("Code", "ClientError"), str(error)
    except BotoCoreError as error:
        return None, type(error).__name__, str(error)
    status = int(answer["StatusCode"])
    payload = answer["Payload"].read()
    if answer.get("FunctionError"):
        return status, str(answer["FunctionError"]), payload[:300].decode(errors="replace")
    try:
        decoded = json.loads(payload)
        scores = json.loads(decoded["body"])
        ok = decoded["statusCode"] == 200 and len(scores[0]) == CLASSES
    except (ValueError, KeyError, TypeError, IndexError):
        ok = False
    if not ok:
        return status, "BadAnswer", payload[:300].decode(errors="replace")
    return status, None, ""


# Loads -----------------------------------------------------------------------------------


def run_endpoint_load(
    server: Any, endpoint: str, plan: Any, body: bytes, max_in_flight: int, stop: threading.Event
) -> Any:
    """``kennel.loadgen`` against the endpoint; ``stop`` ends it early (raises Stopped)."""
    from kennel.loadgen import run_load

    def on_tick(_: Any) -> None:
        if stop.is_set():
            raise Stopped

    with server.client() as client:
        return run_load(
            client,
            endpoint,
            plan,
            body,
            content_type="image/jpeg",
            accept="application/json",
            max_in_flight=max_in_flight,
            drain_timeout=REQUEST_TIMEOUT,
            on_tick=on_tick,
        )


def run_function_load(
    lam: Any, name: str, plan: Any, event: bytes, max_in_flight: int, stop: threading.Event
) -> list[Any]:
    """Invoke ``name`` at ``plan``'s arrivals from a pool of ``max_in_flight`` threads;
    every arrival's :class:`~kennel.loadgen.RequestRecord`, in the loadgen's terms."""
    from kennel.loadgen import RequestRecord

    records: list[RequestRecord] = []
    lock = threading.Lock()
    in_flight = [0]
    started = time.perf_counter()

    def now() -> float:
        return time.perf_counter() - started

    def call() -> None:
        sent = now()
        status: int | None = None
        error: str | None = "NoAnswer"
        try:
            status, error, _ = invoke_once(lam, name, event)
        except Exception as unexpected:  # noqa: BLE001 - recorded, not lost in the pool
            error = type(unexpected).__name__
        finally:
            with lock:
                in_flight[0] -= 1
                records.append(RequestRecord(sent, (now() - sent) * 1000, status, error))

    with ThreadPoolExecutor(max_in_flight, thread_name_prefix="soak-function") as pool:
        for due in plan.arrivals():
            if stop.wait(max(due - now(), 0.0)):
                break
            with lock:
                if in_flight[0] >= max_in_flight:
                    records.append(RequestRecord(now(), None, None, NOT_SENT))
                    continue
                in_flight[0] += 1
            pool.submit(call)
    return sorted(records, key=lambda r: r.sent_s)


def failed(record: Any) -> bool:
    """No 2xx answer, a function error, or not sent at all."""
    return record.error is not None or not record.ok


@dataclass
class TargetReport:
    name: str
    planned_rps: float
    sent: int = 0
    ok: int = 0
    errors: int = 0
    errors_by: dict[str, int] = field(default_factory=dict)
    achieved_rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    p99_first_ms: float | None = None
    p99_last_ms: float | None = None

    @property
    def p99_ratio(self) -> float | None:
        if self.p99_first_ms is None or self.p99_last_ms is None or self.p99_first_ms <= 0:
            return None
        return self.p99_last_ms / self.p99_first_ms


def target_report(
    name: str, planned_rps: float, records: Sequence[Any], window: tuple[float, float]
) -> TargetReport:
    """Errors over the whole run; rate and latency over the window, and in its thirds."""
    from kennel.loadgen._result import percentile

    start, end = window
    third = (end - start) / 3
    report = TargetReport(name, planned_rps)
    for record in records:
        if failed(record):
            report.errors += 1
            report.errors_by[record.failure] = report.errors_by.get(record.failure, 0) + 1

    def latencies(lo: float, hi: float) -> list[float]:
        return sorted(
            r.latency_ms
            for r in records
            if lo <= r.sent_s < hi and r.latency_ms is not None and r.status is not None
        )

    # Sent in the window: not-sent arrivals have no latency.
    inside = [r for r in records if start <= r.sent_s < end and r.latency_ms is not None]
    report.sent = len(inside)
    report.ok = sum(1 for r in inside if not failed(r))
    report.achieved_rps = report.ok / (end - start)
    window_latencies = latencies(start, end)
    report.p50_ms = percentile(window_latencies, 0.50)
    report.p99_ms = percentile(window_latencies, 0.99)
    report.p99_first_ms = percentile(latencies(start, start + third), 0.99)
    report.p99_last_ms = percentile(latencies(end - third, end), 0.99)
    return report


# Memory ----------------------------------------------------------------------------------


TEMPLATE = "kennel.functions._template"
RAY_AGENTS = frozenset({"DashboardAgent", "RuntimeEnvAgent"})
"""Ray's own per-node agents, which also run as ``ray::<name>`` processes."""


def role_of(process: psutil.Process, server_pid: int) -> str:
    """What a kennel process is, from its command line (Ray workers name their actor)."""
    if process.pid == server_pid:
        return "gateway (kennel server)"
    cmdline = process.cmdline()
    text = " ".join(cmdline)
    if TEMPLATE in text:
        # Environments are forked from the template: the same command line, its children.
        parent = process.parent()
        if parent is not None and TEMPLATE in " ".join(parent.cmdline()):
            return "function environments"
        return "function template"
    if "serve-model" in cmdline:
        return "model server"
    if text.startswith("ray::"):  # a worker: ray::<actor class>[.<method running>]
        actor = text.split()[0].removeprefix("ray::").split(".")[0]
        if actor in RAY_AGENTS:
            return "ray dashboard/agents"
        return "ray worker (idle)" if actor == "IDLE" else f"ray actor {actor}"
    for marker, role in (
        ("gcs_server", "ray gcs"),
        ("raylet", "ray raylet"),
        ("dashboard", "ray dashboard/agents"),
        ("log_monitor", "ray monitors"),
        ("monitor.py", "ray monitors"),
    ):
        if marker in text:
            return role
    return f"other: {Path(cmdline[0]).name if cmdline else process.name()}"


@dataclass(frozen=True)
class ProcessSample:
    role: str
    rss: int
    cpu_s: float
    """User + system CPU seconds so far."""
    created: float


@dataclass(frozen=True)
class Sample:
    t: float
    """Seconds since the loads started."""
    processes: dict[int, ProcessSample]
    busy_s: float
    """CPU seconds the whole machine has been busy (every process, ours or not)."""
    client_cpu_s: float
    """This process's CPU seconds: the load generators and the image server."""

    def by_role(self, pids: Iterable[int] | None = None) -> dict[str, tuple[int, int]]:
        """(processes, RSS bytes) per role, of ``pids`` (default: all)."""
        found: dict[str, tuple[int, int]] = {}
        for pid in self.processes if pids is None else pids:
            process = self.processes.get(pid)
            if process is not None:
                count, rss = found.get(process.role, (0, 0))
                found[process.role] = (count + 1, rss + process.rss)
        return found


class Sampler:
    """RSS and CPU of the server's process tree, by role."""

    def __init__(self, server_pid: int) -> None:
        self.root = psutil.Process(server_pid)
        self.seen: dict[int, ProcessSample] = {}
        """The last sample of every process ever seen: to check none outlives the server."""

    def sample(self, t: float) -> Sample:
        found: dict[int, ProcessSample] = {}
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            processes = []
        for process in processes:
            # A process may exit meanwhile: it is then left out of this sample.
            with contextlib.suppress(psutil.Error), process.oneshot():
                times = process.cpu_times()
                found[process.pid] = ProcessSample(
                    role_of(process, self.root.pid),
                    process.memory_info().rss,
                    times.user + times.system,
                    process.create_time(),
                )
        self.seen.update(found)
        return Sample(t, found, machine_busy(), time.process_time())

    def survivors(self) -> list[tuple[int, str]]:
        """Processes sampled before that still run (the same process, not a reused pid)."""
        alive = []
        for pid, seen in self.seen.items():
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).create_time() == seen.created:
                    alive.append((pid, seen.role))
        return alive

    def kill(self, pids: Sequence[int]) -> None:
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if process.create_time() == self.seen[pid].created:
                    process.kill()


@dataclass
class RoleMemory:
    """One role over the window. The MB figures are of the processes that lived through
    it (a new function environment is not growth of the others)."""

    role: str
    processes_start: int
    processes_end: int
    lived: int
    start_mb: float
    end_mb: float
    slope_mb_per_min: float
    fitted_growth_pct: float | None
    """Growth over the window of the least-squares line, relative to its start."""
    cpu_cores: float
    """CPUs the role (all its processes) kept busy over the window, on average."""

    @property
    def growth_mb(self) -> float:
        return self.end_mb - self.start_mb

    @property
    def growth_pct(self) -> float | None:
        return 100 * self.growth_mb / self.start_mb if self.start_mb else None


def least_squares(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(slope, intercept) of the line through ``points`` (x, y)."""
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0, mean_y
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return slope, mean_y - slope * mean_x


def in_window(samples: Sequence[Sample], lo: float, hi: float) -> list[Sample]:
    return [s for s in samples if lo <= s.t <= hi]


def lived_through(first: Sample, last: Sample) -> set[int]:
    return {
        pid
        for pid, process in first.processes.items()
        if pid in last.processes and last.processes[pid].created == process.created
    }


def memory_by_role(inside: Sequence[Sample]) -> list[RoleMemory]:
    first, last = inside[0], inside[-1]
    span = last.t - first.t
    lived = lived_through(first, last)
    cpu = cpu_by_role(first, last)
    at_start, at_end = first.by_role(), last.by_role()
    rows = []
    for role in sorted({*at_start, *at_end}):
        pids = [pid for pid in lived if last.processes[pid].role == role]
        points = [(s.t, s.by_role(pids).get(role, (0, 0))[1] / MB) for s in inside]
        slope, intercept = least_squares(points)
        fitted_start = intercept + slope * first.t
        rows.append(
            RoleMemory(
                role=role,
                processes_start=at_start.get(role, (0, 0))[0],
                processes_end=at_end.get(role, (0, 0))[0],
                lived=len(pids),
                start_mb=points[0][1],
                end_mb=points[-1][1],
                slope_mb_per_min=slope * 60,
                fitted_growth_pct=100 * slope * span / fitted_start if fitted_start > 0 else None,
                cpu_cores=cpu.get(role, 0.0) / span,
            )
        )
    return rows


def cpu_by_role(first: Sample, last: Sample) -> dict[str, float]:
    """CPU seconds each role used between two samples (processes alive at the second; one
    born in between counts from 0, one that died in between is missed)."""
    used: dict[str, float] = {}
    for pid, process in last.processes.items():
        before = first.processes.get(pid)
        start = before.cpu_s if before is not None and before.created == process.created else 0
        used[process.role] = used.get(process.role, 0.0) + process.cpu_s - start
    return used


def other_cores(first: Sample, last: Sample) -> float:
    """CPUs that work other than kennel's and this process's kept busy between two samples."""
    ours = sum(cpu_by_role(first, last).values()) + last.client_cpu_s - first.client_cpu_s
    return max(0.0, last.busy_s - first.busy_s - ours) / (last.t - first.t)


# The run ---------------------------------------------------------------------------------


@dataclass
class Soak:
    args: argparse.Namespace
    samples: list[Sample] = field(default_factory=list)
    endpoint_records: list[Any] = field(default_factory=list)
    function_records: list[Any] = field(default_factory=list)
    elapsed_s: float = 0.0
    leftovers: list[tuple[int, str]] = field(default_factory=list)
    server_log_tracebacks: int = 0


def drive(
    soak: Soak, server: Any, sampler: Sampler, endpoint: str, function: str, image_url: str
) -> None:
    """Both loads in threads, sampling here until they end (or Ctrl-C stops them)."""
    from kennel.loadgen import LoadPlan

    args = soak.args
    lam = lambda_client(server, args.max_in_flight)
    body = jpeg_bodies(1)[0]
    event = json.dumps({"url": image_url}).encode()
    stop = threading.Event()
    results: dict[str, Any] = {}
    failures: list[BaseException] = []

    def run(key: str, target: Callable[[], Any]) -> None:
        try:
            results[key] = target()
        except Stopped:
            pass
        except BaseException as error:  # noqa: BLE001 - raised by the main thread
            failures.append(error)
            stop.set()

    endpoint_plan = LoadPlan.constant(args.endpoint_rps, args.duration)
    function_plan = LoadPlan.constant(args.function_rps, args.duration)
    loads = {
        "endpoint": lambda: run_endpoint_load(
            server, endpoint, endpoint_plan, body, args.max_in_flight, stop
        ),
        "function": lambda: run_function_load(
            lam, function, function_plan, event, args.max_in_flight, stop
        ),
    }
    threads = [
        threading.Thread(target=run, name=f"soak-{key}", args=(key, load))
        for key, load in loads.items()
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    # Until the loads are done: the duration, then at most one request timeout of drain.
    limit = args.duration + REQUEST_TIMEOUT + 10
    every = max(1, round(10 / args.sample_interval))
    try:
        for number in range(math.ceil(limit / args.sample_interval) + 1):
            soak.samples.append(sampler.sample(time.monotonic() - started))
            if number % every == 0:
                progress(soak.samples[-1])
            if not any(t.is_alive() for t in threads):
                break
            next_at = started + (number + 1) * args.sample_interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT + 10)
    soak.elapsed_s = time.monotonic() - started
    if failures:
        raise failures[0]
    if "endpoint" in results:
        soak.endpoint_records = list(results["endpoint"].records)
    soak.function_records = results.get("function", [])


def progress(sample: Sample) -> None:
    total = sum(p.rss for p in sample.processes.values()) / MB
    console.print(
        f"  t={sample.t:6.1f} s  kennel RSS {total:7.1f} MB in {len(sample.processes)} processes",
        style="dim",
    )


def soak_once(args: argparse.Namespace) -> Soak:
    sys.path.insert(0, str(REPO))
    from tests._images import serve_image
    from tests._server import start_server, stop_server

    soak = Soak(args)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kennel-bench-soak-") as tmp:
        work = Path(tmp)
        archive = build_model(work, args.arch)
        server = start_server(work / "home", KENNEL_FETCH_ALLOW_NETWORKS="127.0.0.1/32")
        sampler = Sampler(server.process.pid)
        try:
            with serve_image(jpeg_bodies(1, seed=1)[0]) as image_url:
                endpoint = function = "soak"
                with server.client() as api:
                    create_endpoint(api, endpoint, archive)
                    wait_in_service(api, endpoint, SETUP_TIMEOUT)
                lam = lambda_client(server, 1)
                create_function(server, lam, function, endpoint)
                check_function(lam, function, json.dumps({"url": image_url}).encode())
                console.print(
                    f"set up in {time.monotonic() - began:.0f} s: endpoint {endpoint} "
                    f"({args.arch}, {INSTANCE_TYPE}), function {function}; "
                    f"load {args.endpoint_rps:g} + {args.function_rps:g} rps for "
                    f"{args.duration:g} s (warm-up {args.warmup:g} s)"
                )
                drive(soak, server, sampler, endpoint, function, image_url)
        finally:
            stop_server(server)
            soak.leftovers = sampler.survivors()
            sampler.kill([pid for pid, _ in soak.leftovers])
            if server.log.exists():
                soak.server_log_tracebacks = server.log.read_text(errors="replace").count(
                    "Traceback (most recent call last)"
                )
    return soak


# Report ----------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_load(
    targets: Sequence[TargetReport], window: tuple[float, float], others: tuple[float, float]
) -> None:
    table = Table(title=f"Load: {window[1] - window[0]:g} s window after {window[0]:g} s warm-up")
    table.add_column("target")
    for column in ("planned rps", "achieved rps", "ok", "errors", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for column in ("p99 1st third", "p99 last third", "last/first"):
        table.add_column(column, justify="right")
    for t in targets:
        table.add_row(
            t.name,
            f"{t.planned_rps:g}",
            f"{t.achieved_rps:.2f}",
            str(t.ok),
            str(t.errors),
            _ms(t.p50_ms),
            _ms(t.p99_ms),
            _ms(t.p99_first_ms),
            _ms(t.p99_last_ms),
            "-" if t.p99_ratio is None else f"{t.p99_ratio:.2f}",
        )
    console.print(table)
    console.print(
        "achieved rps: 2xx answers per second of the window; errors: the whole run, warm-up "
        "included (not-sent arrivals too).\nOther work on the machine kept "
        f"{others[0]:.2f} CPUs busy in the first third, {others[1]:.2f} in the last."
    )
    for t in targets:
        if t.errors_by:
            console.print(f"{t.name} errors: {json.dumps(t.errors_by)}", style="red")


def print_memory(memory: Sequence[RoleMemory], inside: Sequence[Sample]) -> None:
    table = Table(title="kennel processes over the window: RSS and CPU by role")
    table.add_column("role")
    for column in ("procs", "start MB", "end MB", "growth MB", "growth %", "MB/min"):
        table.add_column(column, justify="right")
    table.add_column("fitted %", justify="right")
    table.add_column("CPUs", justify="right")
    for row in memory:
        procs = str(row.processes_start)
        if row.processes_end != row.processes_start:
            procs += f"->{row.processes_end}"
        table.add_row(
            row.role,
            procs,
            f"{row.start_mb:.1f}",
            f"{row.end_mb:.1f}",
            f"{row.growth_mb:+.1f}",
            _pct(row.growth_pct),
            f"{row.slope_mb_per_min:+.2f}",
            _pct(row.fitted_growth_pct),
            f"{row.cpu_cores:.3f}",
        )
    start = sum(r.start_mb for r in memory)
    end = sum(r.end_mb for r in memory)
    table.add_row(
        "all",
        str(sum(r.lived for r in memory)),
        f"{start:.1f}",
        f"{end:.1f}",
        f"{end - start:+.1f}",
        _pct(100 * (end - start) / start if start else None),
        f"{sum(r.slope_mb_per_min for r in memory):+.2f}",
        "",
        f"{sum(r.cpu_cores for r in memory):.3f}",
        style="bold",
    )
    console.print(table)
    console.print(
        "MB: processes that lived through the window; fitted %: growth over the window of "
        "the least-squares line through\nevery sample, relative to its start; CPUs: cores "
        "kept busy on average (all the role's processes)."
    )
    first, last = inside[0], inside[-1]
    lived = lived_through(first, last)
    for label, sample, pids in (
        ("started", last, set(last.processes) - lived),
        ("ended", first, set(first.processes) - lived),
    ):
        if pids:
            roles = sample.by_role(pids)
            listed = ", ".join(
                f"{n} {role} ({rss / MB:.0f} MB)" for role, (n, rss) in roles.items()
            )
            console.print(f"processes {label} during the window: {listed}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def report(soak: Soak) -> dict[str, Any]:
    """Print the tables; the whole report as plain JSON types, with the results."""
    args = soak.args
    window = (args.warmup, args.duration)
    targets = [
        target_report("endpoint", args.endpoint_rps, soak.endpoint_records, window),
        target_report("function", args.function_rps, soak.function_records, window),
    ]
    inside = in_window(soak.samples, *window)
    memory = memory_by_role(inside)
    third = (window[1] - window[0]) / 3
    first_third = in_window(inside, window[0], window[0] + third)
    last_third = in_window(inside, window[1] - third, window[1])
    others = (
        other_cores(first_third[0], first_third[-1]),
        other_cores(last_third[0], last_third[-1]),
    )
    sent = max(1, sum(t.sent for t in targets))
    span = inside[-1].t - inside[0].t
    client_ms = 1000 * (inside[-1].client_cpu_s - inside[0].client_cpu_s) / sent
    kennel_ms = 1000 * sum(r.cpu_cores for r in memory) * span / sent
    print_load(targets, window, others)
    print_memory(memory, inside)
    console.print(
        f"CPU per request: client {client_ms:.2f} ms, kennel (all its processes) "
        f"{kennel_ms:.2f} ms; other work on the machine: {other_cores(inside[0], inside[-1]):.2f} "
        "CPUs."
    )
    if soak.server_log_tracebacks:
        console.print(f"server log: {soak.server_log_tracebacks} tracebacks", style="yellow")
    if soak.leftovers:
        console.print(f"still running after the server stopped: {soak.leftovers}", style="red")
    ratios = [t.p99_ratio for t in targets if t.p99_ratio is not None]
    growths = [r.fitted_growth_pct for r in memory if r.fitted_growth_pct is not None]
    results = {
        "soak_errors": sum(t.errors for t in targets),
        "soak_p99_last_vs_first": max(ratios) if len(ratios) == len(targets) else math.inf,
        "soak_memory_growth_pct": max(growths, default=math.inf),
    }
    return {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "elapsed_s": soak.elapsed_s,
        "targets": [{**vars(t), "p99_ratio": t.p99_ratio} for t in targets],
        "memory": [
            {**vars(r), "growth_mb": r.growth_mb, "growth_pct": r.growth_pct} for r in memory
        ],
        "cpu_ms_per_request": {"client": client_ms, "kennel": kennel_ms},
        "other_cores": {"first_third": others[0], "last_third": others[1]},
        "server_log_tracebacks": soak.server_log_tracebacks,
        "leftover_processes": soak.leftovers,
        "samples": [
            {
                "t": s.t,
                "by_role": {
                    role: {"processes": n, "rss_mb": rss / MB}
                    for role, (n, rss) in s.by_role().items()
                },
            }
            for s in soak.samples
        ],
        "results": results,
    }


def main() -> None:
    args = parse_args()

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    # Both stop the run through the finally blocks, which stop the server; SIGINT too when
    # a non-interactive shell started this in the background (it is ignored there).
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        soak = soak_once(args)
    except KeyboardInterrupt:
        console.print("interrupted: the loads and the server were stopped", style="red")
        raise SystemExit(130) from None
    data = report(soak)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str))
    results = data["results"]
    print()
    print(f"RESULT soak_errors {results['soak_errors']} goal<=0")
    print(f"RESULT soak_p99_last_vs_first {results['soak_p99_last_vs_first']:.2f} goal<=1.5")
    print(f"RESULT soak_memory_growth_pct {results['soak_memory_growth_pct']:.1f} goal<=10")


if __name__ == "__main__":
    main()
