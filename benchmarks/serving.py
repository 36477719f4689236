"""Serving a ResNet-50 through kennel: against in-process ONNX Runtime, against Ray Serve,
and the gateway's own overhead over calling the model server directly.

Everything runs in one run against one real kennel server (a subprocess with a temporary
home) holding two endpoints of ONE ml.m5.large instance each:

* a built-in image model: ResNet-50, 133 classes, random (seeded) weights, 224x224, which
  kennel exports to ONNX and serves with ONNX Runtime;
* an echo model (``code/inference.py`` that hands the body back unchanged).

Part 1, throughput. The candidate is the gateway (``POST /endpoints/{name}/invocations``,
SigV4-signed before the timed loop) at concurrency 1, 4 and 16, fed distinct 224x224
JPEGs (quality 90). The baseline probe is this process running the same ``model.onnx``
(the model's exported artifact) with ONNX Runtime's default session options: decode the
JPEG (PIL), preprocess it as the built-in eval transform does (short side to 224, centre
crop, ImageNet mean/std), ``session.run`` at batch 1, in a loop. The probe runs while the
endpoint is idle, right before and right after each load; a load's ratio is its images/s
over the mean of its two probes, and the result is the median over rounds.

Part 1 also measures Ray Serve serving the same ``model.onnx`` its recommended way (a
``@serve.deployment`` with one replica reserving 2 CPUs, ``@serve.batch`` dynamic
batching, ``max_ongoing_requests`` >= the batch size, JPEG in, JSON scores out) at
concurrency 4, in its own Ray instance (a subprocess with ``ray.init(address="local")``)
so it shares nothing with kennel's. It runs in the same rounds, never at the same time as
kennel's load, and is normalised to its own probes the same way; the ratio kennel/Ray
Serve is that of the two normalised throughputs, median over rounds.

Part 2, overhead. The echo model with a 1 KB body at concurrency 1, straight to the
instance's ``/invocations`` (unsigned, as the gateway calls it) and through the gateway
(pre-signed), in interleaved rounds; the overhead is p50(gateway) - p50(direct) per round,
median over rounds.

The load generator is this process: asyncio (uvloop when present) with one kept-alive
HTTP/1.1 connection per concurrent client and httptools parsing the answers (httpx costs
about 2 ms of client CPU per request here, which would measure the client). Each load
line reports the client's CPU per request next to the server side's (the gateway process,
the model server process; for Ray Serve its whole process tree), so a reader can tell
which side was the limit, and how many CPUs other work on the machine kept busy meanwhile
("other"): on a shared 2-core machine that is what makes a run noisy (a note says so when
it was), and it favours whichever server spins more threads.

    RESULT serving_vs_ort_c4 <ratio> goal>=1.0
    RESULT serving_vs_ort_c16 <ratio> goal>=1.0
    RESULT serving_vs_rayserve_c4 <ratio> goal>=1.3
    RESULT gateway_overhead_p50_ms <ms> goal<=1

Part 3, data capture. The same ResNet-50 model behind a second endpoint whose config
captures 100 % of requests (Input and Output), against the endpoint without capture, at
concurrency 4: loads alternate off, on, off, on, ..., off; each "on" load is paired with
the mean of the "off" loads right before and after it, its overhead is
(off - on) / off * 100 of throughput, and the result is the median over pairs (negative:
capture on was faster, i.e. noise). The echo model (1 KB bodies, thousands of requests a
second) gets the same treatment as a stress line in the table: it shows the gateway's
own cost of capture where the model costs nothing. ``--capture-only`` runs only this part
(no Ray Serve, no probes), about 4 minutes in all.

    RESULT capture_overhead_pct <pct> goal<=5

Knobs (environment): ``KENNEL_BENCH_ROUNDS`` (throughput rounds, default 4),
``KENNEL_BENCH_SECONDS`` (measured seconds per load, default 6),
``KENNEL_BENCH_PROBE_SECONDS`` (per probe, default 3), ``KENNEL_BENCH_SKIP_RAYSERVE=1``
(leave Ray Serve out; its RESULT line is then ``nan``), ``KENNEL_BENCH_CAPTURE_PAIRS``
(capture on/off pairs, default 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import numpy as np
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parent.parent

CLASSES = 133
IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ARCH = "resnet50"
INSTANCE_TYPE = "ml.m5.large"
REGION = "us-east-1"

ROUNDS = int(os.environ.get("KENNEL_BENCH_ROUNDS", "4"))
LOAD_SECONDS = float(os.environ.get("KENNEL_BENCH_SECONDS", "6"))
PROBE_SECONDS = float(os.environ.get("KENNEL_BENCH_PROBE_SECONDS", "3"))
SKIP_RAYSERVE = os.environ.get("KENNEL_BENCH_SKIP_RAYSERVE") == "1"
LOAD_WARMUP = 2.0
"""Unmeasured lead-in of every load: every client has its pipeline full by then."""
MAX_REQUESTS = 20_000
"""Bound on requests per load, whatever the duration."""
CONCURRENCY = (1, 4, 16)
RAYSERVE_CONCURRENCY = 4
OVERHEAD_ROUNDS = 7
OVERHEAD_REQUESTS, OVERHEAD_WARMUP = 400, 50
ECHO_BODY = bytes(range(256)) * 4  # 1 KB
SETUP_TIMEOUT = 300.0
RAYSERVE_BATCH, RAYSERVE_BATCH_WAIT_S = 8, 0.01
CAPTURE_PAIRS = int(os.environ.get("KENNEL_BENCH_CAPTURE_PAIRS", "5"))
CAPTURE_CONCURRENCY = 4
ECHO_CAPTURE_SECONDS = 3.0
NOISY_CORES = 0.1
"""Other work using more CPU than this (median over measurements) makes a run noisy."""

ECHO_HANDLER = """
def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    return data

def output_fn(prediction, accept):
    return prediction, accept
"""


# Inputs, models, preprocessing --------------------------------------------------------------


def jpeg_bodies(count: int = 6, seed: int = 0) -> list[bytes]:
    """Photo-like 224x224 JPEGs (smooth colour fields plus blurred noise), quality 90."""
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        smooth = Image.fromarray(coarse).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
        noise = Image.fromarray(rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8))
        image = Image.blend(smooth, noise.filter(ImageFilter.GaussianBlur(1.5)), 0.3)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        bodies.append(buffer.getvalue())
    return bodies


def build_archives(work: Path) -> tuple[Path, Path]:
    """model.tar.gz of a built-in ResNet-50 (seeded random weights) and of the echo model."""
    import torch

    from kennel.trainer._package import package_model, write_model_dir
    from kennel.trainer.inference import build_network

    torch.manual_seed(0)
    classes = [f"{i:03d}.breed{i}" for i in range(1, CLASSES + 1)]
    config = {
        "arch": ARCH,
        "image_size": IMAGE_SIZE,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "pretrained": None,
    }
    model_dir = work / "resnet"
    write_model_dir(model_dir, build_network(ARCH, CLASSES), classes, config)
    resnet = package_model(model_dir, work / "resnet.tar.gz")
    echo = work / "echo.tar.gz"
    with tarfile.open(echo, "w:gz") as tar:
        data = ECHO_HANDLER.encode()
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return resnet, echo


_SCALE = (1.0 / (255.0 * np.asarray(IMAGENET_STD))).astype(np.float32).reshape(3, 1, 1)
_OFFSET = (
    (-np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD)).astype(np.float32).reshape(3, 1, 1)
)


def preprocess(body: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    """JPEG bytes -> float32 1x3x224x224: the built-in eval transform (torchvision's
    Resize(224) + CenterCrop(224) + Normalize) with PIL and numpy."""
    image = Image.open(io.BytesIO(body)).convert("RGB")
    width, height = image.size
    if width <= height:
        size = (IMAGE_SIZE, int(IMAGE_SIZE * height / width))
    else:
        size = (int(IMAGE_SIZE * width / height), IMAGE_SIZE)
    if size != image.size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    left = int(round((size[0] - IMAGE_SIZE) / 2.0))
    top = int(round((size[1] - IMAGE_SIZE) / 2.0))
    if (left, top) != (0, 0) or size != (IMAGE_SIZE, IMAGE_SIZE):
        image = image.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
    chw = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32)
    chw *= _SCALE
    chw += _OFFSET
    return chw[None]


# The in-process probe ----------------------------------------------------------------------


@dataclass
class Measure:
    """One measurement: throughput, latencies (s) and CPU per request (ms) by process."""

    rate: float
    latencies: list[float] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)
    other: float = 0.0
    """CPUs (cores) busy with other work on the machine meanwhile, on average."""

    def pct(self, q: float) -> float:
        return float(np.quantile(self.latencies, q)) * 1e3 if self.latencies else float("nan")


class Probe:
    """Decode + preprocess + ``session.run`` at batch 1, default session options."""

    def __init__(self, onnx_path: Path, bodies: list[bytes]) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.bodies = bodies
        self.index = 0

    def scores(self, body: bytes) -> np.ndarray[Any, Any]:
        return np.asarray(self.session.run(None, {self.input: preprocess(body)})[0])

    def run(self, seconds: float) -> Measure:
        self.scores(self.bodies[0])  # unmeasured: wakes the thread pool up
        latencies: list[float] = []
        cpu, others = time.process_time(), OtherWork()
        started = time.perf_counter()
        now = started
        while now - started < seconds and len(latencies) < MAX_REQUESTS:
            body = self.bodies[self.index % len(self.bodies)]
            self.index += 1
            self.scores(body)
            latencies.append(time.perf_counter() - now)
            now += latencies[-1]
        elapsed = now - started
        other = others.cores()
        cpu_ms = (time.process_time() - cpu) * 1e3 / len(latencies)
        return Measure(len(latencies) / elapsed, latencies, {"process": cpu_ms}, other)


# The load generator ------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.chunks: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.chunks)))

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.chunks = []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


def _run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


async def _load(
    address: tuple[str, int],
    requests: Sequence[bytes],
    concurrency: int,
    *,
    warmup: float,
    seconds: float | None,
    count: int | None,
) -> tuple[list[tuple[float, float]], float, float]:
    """(finish time, latency) of every request, the window start and the window end.

    With ``seconds``: clients send from ``start`` to ``start + warmup + seconds`` and every
    request is returned (the caller weighs them by their time inside the window). With
    ``count``: each client sends ``warmup`` + ``count`` requests (``warmup`` is then a
    request count) and the last ``count`` are returned.
    """
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(concurrency):
        _, protocol = await loop.create_connection(_Connection, *address)
        connections.append(protocol)
    done: list[tuple[float, float]] = []
    clock = time.perf_counter
    started = clock()
    window_start = started + (warmup if seconds is not None else 0.0)
    window_end = window_start + seconds if seconds is not None else float("inf")
    hard_end = started + (warmup + seconds if seconds is not None else SETUP_TIMEOUT)

    async def client(number: int, connection: _Connection) -> None:
        index = number
        sent = 0
        skip = 0 if seconds is not None else int(warmup)
        limit = MAX_REQUESTS if count is None else count + skip
        while sent < limit and clock() < hard_end and len(done) < MAX_REQUESTS:
            began = clock()
            status, body = await connection.send(requests[index % len(requests)])
            finished = clock()
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
            sent += 1
            index += concurrency
            if sent > skip:
                done.append((finished, finished - began))

    try:
        await asyncio.wait_for(
            asyncio.gather(*(client(n, c) for n, c in enumerate(connections))),
            timeout=SETUP_TIMEOUT,
        )
    finally:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
    return done, window_start, min(window_end, clock())


def http_load(
    address: tuple[str, int],
    requests: Sequence[bytes],
    concurrency: int,
    cpu_groups: dict[str, list[int]],
    *,
    seconds: float | None = None,
    count: int | None = None,
    warmup: float = LOAD_WARMUP,
) -> Measure:
    """A load of ``concurrency`` kept-alive clients; CPU per request of this process and of
    each group of server processes over the whole load (warm-up included), and the CPU
    other work on the machine used meanwhile."""
    cpu_before = {name: cpu_seconds(pids) for name, pids in cpu_groups.items()}
    client_before, others = time.process_time(), OtherWork()
    done, window_start, window_end = _run(
        _load(address, requests, concurrency, warmup=warmup, seconds=seconds, count=count)
    )
    client_cpu = time.process_time() - client_before
    other = others.cores()
    cpu_after = {name: cpu_seconds(pids) for name, pids in cpu_groups.items()}
    # The CPU figures cover the warm-up too, so they are per request sent.
    total = len(done) + (0 if seconds is not None else int(warmup) * concurrency)
    if seconds is not None:
        # Each request counts for the share of its lifetime inside the window: smoother than
        # counting completions (a 6 s window at 8/s would be quantised to 2 %).
        served = sum(
            max(0.0, min(at, window_end) - max(at - latency, window_start)) / latency
            for at, latency in done
            if latency > 0
        )
        rate = served / (window_end - window_start)
        done = [(at, latency) for at, latency in done if window_start <= at < window_end]
    else:
        rate = len(done) / (done[-1][0] - min(at - latency for at, latency in done))
    per_request = {name: (cpu_after[name] - cpu_before[name]) * 1e3 / total for name in cpu_groups}
    per_request["client"] = client_cpu * 1e3 / total
    return Measure(rate, [latency for _, latency in done], per_request, other)


def raw_request(address: tuple[str, int], path: str, body: bytes, ctype: str, accept: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
        f"Content-Type: {ctype}\r\nAccept: {accept}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def signed_request(
    address: tuple[str, int],
    path: str,
    body: bytes,
    ctype: str,
    accept: str,
    credentials: tuple[str, str],
    *,
    service: str = "sagemaker",
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """A request signed now (SigV4 for ``service``, us-east-1), as bytes: InvokeEndpoint
    by default; ``benchmarks/functions.py`` signs Lambda's Invoke with it."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    host = f"{address[0]}:{address[1]}"
    request = AWSRequest(
        method="POST",
        url=f"http://{host}{path}",
        data=body,
        headers={
            "Content-Type": ctype,
            "Accept": accept,
            "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(),
            **(extra_headers or {}),
        },
    )
    SigV4Auth(Credentials(*credentials), service, REGION).add_auth(request)
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# CPU accounting ----------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of these processes (those still alive)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def machine_busy() -> float:
    """CPU seconds all CPUs have spent busy since boot (user, nice, system, irq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


OURS: list[int] = [os.getpid()]
"""Roots of the process trees this benchmark started (itself, kennel, Ray Serve)."""


class OtherWork:
    """How many CPUs processes outside ``OURS`` kept busy from construction to ``cores()``."""

    def __init__(self) -> None:
        self.pids = sorted({pid for root in OURS for pid in process_tree(root)})
        self.ours = cpu_seconds(self.pids)
        self.busy = machine_busy()
        self.wall = time.perf_counter()

    def cores(self) -> float:
        ours = cpu_seconds(self.pids) - self.ours
        busy = machine_busy() - self.busy
        return max(0.0, busy - ours) / (time.perf_counter() - self.wall)


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


# Ray Serve, in its own process and its own Ray instance -----------------------------------


def rayserve_child(onnx_path: str, ready_file: str, temp_dir: str) -> None:
    """Runs in the subprocess: a local Ray, Serve on a free port of 127.0.0.1 (written to
    ``ready_file`` once it answers), until SIGTERM."""
    import ray
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import Response

    @serve.deployment(
        num_replicas=1,
        ray_actor_options={"num_cpus": 2},
        max_ongoing_requests=2 * RAYSERVE_BATCH,
    )
    class Classifier:
        def __init__(self, path: str) -> None:
            import onnxruntime as ort

            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            self.input = self.session.get_inputs()[0].name

        @serve.batch(max_batch_size=RAYSERVE_BATCH, batch_wait_timeout_s=RAYSERVE_BATCH_WAIT_S)
        async def predict(self, bodies: list[bytes]) -> list[bytes]:
            batch = np.concatenate([preprocess(body) for body in bodies])
            logits = self.session.run(None, {self.input: batch})[0]
            return [json.dumps([row.tolist()]).encode() for row in logits]

        async def __call__(self, request: Request) -> Response:
            scores = await self.predict(await request.body())
            return Response(scores, media_type="application/json")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 2**20,
        _temp_dir=temp_dir,
    )
    try:
        for attempt in range(5):
            # Chosen only now: Ray's own processes take ports of the same range as they start.
            port = free_port()
            try:
                serve.start(http_options={"host": "127.0.0.1", "port": port})
                break
            except Exception as error:  # the port was taken meanwhile: retry
                print(f"Serve did not start on port {port} ({error}); retrying", flush=True)
                serve.shutdown()
                if attempt == 4:
                    raise
        serve.run(Classifier.bind(onnx_path), name="bench", route_prefix="/")
        Path(f"{ready_file}.tmp").write_text(str(port))
        os.replace(f"{ready_file}.tmp", ready_file)
        stop.wait(3600)
    finally:
        serve.shutdown()
        ray.shutdown()


@dataclass
class RayServe:
    process: subprocess.Popen[bytes]
    ready_file: Path
    log: Path
    temp_dir: Path

    def wait_ready(self, timeout: float = SETUP_TIMEOUT) -> int:
        """Its HTTP port, once it serves."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                return int(self.ready_file.read_text())
            if self.process.poll() is not None:
                raise RuntimeError(f"Ray Serve exited:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"Ray Serve not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        # Ray's agents can outlive their raylet; the child's session holds only what it
        # started, so sweep it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_rayserve(onnx_path: Path, work: Path) -> RayServe:
    temp_dir = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))  # short: Ray's socket paths
    ready, log = work / "rayserve.ready", work / "rayserve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "KENNEL_"))}
    env.update(RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    command = [sys.executable, str(Path(__file__).resolve()), "--rayserve-child"]
    command += [str(onnx_path), str(ready), str(temp_dir)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return RayServe(process, ready, log, temp_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Kennel setup ------------------------------------------------------------------------------


def create_endpoint(api: Any, name: str, archive: Path) -> None:
    """Upload, model, config and endpoint (not waited for)."""
    uri = api.request("PUT", "/api/v1/uploads/model.tar.gz", upload=archive).json()["uri"]
    api.post("/api/v1/models", {"name": name, "artifact_uri": uri})
    variant = {"model_name": name, "instance_type": INSTANCE_TYPE, "initial_instance_count": 1}
    api.post("/api/v1/endpoint-configs", {"name": name, "variants": [variant]})
    api.post("/api/v1/endpoints", {"name": name, "config_name": name})


def create_capture_twin(api: Any, name: str, model: str) -> None:
    """An endpoint of ``model`` whose config captures every request (Input and Output)."""
    variant = {"model_name": model, "instance_type": INSTANCE_TYPE, "initial_instance_count": 1}
    capture = {"sampling_percentage": 100, "capture_options": ["Input", "Output"]}
    api.post(
        "/api/v1/endpoint-configs",
        {"name": name, "variants": [variant], "data_capture": capture},
    )
    api.post("/api/v1/endpoints", {"name": name, "config_name": name})


def capture_records(home: Path, endpoint: str) -> tuple[int, int]:
    """(records, files) captured for an endpoint so far."""
    files = list((home / "artifacts" / "monitoring" / endpoint / "capture").rglob("*.jsonl"))
    return sum(f.read_bytes().count(b"\n") for f in files), len(files)


def wait_in_service(api: Any, name: str, timeout: float = SETUP_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    info: dict[str, Any] = {}
    while time.monotonic() < deadline:
        info = api.get(f"/api/v1/endpoints/{name}")
        if info["status"] == "InService":
            return info
        if info["status"] == "Failed":
            raise RuntimeError(f"endpoint {name} failed: {info.get('failure_reason')}")
        time.sleep(0.5)
    raise RuntimeError(f"endpoint {name} not InService in {timeout} s: {info}")


def instance_of(info: dict[str, Any]) -> tuple[tuple[str, int], int]:
    instance = info["production_variants"][0]["instances"][0]
    host, _, port = instance["address"].rpartition(":")
    return (host, int(port)), int(instance["pid"])


def fetch_onnx(api: Any, model: str, target: Path) -> Path:
    import fsspec

    uri = api.get(f"/api/v1/models/{model}").get("onnx_uri")
    if not uri:
        raise RuntimeError(
            f"model {model} has no ONNX export: {api.get(f'/api/v1/models/{model}')}"
        )
    with fsspec.open(uri, "rb") as src:
        target.write_bytes(src.read())
    return target


# Parts -------------------------------------------------------------------------------------


@dataclass
class Target:
    """Somewhere to send image loads: a name, an address, request bytes, CPU groups."""

    name: str
    address: tuple[str, int]
    make_requests: Callable[[], list[bytes]]
    cpu_groups: dict[str, list[int]]


def throughput(
    probe: Probe, loads: list[tuple[Target, int]]
) -> tuple[list[Measure], dict[str, list[Measure]], dict[str, list[float]]]:
    """Rounds of probe, load, probe, load, ..., probe; each load's ratio to its two probes."""
    probes: list[Measure] = []
    measures: dict[str, list[Measure]] = {}
    ratios: dict[str, list[float]] = {}
    probe.run(PROBE_SECONDS)  # warm-up
    for target, concurrency in loads:  # warm-up: one short load each
        http_load(target.address, target.make_requests(), concurrency, {}, seconds=1.0)
    for number in range(ROUNDS):
        order = loads if number % 2 == 0 else loads[::-1]
        before = probe.run(PROBE_SECONDS)
        probes.append(before)
        line = [f"round {number + 1}: probe {before.rate:.2f}/s"]
        for target, concurrency in order:
            key = f"{target.name} c{concurrency}"
            requests = target.make_requests()
            load = http_load(
                target.address, requests, concurrency, target.cpu_groups, seconds=LOAD_SECONDS
            )
            after = probe.run(PROBE_SECONDS)
            probes.append(after)
            ratio = load.rate / ((before.rate + after.rate) / 2)
            measures.setdefault(key, []).append(load)
            ratios.setdefault(key, []).append(ratio)
            line.append(f"{key} {load.rate:.2f}/s ({ratio:.2f}x), probe {after.rate:.2f}/s")
            before = after
        print(", ".join(line), flush=True)
    return probes, measures, ratios


def overhead(
    direct: tuple[tuple[str, int], list[bytes]],
    gateway: tuple[tuple[str, int], Callable[[], list[bytes]]],
    cpu_groups: dict[str, list[int]],
) -> tuple[list[Measure], list[Measure], list[float]]:
    directs, gateways, diffs = [], [], []
    kwargs: dict[str, Any] = {"count": OVERHEAD_REQUESTS, "warmup": OVERHEAD_WARMUP}
    http_load(direct[0], direct[1], 1, {}, **kwargs)  # warm-up
    http_load(gateway[0], gateway[1](), 1, {}, **kwargs)
    for number in range(OVERHEAD_ROUNDS):
        signed = gateway[1]()
        runs = []
        for which in ("direct", "gateway") if number % 2 == 0 else ("gateway", "direct"):
            if which == "direct":
                runs.append((which, http_load(direct[0], direct[1], 1, cpu_groups, **kwargs)))
            else:
                runs.append((which, http_load(gateway[0], signed, 1, cpu_groups, **kwargs)))
        by = dict(runs)
        directs.append(by["direct"])
        gateways.append(by["gateway"])
        diffs.append(by["gateway"].pct(0.5) - by["direct"].pct(0.5))
    return directs, gateways, diffs


def capture_overhead(
    off: Target, on: Target, concurrency: int, seconds: float
) -> tuple[list[Measure], list[Measure], list[float]]:
    """Loads off, on, off, ..., off; each "on" against the mean of its two neighbours:
    (off - on) / off * 100 per pair."""
    for target in (off, on):  # warm-up
        http_load(target.address, target.make_requests(), concurrency, {}, seconds=1.0)
    offs = [
        http_load(off.address, off.make_requests(), concurrency, off.cpu_groups, seconds=seconds)
    ]
    ons: list[Measure] = []
    overheads: list[float] = []
    for number in range(CAPTURE_PAIRS):
        measured = http_load(
            on.address, on.make_requests(), concurrency, on.cpu_groups, seconds=seconds
        )
        after = http_load(
            off.address, off.make_requests(), concurrency, off.cpu_groups, seconds=seconds
        )
        baseline = (offs[-1].rate + after.rate) / 2
        overheads.append((baseline - measured.rate) / baseline * 100)
        print(
            f"pair {number + 1}: off {offs[-1].rate:.2f}/s, on {measured.rate:.2f}/s, "
            f"off {after.rate:.2f}/s: overhead {overheads[-1]:+.1f} %",
            flush=True,
        )
        ons.append(measured)
        offs.append(after)
    return offs, ons, overheads


# Report ------------------------------------------------------------------------------------


def _other(measures: Sequence[Measure]) -> str:
    return f"{statistics.median(m.other for m in measures):.2f}"


def _cpu(measures: Sequence[Measure], name: str, digits: int = 1) -> str:
    values = [m.cpu_ms[name] for m in measures if name in m.cpu_ms]
    return f"{statistics.median(values):.{digits}f}" if values else "-"


def print_throughput(
    probes: list[Measure],
    measures: dict[str, list[Measure]],
    ratios: dict[str, list[float]],
    rayserve_key: str | None,
) -> None:
    title = f"ResNet-50/{CLASSES}, 224 px JPEG"
    print(
        f"\n{title:<26}{'img/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'vs ORT':>8}"
        f"{'client':>8}{'gateway':>9}{'model':>8}{'server':>8}{'other':>7}"
    )
    lat = [latency for m in probes for latency in m.latencies]
    print(
        f"{'in-process ORT (probe)':<26}{statistics.median(m.rate for m in probes):>7.2f}"
        f"{np.quantile(lat, 0.5) * 1e3:>8.0f}{np.quantile(lat, 0.99) * 1e3:>8.0f}"
        f"{'1.00':>8}{'':>8}{'':>9}{_cpu(probes, 'process'):>8}{'':>8}{_other(probes):>7}"
    )
    for key, runs in measures.items():
        print(
            f"{key:<26}{statistics.median(m.rate for m in runs):>7.2f}"
            f"{statistics.median(m.pct(0.5) for m in runs):>8.0f}"
            f"{statistics.median(m.pct(0.99) for m in runs):>8.0f}"
            f"{statistics.median(ratios[key]):>8.2f}{_cpu(runs, 'client'):>8}"
            f"{_cpu(runs, 'gateway'):>9}{_cpu(runs, 'model server'):>8}"
            f"{_cpu(runs, 'server'):>8}{_other(runs):>7}"
        )
    print(
        "vs ORT: median over rounds of img/s over the mean of the probes before and after.\n"
        "client/gateway/model/server: CPU ms per request (server: the whole process tree; "
        "kennel: gateway,\nRay, model servers; Ray Serve: its Ray instance); other: CPUs "
        "busy with other work meanwhile."
    )
    if rayserve_key:
        per_round = [k / r for k, r in zip(ratios["kennel c4"], ratios[rayserve_key], strict=True)]
        print(f"kennel c4 / Ray Serve c4, per round: {' '.join(f'{x:.2f}' for x in per_round)}")


def print_overhead(directs: list[Measure], gateways: list[Measure], diffs: list[float]) -> None:
    print(
        f"{'echo, 1 KB, c1':<26}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'client':>8}{'gateway':>9}{'model':>8}{'other':>7}"
    )
    for name, runs in (("direct to model server", directs), ("through gateway", gateways)):
        print(
            f"{name:<26}{statistics.median(m.rate for m in runs):>7.0f}"
            f"{statistics.median(m.pct(0.5) for m in runs):>8.3f}"
            f"{statistics.median(m.pct(0.99) for m in runs):>8.3f}"
            f"{_cpu(runs, 'client', 2):>8}{_cpu(runs, 'gateway', 2):>9}"
            f"{_cpu(runs, 'model server', 2):>8}{_other(runs):>7}"
        )
    p99 = statistics.median(
        g.pct(0.99) - d.pct(0.99) for g, d in zip(gateways, directs, strict=True)
    )
    print(f"{'overhead (gateway-direct)':<26}{'':>7}{statistics.median(diffs):>8.3f}{p99:>8.3f}")
    print(f"per-round p50 overhead ms: {' '.join(f'{d:.3f}' for d in diffs)}")
    print("client/gateway/model: CPU ms per request; other: CPUs busy with other work meanwhile.")


def print_capture(
    rows: list[tuple[str, list[Measure], list[Measure], list[float]]],
    captured: list[tuple[str, int, int]],
) -> None:
    print(
        f"\n{'data capture, c' + str(CAPTURE_CONCURRENCY):<30}{'req/s':>8}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'overhead':>10}{'client':>8}{'gateway':>9}{'model':>8}{'other':>7}"
    )
    for name, offs, ons, overheads in rows:
        for label, runs, value in (
            ("capture off", offs, ""),
            ("capture on (100 %)", ons, f"{statistics.median(overheads):+.1f} %"),
        ):
            print(
                f"{name + ' ' + label:<30}{statistics.median(m.rate for m in runs):>8.2f}"
                f"{statistics.median(m.pct(0.5) for m in runs):>8.1f}"
                f"{statistics.median(m.pct(0.99) for m in runs):>8.1f}{value:>10}"
                f"{_cpu(runs, 'client', 2):>8}{_cpu(runs, 'gateway', 2):>9}"
                f"{_cpu(runs, 'model server', 2):>8}{_other(runs):>7}"
            )
        print(f"  per-pair overhead %: {' '.join(f'{o:+.1f}' for o in overheads)}")
    for endpoint, records, files in captured:
        print(f"  {endpoint}: {records} records captured in {files} files")
    print(
        "overhead: (off - on) / off of throughput, off = mean of the loads before and after, "
        "median over pairs.\nclient/gateway/model: CPU ms per request; other: CPUs busy "
        "with other work meanwhile."
    )


BASE_ENDPOINTS = ("bench-resnet", "bench-echo")


def capture_part(
    server: Any,
    gateway: tuple[str, int],
    credentials: tuple[str, str],
    bodies: list[bytes],
    infos: dict[str, dict[str, Any]],
) -> tuple[float, list[Measure]]:
    """Part 3; returns the ResNet overhead (median over pairs) and every measure.

    The twins with capture on are made here, not at set-up: their model servers (another
    ResNet-50 among them) would otherwise sit beside parts 1 and 2 and take CPU from them.
    """
    with server.client() as api:
        create_capture_twin(api, "bench-resnet-capture", "bench-resnet")
        create_capture_twin(api, "bench-echo-capture", "bench-echo")
        for name in ("bench-resnet-capture", "bench-echo-capture"):
            infos[name] = wait_in_service(api, name)

    def target(endpoint: str, body_list: list[bytes], ctype: str) -> Target:
        path = f"/endpoints/{endpoint}/invocations"
        _, pid = instance_of(infos[endpoint])
        return Target(
            endpoint,
            gateway,
            lambda: [
                signed_request(gateway, path, b, ctype, "application/json", credentials)
                for b in body_list
            ],
            {
                "gateway": [server.process.pid],
                "model server": [pid],
                "server": process_tree(server.process.pid),
            },
        )

    rows = []
    print(
        f"\nPart 3: data capture 100 % on vs off, concurrency {CAPTURE_CONCURRENCY}, "
        f"{CAPTURE_PAIRS} pairs",
        flush=True,
    )
    resnet = capture_overhead(
        target("bench-resnet", bodies, "image/jpeg"),
        target("bench-resnet-capture", bodies, "image/jpeg"),
        CAPTURE_CONCURRENCY,
        LOAD_SECONDS,
    )
    rows.append(("ResNet-50 JPEG", *resnet))
    print("echo model, 1 KB bodies:", flush=True)
    octet = "application/octet-stream"
    echo = capture_overhead(
        target("bench-echo", [ECHO_BODY], octet),
        target("bench-echo-capture", [ECHO_BODY], octet),
        CAPTURE_CONCURRENCY,
        ECHO_CAPTURE_SECONDS,
    )
    rows.append(("echo 1 KB", *echo))
    time.sleep(1.5)  # the capture writer's last flush
    captured = [
        (name, *capture_records(server.home, name))
        for name in ("bench-resnet-capture", "bench-echo-capture")
    ]
    print_capture(rows, captured)
    measures = [m for _, offs, ons, _ in rows for m in offs + ons]
    return statistics.median(resnet[2]), measures


def main() -> None:
    started = time.monotonic()
    capture_only = "--capture-only" in sys.argv[1:]
    sys.path.insert(0, str(REPO))
    from tests._server import start_server, stop_server

    bodies = jpeg_bodies()
    results: dict[str, float] = {}
    others: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kennel-bench-serving-") as tmp:
        work = Path(tmp)
        resnet_tar, echo_tar = build_archives(work)
        server = start_server(work / "home", KENNEL_ENDPOINT_METRICS_PERIOD_SECONDS="60")
        rayserve: RayServe | None = None
        OURS.append(server.process.pid)
        try:
            with server.client() as api:
                create_endpoint(api, "bench-echo", echo_tar)
                began = time.monotonic()
                create_endpoint(api, "bench-resnet", resnet_tar)
                print(f"ResNet-50 model created (ONNX export) in {time.monotonic() - began:.0f} s")
                onnx_path = fetch_onnx(api, "bench-resnet", work / "model.onnx")
                if not SKIP_RAYSERVE and not capture_only:
                    rayserve = start_rayserve(onnx_path, work)
                    OURS.append(rayserve.process.pid)
                infos = {name: wait_in_service(api, name) for name in BASE_ENDPOINTS}
                resnet_info, echo_info = infos["bench-resnet"], infos["bench-echo"]
            credentials = server.credentials()
            gateway = ("127.0.0.1", server.port)
            resnet_address, resnet_pid = instance_of(resnet_info)
            echo_address, echo_pid = instance_of(echo_info)
            rayserve_port = 0 if rayserve is None else rayserve.wait_ready()
            print(f"set up in {time.monotonic() - started:.0f} s", flush=True)

            if not capture_only:

                def gateway_images() -> list[bytes]:
                    path = "/endpoints/bench-resnet/invocations"
                    return [
                        signed_request(
                            gateway, path, b, "image/jpeg", "application/json", credentials
                        )
                        for b in bodies
                    ]

                probe = Probe(onnx_path, bodies)
                kennel = Target(
                    "kennel",
                    gateway,
                    gateway_images,
                    {
                        "gateway": [server.process.pid],
                        "model server": [resnet_pid],
                        "server": process_tree(server.process.pid),
                    },
                )
                check = [("kennel gateway", gateway, gateway_images()[0])]
                loads = [(kennel, c) for c in CONCURRENCY]
                rayserve_key = None
                if rayserve is not None:
                    address = ("127.0.0.1", rayserve_port)
                    ray_requests = [
                        raw_request(address, "/", b, "image/jpeg", "application/json")
                        for b in bodies
                    ]
                    target = Target(
                        "Ray Serve",
                        address,
                        lambda: ray_requests,
                        {"server": process_tree(rayserve.process.pid)},
                    )
                    loads.append((target, RAYSERVE_CONCURRENCY))
                    rayserve_key = f"Ray Serve c{RAYSERVE_CONCURRENCY}"
                    check.append(("Ray Serve", address, ray_requests[0]))
                expected = probe.scores(bodies[0])
                for name, address, request in check:
                    answer = _run(_one(address, request))
                    diff = float(np.abs(np.asarray(json.loads(answer)) - expected).max())
                    print(f"{name} answers the in-process scores to max |diff| {diff:.2g}")
                    if diff > 1e-3 * float(np.abs(expected).max()):
                        raise SystemExit(f"{name} answers other scores than the model's")

                print(
                    f"\nPart 1: throughput, {ROUNDS} rounds of probe {PROBE_SECONDS:g} s / "
                    f"load {LOAD_WARMUP:g}+{LOAD_SECONDS:g} s / probe ...",
                    flush=True,
                )
                probes, measures, ratios = throughput(probe, loads)
                print_throughput(probes, measures, ratios, rayserve_key)
                results["serving_vs_ort_c4"] = statistics.median(ratios["kennel c4"])
                results["serving_vs_ort_c16"] = statistics.median(ratios["kennel c16"])
                results["serving_vs_rayserve_c4"] = float("nan")
                if rayserve_key:
                    results["serving_vs_rayserve_c4"] = statistics.median(
                        k / r
                        for k, r in zip(ratios["kennel c4"], ratios[rayserve_key], strict=True)
                    )
                    rayserve.stop()

                print(
                    f"\nPart 2: gateway overhead, echo model, {len(ECHO_BODY)} B body, "
                    f"concurrency 1, {OVERHEAD_ROUNDS} rounds of {OVERHEAD_REQUESTS} requests",
                    flush=True,
                )
                octet = "application/octet-stream"
                path = "/endpoints/bench-echo/invocations"
                directs, gateways, diffs = overhead(
                    (
                        echo_address,
                        [raw_request(echo_address, "/invocations", ECHO_BODY, octet, octet)],
                    ),
                    (
                        gateway,
                        lambda: [
                            signed_request(gateway, path, ECHO_BODY, octet, octet, credentials)
                        ],
                    ),
                    {
                        "gateway": [server.process.pid],
                        "model server": [echo_pid],
                        "server": process_tree(server.process.pid),
                    },
                )
                print_overhead(directs, gateways, diffs)
                others = [m.other for runs in measures.values() for m in runs]
                others += [m.other for m in probes + directs + gateways]
                results["gateway_overhead_p50_ms"] = statistics.median(diffs)
            begun = time.monotonic()
            overhead_pct, capture_measures = capture_part(
                server, gateway, credentials, bodies, infos
            )
            print(f"Part 3 took {time.monotonic() - begun:.0f} s")
            others += [m.other for m in capture_measures]
            results["capture_overhead_pct"] = overhead_pct
        finally:
            if rayserve is not None:
                rayserve.stop()
            stop_server(server)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if others and statistics.median(others) > NOISY_CORES:
        print(
            f"NOTE: other work kept {statistics.median(others):.2f} CPUs busy (median; up to "
            f"{max(others):.2f}) while this measured: the figures are noisy."
        )
    if not capture_only:
        print(f"RESULT serving_vs_ort_c4 {results['serving_vs_ort_c4']:.3f} goal>=1.0")
        print(f"RESULT serving_vs_ort_c16 {results['serving_vs_ort_c16']:.3f} goal>=1.0")
        print(f"RESULT serving_vs_rayserve_c4 {results['serving_vs_rayserve_c4']:.3f} goal>=1.3")
        print(f"RESULT gateway_overhead_p50_ms {results['gateway_overhead_p50_ms']:.3f} goal<=1")
    print(f"RESULT capture_overhead_pct {results['capture_overhead_pct']:.2f} goal<=5")


async def _one(address: tuple[str, int], request: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    transport, connection = await loop.create_connection(_Connection, *address)
    try:
        status, body = await asyncio.wait_for(connection.send(request), 120)
    finally:
        transport.close()
    if status != 200:
        raise RuntimeError(f"{address}: HTTP {status}: {body[:500]!r}")
    return body


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rayserve-child"]:
        rayserve_child(*sys.argv[2:5])
    else:
        main()
