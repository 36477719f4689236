"""Probe: kennel's model server vs an in-process ONNX Runtime loop, on a ResNet-50.

Not part of ``make bench`` (the leading underscore keeps it out): it takes minutes and
is for tuning the model server's fast path for the built-in trainer's image models.

It writes a random-weight ResNet-50 built-in model dir (133 classes, 224x224), exports it
to ONNX with ``kennel.endpoints._onnx.export_onnx``, starts one ``kennel serve-model``
process per ``--server`` spec and then, in interleaved rounds (each measurement after
its own warm-up), measures

* (a) an in-process loop: decode a 224x224 JPEG, preprocess it, ``session.run`` at
  batch 1 with ONNX Runtime's default threads; images/s;
* (b) HTTP POSTs of the same JPEG bodies to each server at concurrency 4 and 16 over
  keep-alive connections (a minimal asyncio HTTP/1.1 client, so the client takes little
  of the CPU the server needs); images/s and p50/p99 latency.

It prints the median over rounds and the ratio b/a. Other work on the machine shows up
as spread between rounds; the per-round numbers are printed too.

    .venv/bin/python benchmarks/_model_server_probe.py --rounds 5 \\
        --server auto --server 1x2:SAGEMAKER_MODEL_SERVER_WORKERS=1,KENNEL_MODEL_THREADS=2
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageFilter

CLASSES = 133
IMAGE_SIZE = 224
START_TIMEOUT = 180.0
TUNING_VARIABLES = (
    "KENNEL_MODEL_THREADS",
    "KENNEL_INSTANCE_VCPUS",
    "KENNEL_MAX_BATCH_SIZE",
    "KENNEL_MAX_BATCH_DELAY_MS",
)


@dataclass
class Server:
    name: str
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None


@dataclass
class Load:
    """One HTTP measurement: throughput and latencies of the requests in the window."""

    images_per_second: float
    latencies: list[float] = field(default_factory=list)
    cpu_per_image: float = float("nan")
    """CPU seconds the measured process spent per image (all its threads)."""

    def percentile(self, q: float) -> float:
        return float(np.quantile(self.latencies, q)) if self.latencies else float("nan")


# The model and the inputs -----------------------------------------------------------------


def build_model_dir(root: Path, arch: str) -> Path:
    from kennel.endpoints._onnx import export_onnx
    from kennel.trainer._package import write_model_dir
    from kennel.trainer.inference import build_network

    model_dir = root / "model"
    classes = [f"{i:03d}.breed{i}" for i in range(1, CLASSES + 1)]
    config = {"arch": arch, "image_size": IMAGE_SIZE}
    write_model_dir(model_dir, build_network(arch, len(classes)), classes, config)
    exported = export_onnx(model_dir)
    print(
        f"model: {arch}, {CLASSES} classes; ONNX export {exported.seconds:.1f} s, "
        f"max |onnx - torch| {exported.max_abs_diff:.2g} (allowed {exported.tolerance:.2g}), "
        f"{exported.path.stat().st_size / 2**20:.0f} MB"
    )
    return model_dir


def jpeg_bodies(count: int = 8, seed: int = 0) -> list[bytes]:
    """Photo-like 224x224 JPEGs: smooth colour fields plus blurred noise, quality 90."""
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        field_ = Image.fromarray(coarse).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
        noise = Image.fromarray(rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8))
        image = Image.blend(field_, noise.filter(ImageFilter.GaussianBlur(1.5)), 0.3)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        bodies.append(buffer.getvalue())
    return bodies


# (a) the in-process loop ------------------------------------------------------------------


def in_process_loop(model_dir: Path, bodies: list[bytes], warmup: float, seconds: float) -> Load:
    """Images/s of decode + preprocess + ``session.run`` (batch 1, ORT default threads)."""
    import onnxruntime as ort  # type: ignore[import-untyped, unused-ignore]

    from kennel.endpoints._image import Preprocessor

    session = ort.InferenceSession(
        str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    preprocess = Preprocessor(IMAGE_SIZE)
    started = time.perf_counter()
    window_start = started + warmup
    end = window_start + seconds
    done = 0
    index = 0
    cpu_start = None
    while True:
        image = Image.open(io.BytesIO(bodies[index % len(bodies)])).convert("RGB")
        session.run(None, {name: preprocess(image)[None]})
        index += 1
        now = time.perf_counter()
        if now >= end:
            break
        if now >= window_start:
            if cpu_start is None:
                cpu_start = time.process_time()
            else:
                done += 1
    cpu = time.process_time() - (cpu_start or 0.0)
    return Load(done / seconds, cpu_per_image=cpu / max(done, 1))


# (b) HTTP load ----------------------------------------------------------------------------


def _request(port: int, body: bytes) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: image/jpeg\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all threads), from /proc; NaN where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http_load(
    port: int, bodies: list[bytes], concurrency: int, warmup: float, seconds: float, pid: int
) -> Load:
    requests = [_request(port, body) for body in bodies]
    loop = asyncio.get_running_loop()
    started = loop.time()
    window = (started + warmup, started + warmup + seconds)
    finished: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def client(number: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            index = number
            while not stop.is_set():
                sent = loop.time()
                writer.write(requests[index % len(requests)])
                await writer.drain()
                status = await _read_response(reader)
                if status != 200:
                    raise RuntimeError(f"the server answered {status}")
                finished.append((loop.time(), loop.time() - sent))
                index += concurrency
        finally:
            writer.close()

    clients = [asyncio.create_task(client(n)) for n in range(concurrency)]
    await asyncio.sleep(window[0] - loop.time())
    cpu_start = process_cpu_seconds(pid)
    await asyncio.sleep(window[1] - loop.time())
    cpu = process_cpu_seconds(pid) - cpu_start
    stop.set()  # every client finishes its request in flight, so none is left running
    await asyncio.wait_for(asyncio.gather(*clients), timeout=120)
    inside = [latency for at, latency in finished if window[0] <= at < window[1]]
    return Load(len(inside) / seconds, inside, cpu / max(len(inside), 1))


# Servers ----------------------------------------------------------------------------------


def parse_server(spec: str) -> Server:
    """``name`` or ``name:VAR=value,VAR=value``."""
    name, _, settings = spec.partition(":")
    env = dict(item.split("=", 1) for item in settings.split(",") if item)
    return Server(name, env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(server: Server, model_dir: Path, logs: Path) -> None:
    server.port = free_port()
    server.log = logs / f"{server.name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    for name in TUNING_VARIABLES:
        env.pop(name, None)
    env.update(server.env, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "kennel", "serve-model", "--model-dir", str(model_dir)]
    command += ["--port", str(server.port)]
    with server.log.open("wb") as out:
        server.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=2.0) as client:
        while time.monotonic() < deadline:
            assert server.process is not None and server.log is not None
            if server.process.poll() is not None:
                raise SystemExit(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
            try:
                if client.get("/ping").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise SystemExit(f"{server.name} not ready after {START_TIMEOUT} s")


def describe(server: Server) -> str:
    assert server.log is not None
    for line in server.log.read_text().splitlines():
        if "intra-op threads" in line and "model:" in line:
            return line.split(" INFO ", 1)[-1].split(" ", 1)[-1]
    return "?"


def stop_server(server: Server) -> None:
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=15)


# Main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured lead-in")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        help="name[:VAR=value,...] environment of one model server (repeatable); "
        "default: one server with the defaults",
    )
    args = parser.parse_args()
    servers = [parse_server(spec) for spec in args.server or ["auto"]]
    bodies = jpeg_bodies()
    with tempfile.TemporaryDirectory(prefix="kennel-probe-") as tmp:
        root = Path(tmp)
        model_dir = build_model_dir(root, args.arch)
        try:
            for server in servers:
                start(server, model_dir, root)
            for server in servers:
                wait_ready(server)
                print(f"server {server.name}: {describe(server)}")
            run_rounds(args, servers, model_dir, bodies)
        finally:
            for server in servers:
                stop_server(server)


def run_rounds(
    args: argparse.Namespace, servers: list[Server], model_dir: Path, bodies: list[bytes]
) -> None:
    loops: list[Load] = []
    loads: dict[tuple[str, int], list[Load]] = {}
    for number in range(args.rounds):
        order = [(s, c) for s in servers for c in args.concurrency]
        if number % 2:  # alternate the order, so a drift in background load evens out
            order.reverse()
        loops.append(in_process_loop(model_dir, bodies, args.warmup, args.seconds))
        line = [f"round {number + 1}: loop {loops[-1].images_per_second:.2f}/s"]
        for server, concurrency in order:
            assert server.process is not None
            pid = server.process.pid
            load = asyncio.run(
                http_load(server.port, bodies, concurrency, args.warmup, args.seconds, pid)
            )
            loads.setdefault((server.name, concurrency), []).append(load)
            line.append(f"{server.name} c{concurrency} {load.images_per_second:.2f}/s")
        print(", ".join(line), flush=True)
    summarise(loops, loads)


def summarise(loops: list[Load], loads: dict[tuple[str, int], list[Load]]) -> None:
    """Medians over rounds; b/a per round compares measurements minutes apart at most."""
    baseline = statistics.median(loop.images_per_second for loop in loops)
    loop_cpu = statistics.median(loop.cpu_per_image for loop in loops)
    print(
        f"\n(a) in-process ORT loop (batch 1, default threads): {baseline:.2f} images/s, "
        f"{loop_cpu * 1000:.0f} ms CPU/image (medians of {len(loops)} rounds)"
    )
    header = ("server", "conc", "img/s", "b/a", "b/a rnd", "p50 s", "p99 s", "CPU ms/img")
    print("{:>12} {:>4} {:>7} {:>6} {:>8} {:>6} {:>6} {:>10}".format(*header))
    for (name, concurrency), runs in loads.items():
        rate = statistics.median(run.images_per_second for run in runs)
        per_round = statistics.median(
            run.images_per_second / loop.images_per_second
            for run, loop in zip(runs, loops, strict=True)
        )
        p50 = statistics.median(run.percentile(0.5) for run in runs)
        p99 = statistics.median(run.percentile(0.99) for run in runs)
        cpu = statistics.median(run.cpu_per_image for run in runs)
        print(
            f"{name:>12} {concurrency:>4} {rate:>7.2f} {rate / baseline:>6.2f} "
            f"{per_round:>8.2f} {p50:>6.3f} {p99:>6.3f} {cpu * 1000:>10.0f}"
        )


if __name__ == "__main__":
    main()
