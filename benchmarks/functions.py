"""Functions: cold starts, the warm invoke overhead of the gateway, provisioned bursts.

One real kennel server (a subprocess with a temporary home) and real boto3 ``lambda`` /
``iam`` clients set the functions up; the measured requests are SigV4-signed before the
clock starts and sent on a raw socket, so the client's own cost stays out of the figures.

* **Cold start** of a trivial handler and of one that creates a boto3
  ``sagemaker-runtime`` client at module level (like the dog-breed function): before
  each sample the function's configuration changes (an environment variable), so the
  invocation needs a new environment. The figure is the wall-clock time from the
  request's first byte leaving this process to the handler's first line (it returns
  ``time.time()``), so it includes the gateway, the fork, the code's init (Init
  Duration) and the dispatch. The baseline, measured in the same rounds, is what a
  process-per-environment runtime would pay: a fresh ``python -c "import boto3;
  boto3.client('sagemaker-runtime')"``; the table shows the ratio.
* **Warm overhead**: an echo handler with a 1 KB event at concurrency 1 through the
  gateway, against calling the same handler in this process (import the module, call
  ``handler(event, context)`` on the JSON-decoded event and JSON-encode the answer);
  p50(gateway) - p50(in-process) per round, median over rounds, each round between two
  in-process probes.
* **Provisioned burst**: a version behind an alias with provisioned concurrency N; once
  READY, bursts of N concurrent invocations (the handler sleeps 300 ms so they overlap);
  a cold start is an invocation whose log (``LogType=Tail``) has an ``Init Duration``.

    RESULT cold_start_trivial_p50_ms <ms> goal<=50
    RESULT cold_start_boto3_p50_ms <ms> goal<=100
    RESULT warm_overhead_p50_ms <ms> goal<=2
    RESULT provisioned_burst_cold_starts <n> goal<=0

Knobs (environment): ``KENNEL_BENCH_COLD_SAMPLES`` (per handler, default 30),
``KENNEL_BENCH_ROUNDS`` (warm rounds, default 7), ``KENNEL_BENCH_PROVISIONED`` (N,
default 4).
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httptools
import numpy as np
from serving import OURS, Measure, OtherWork, http_load, signed_request

REPO = Path(__file__).resolve().parent.parent
COLD_SAMPLES = int(os.environ.get("KENNEL_BENCH_COLD_SAMPLES", "30"))
ROUNDS = int(os.environ.get("KENNEL_BENCH_ROUNDS", "7"))
PROVISIONED = int(os.environ.get("KENNEL_BENCH_PROVISIONED", "4"))
BURSTS = 3
WARM_REQUESTS, WARM_WARMUP = 400, 50
PROBE_CALLS = 2000
SETUP_TIMEOUT = 120.0
EVENT = {"payload": "x" * 1000}

TRIVIAL = """
import time

def handler(event, context):
    started = time.time()
    return {"t": started}
"""
BOTO3 = """
import time
import boto3

client = boto3.client("sagemaker-runtime")

def handler(event, context):
    started = time.time()
    return {"t": started, "region": client.meta.region_name}
"""
ECHO = """
def handler(event, context):
    return event
"""
SLEEPY = """
import os, time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid(), "init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
"""
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def code_zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


class _Response:
    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.body = b""
        self.done = False
        self._name = ""

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


def exchange(address: tuple[str, int], request: bytes) -> tuple[float, int, dict[str, str], bytes]:
    """(send time, status, headers, body): the clock starts as the first byte leaves."""
    with socket.create_connection(address, timeout=SETUP_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        sent = time.time()
        sock.sendall(request)
        while not response.done:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            parser.feed_data(chunk)
        return sent, parser.get_status_code(), response.headers, response.body


def invoke_request(
    gateway: tuple[str, int],
    credentials: tuple[str, str],
    name: str,
    event: Any,
    *,
    qualifier: str | None = None,
    tail: bool = False,
) -> bytes:
    path = f"/2015-03-31/functions/{name}/invocations"
    if qualifier:
        path += f"?Qualifier={qualifier}"
    headers = {"X-Amz-Log-Type": "Tail"} if tail else {}
    return signed_request(
        gateway,
        path,
        json.dumps(event).encode(),
        "application/json",
        "application/json",
        credentials,
        service="lambda",
        extra_headers=headers,
    )


def wait_ready(lambda_client: Any, name: str) -> None:
    """The first invocation waits for the function host (Ray boots in the background)."""
    deadline = time.monotonic() + SETUP_TIMEOUT
    while True:
        try:
            lambda_client.invoke(FunctionName=name, Payload=b"{}")
            return
        except lambda_client.exceptions.ServiceException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def fresh_process_ms() -> float:
    """The baseline: a new Python process that imports boto3 and makes the client."""
    began = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import boto3; boto3.client('sagemaker-runtime', region_name='us-east-1')",
        ],
        check=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    )
    return (time.perf_counter() - began) * 1e3


def cold_starts(
    lambda_client: Any,
    gateway: tuple[str, int],
    credentials: tuple[str, str],
    names: dict[str, str],
) -> tuple[dict[str, list[float]], dict[str, list[float]], list[float]]:
    """Samples of cold start (ms) and Init Duration (ms) per handler, and of the baseline."""
    cold: dict[str, list[float]] = {kind: [] for kind in names}
    init: dict[str, list[float]] = {kind: [] for kind in names}
    baseline: list[float] = []
    for number in range(COLD_SAMPLES):
        baseline.append(fresh_process_ms())
        for kind, name in names.items():
            lambda_client.update_function_configuration(
                FunctionName=name, Environment={"Variables": {"SAMPLE": str(number)}}
            )
            request = invoke_request(gateway, credentials, name, {}, tail=True)
            sent, status, headers, body = exchange(gateway, request)
            if status != 200 or "x-amz-function-error" in headers:
                raise RuntimeError(f"{name}: HTTP {status}: {body[:300]!r}")
            log = base64.b64decode(headers["x-amz-log-result"]).decode()
            if "Init Duration" not in log:
                raise RuntimeError(f"{name}: sample {number} was not a cold start:\n{log}")
            cold[kind].append((json.loads(body)["t"] - sent) * 1e3)
            init[kind].append(float(log.split("Init Duration: ", 1)[1].split(" ms", 1)[0]))
    return cold, init, baseline


def in_process_probe(source: str) -> Measure:
    """Call the echo handler in this process as the runtime would (decode, call, encode)."""
    namespace: dict[str, Any] = {}
    exec(compile(source, "app.py", "exec"), namespace)
    handler = namespace["handler"]
    body = json.dumps(EVENT).encode()
    latencies = []
    others = OtherWork()
    for _ in range(PROBE_CALLS):
        began = time.perf_counter()
        json.dumps(handler(json.loads(body), None)).encode()
        latencies.append(time.perf_counter() - began)
    return Measure(0.0, latencies, {}, others.cores())


def warm_overhead(
    gateway: tuple[str, int], credentials: tuple[str, str], name: str, server_pid: int
) -> tuple[list[Measure], list[Measure], list[float]]:
    probes, loads, diffs = [], [], []
    groups = {"gateway": [server_pid]}
    http_load(
        gateway, [invoke_request(gateway, credentials, name, EVENT)], 1, {}, count=100, warmup=20
    )
    for _ in range(ROUNDS):
        before = in_process_probe(ECHO)
        request = invoke_request(gateway, credentials, name, EVENT)
        load = http_load(gateway, [request], 1, groups, count=WARM_REQUESTS, warmup=WARM_WARMUP)
        after = in_process_probe(ECHO)
        probes += [before, after]
        loads.append(load)
        diffs.append(load.pct(0.5) - (before.pct(0.5) + after.pct(0.5)) / 2)
    return probes, loads, diffs


def provisioned_bursts(
    lambda_client: Any, gateway: tuple[str, int], credentials: tuple[str, str], name: str
) -> list[int]:
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lambda_client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=PROVISIONED
    )
    deadline = time.monotonic() + SETUP_TIMEOUT
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = lambda_client.get_provisioned_concurrency_config(
            FunctionName=name, Qualifier="live"
        )
        if status["Status"] in ("READY", "FAILED"):
            break
        time.sleep(0.2)
    if status.get("Status") != "READY":
        raise RuntimeError(f"provisioned concurrency not READY: {status}")
    counts = []
    for _ in range(BURSTS):
        requests = [
            invoke_request(gateway, credentials, name, {"sleep": 0.3}, qualifier="live", tail=True)
            for _ in range(PROVISIONED)
        ]
        with ThreadPoolExecutor(PROVISIONED) as pool:
            answers = list(pool.map(lambda r: exchange(gateway, r), requests))
        cold = 0
        for _, code, headers, body in answers:
            if code != 200:
                raise RuntimeError(f"burst: HTTP {code}: {body[:300]!r}")
            if "Init Duration" in base64.b64decode(headers["x-amz-log-result"]).decode():
                cold += 1
        counts.append(cold)
        time.sleep(0.5)
    return counts


def pct(values: list[float], q: float) -> float:
    return float(np.quantile(values, q))


def main() -> None:
    started = time.monotonic()
    sys.path.insert(0, str(REPO))
    from tests._server import start_server, stop_server

    with tempfile.TemporaryDirectory(prefix="kennel-bench-functions-") as tmp:
        server = start_server(Path(tmp) / "home")
        OURS.append(server.process.pid)
        try:
            session = server.session
            iam = session.client("iam", endpoint_url=server.url, region_name="us-east-1")
            lam = session.client("lambda", endpoint_url=server.url, region_name="us-east-1")
            role = iam.create_role(
                RoleName="bench-functions", AssumeRolePolicyDocument=json.dumps(TRUST)
            )["Role"]["Arn"]
            names = {"trivial": "bench-trivial", "boto3": "bench-boto3"}
            sources = {
                "bench-trivial": TRIVIAL,
                "bench-boto3": BOTO3,
                "bench-echo": ECHO,
                "bench-sleepy": SLEEPY,
            }
            for name, source in sources.items():
                lam.create_function(
                    FunctionName=name,
                    Runtime="python3.11",
                    Role=role,
                    Handler="app.handler",
                    Code={"ZipFile": code_zip(source)},
                    MemorySize=256,
                )
            wait_ready(lam, "bench-echo")
            print(f"set up in {time.monotonic() - started:.0f} s", flush=True)
            gateway = ("127.0.0.1", server.port)
            credentials = server.credentials()

            print(f"\nCold starts: {COLD_SAMPLES} samples per handler", flush=True)
            cold, init, baseline = cold_starts(lam, gateway, credentials, names)
            print(f"{'handler':<10}{'p50 ms':>9}{'p99 ms':>9}{'init p50':>10}{'vs fresh':>10}")
            base50 = pct(baseline, 0.5)
            for kind in names:
                p50 = pct(cold[kind], 0.5)
                print(
                    f"{kind:<10}{p50:>9.1f}{pct(cold[kind], 0.99):>9.1f}"
                    f"{pct(init[kind], 0.5):>10.1f}{p50 / base50:>9.3f}x"
                )
            print(
                f"baseline: a fresh python with boto3: p50 {base50:.1f} ms, "
                f"p99 {pct(baseline, 0.99):.1f} ms"
            )

            print(f"\nWarm overhead: {ROUNDS} rounds of {WARM_REQUESTS} invocations", flush=True)
            probes, loads, diffs = warm_overhead(
                gateway, credentials, "bench-echo", server.process.pid
            )
            print(f"{'round':<7}{'gateway p50':>13}{'p99':>9}{'in-process p50':>16}{'added':>9}")
            for number, (load, diff) in enumerate(zip(loads, diffs, strict=True)):
                inproc = (probes[2 * number].pct(0.5) + probes[2 * number + 1].pct(0.5)) / 2
                print(
                    f"{number + 1:<7}{load.pct(0.5):>13.3f}{load.pct(0.99):>9.3f}"
                    f"{inproc:>16.4f}{diff:>9.3f}"
                )
            cpu = statistics.median(m.cpu_ms.get("gateway", float("nan")) for m in loads)
            client = statistics.median(m.cpu_ms.get("client", float("nan")) for m in loads)
            print(f"gateway CPU per invocation {cpu:.2f} ms, client {client:.2f} ms")

            print(f"\nProvisioned concurrency {PROVISIONED}, {BURSTS} bursts", flush=True)
            bursts = provisioned_bursts(lam, gateway, credentials, "bench-sleepy")
            print(f"cold starts per burst: {bursts}")
            others = [m.other for m in probes + loads]
        finally:
            stop_server(server)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if others and statistics.median(others) > 0.1:
        print(f"NOTE: other work kept {statistics.median(others):.2f} CPUs busy: noisy figures.")
    print(f"RESULT cold_start_trivial_p50_ms {pct(cold['trivial'], 0.5):.1f} goal<=50")
    print(f"RESULT cold_start_boto3_p50_ms {pct(cold['boto3'], 0.5):.1f} goal<=100")
    print(f"RESULT warm_overhead_p50_ms {statistics.median(diffs):.3f} goal<=2")
    print(f"RESULT provisioned_burst_cold_starts {max(bursts)} goal<=0")


if __name__ == "__main__":
    main()
