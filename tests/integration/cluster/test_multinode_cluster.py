"""kennel on a real three-node Ray cluster: a head and two workers, separate ``ray start``
processes, the workers each in a network namespace of its own behind a bridge (separate
hosts as far as addresses go; all on loopback where namespaces cannot be made).

A 2-instance training job and a 2-instance endpoint spread over the nodes; the endpoint
keeps answering when a worker node is killed and its lost instance is replaced on another;
a job that loses a node fails with a reason; function environments spread over the nodes,
keep answering when one is lost and a node that rejoins gets a function host again;
functions outlive the workers."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from tests._server import RunningServer, start_server, stop_server
from tests.conftest import SERVER_SETTINGS
from tests.integration.cluster._ray_nodes import (
    RayNode,
    auth_env,
    make_network,
    start_node,
    wait_started,
)
from tests.integration.functions.conftest import (
    BASIC_EXECUTION,
    code_zip,
    make_role,
    no_retries,
    payload_of,
    wait_active,
)

from kennel._client import KennelClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

TINY = {"arch": "small-cnn", "epochs": 1, "image-size": 16, "lr": 0.05, "batch-size": 32}
ITYPE = "ml.m5.large"  # 2 vCPU: each node below holds exactly one instance of it
NODE_CPUS = 2


@dataclass
class Cluster:
    nodes: dict[str, RayNode]
    server: RunningServer
    ips: list[str]
    """Each node's own address (head, worker-1, worker-2) when they are separate hosts."""
    address: str
    """The head's (the cluster's) address."""
    logs: Path
    ray_tmp: Path
    spaces: list[str | None]

    def node_of(self, pid: int) -> str | None:
        """Which node's process tree a process belongs to."""
        for name, node in self.nodes.items():
            if pid in node.descendants():
                return name
        return None

    def restart(self, name: str) -> None:
        """Start a lost worker node again (a new Ray node, same address)."""
        index = list(self.nodes).index(name)
        self.nodes[name], _ = start_node(
            name,
            self.logs,
            self.ray_tmp,
            head_address=self.address,
            cpus=NODE_CPUS,
            ip=self.ips[index] if self.ips else "127.0.0.1",
            namespace=self.spaces[index],
        )
        wait_started(self.nodes[name])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Ray's socket paths must stay short: a folder right under /tmp, not pytest's.
    ray_tmp = Path(tempfile.mkdtemp(prefix="kr", dir="/tmp"))
    logs = tmp_path_factory.mktemp("ray-logs")
    # Workers as separate hosts (own network namespace and address) where we may make
    # namespaces; else all on this host (Ray then uses its outward address for all).
    network = make_network(2)
    ips = [network.address(i) for i in range(3)] if network else ["127.0.0.1"] * 3
    spaces: list[str | None] = [None, *network.namespaces] if network else [None, None, None]
    nodes: dict[str, RayNode] = {}
    with contextlib.ExitStack() as cleanup:  # every step runs even if one before fails
        cleanup.callback(shutil.rmtree, ray_tmp, ignore_errors=True)
        if network is not None:
            cleanup.callback(network.remove)
        cleanup.callback(_stop_nodes, nodes)
        head, address = start_node(
            "head", logs, ray_tmp, head_address=None, cpus=NODE_CPUS, ip=ips[0]
        )
        nodes["head"] = head
        wait_started(head)
        for index, name in ((1, "worker-1"), (2, "worker-2")):  # one at a time: they
            nodes[name], _ = start_node(  # share the session folder
                name,
                logs,
                ray_tmp,
                head_address=address,
                cpus=NODE_CPUS,
                ip=ips[index],
                namespace=spaces[index],
            )
            wait_started(nodes[name])
        server = start_server(
            tmp_path_factory.mktemp("kennel-home"),
            **SERVER_SETTINGS,
            **auth_env(ray_tmp),
            RAY_ADDRESS=address,
            KENNEL_ENDPOINT_HEALTH_CHECK_SECONDS="1",
        )
        cleanup.callback(stop_server, server)
        with server.client() as api:
            _wait(lambda: _ray_nodes(api) == 3, 180, "kennel to see the three nodes")
        yield Cluster(nodes, server, ips if network else [], address, logs, ray_tmp, spaces)


def _stop_nodes(nodes: dict[str, RayNode]) -> None:
    for node in nodes.values():  # SIGTERM all first: each drains for a while
        node.descendants()
        if node.process.poll() is None:
            node.process.terminate()
    for node in nodes.values():
        node.stop()


def _listening(pid: int, port: int) -> set[str]:
    """The IPv4 addresses a process listens on at ``port``, read in its own network
    namespace (``/proc/<pid>/net/tcp``; psutil reads the caller's namespace)."""
    found = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        host, port_hex = fields[1].split(":")
        if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(host)[::-1]))
    return found


def _ray_nodes(api: KennelClient) -> int:
    ray = api.get("/api/v1/status")["ray"]
    return int(ray.get("nodes", 0)) if ray["state"] == "running" else 0


def _wait(check: Any, timeout: float, what: str, pause: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _job_done(api: KennelClient, name: str) -> dict[str, Any] | None:
    job: dict[str, Any] = api.get(f"/api/v1/training-jobs/{name}")
    return None if job["status"] in ("InProgress", "Stopping") else job


def _instances(api: KennelClient, endpoint: str) -> list[dict[str, Any]]:
    info = api.get(f"/api/v1/endpoints/{endpoint}")
    return list(info["production_variants"][0]["instances"])


WHERE_AM_I = """\
import os, socket, time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((os.environ["PROBE_IP"], 9))  # UDP: no packet is sent
        return {"ip": probe.getsockname()[0], "pid": os.getpid()}
"""


def _invoke_together(fn: Any, count: int, sleep: float) -> list[dict[str, Any]]:
    """``count`` invocations at once (each sleeps, so each needs an environment)."""
    payload = json.dumps({"sleep": sleep}).encode()
    with ThreadPoolExecutor(count) as pool:
        answers = list(
            pool.map(lambda _: fn.invoke(FunctionName="mn-where", Payload=payload), range(count))
        )
    return [{"error": a.get("FunctionError"), **payload_of(a)} for a in answers]


def test_function_environments_spread_over_nodes_and_survive_a_lost_node(
    cluster: Cluster,
) -> None:
    """Runs first: three nodes. The worker it kills joins again at the end."""
    session = cluster.server.session
    iam, fn = (
        session.client(
            name, endpoint_url=cluster.server.url, region_name="us-east-1", config=no_retries()
        )
        for name in ("iam", "lambda")
    )
    probe_ip = cluster.ips[0] if cluster.ips else "127.0.0.1"
    fn.create_function(
        FunctionName="mn-where",
        Runtime="python3.11",
        Role=make_role(iam, "mn-where-role", BASIC_EXECUTION),
        Handler="app.handler",
        Code={"ZipFile": code_zip({"app.py": WHERE_AM_I})},
        Environment={"Variables": {"PROBE_IP": probe_ip}},
        Timeout=30,
    )
    wait_active(fn, "mn-where", timeout=60)
    log = cluster.server.log
    _wait(
        lambda: log.read_text(errors="replace").count("function host ready at") >= 3,
        120,
        "a function host on each node",
    )

    answers = _invoke_together(fn, 3, 2.0)
    assert not [a for a in answers if a["error"]], answers
    nodes = {cluster.node_of(a["pid"]) for a in answers}
    print(f"environments: {answers} on {nodes}")
    assert len(nodes) >= 2 and None not in nodes, (answers, nodes)
    if cluster.ips:  # each environment speaks from its own node's address
        assert len({a["ip"] for a in answers}) >= 2, answers
        assert {a["ip"] for a in answers} <= set(cluster.ips), answers

    victim = next(n for n in sorted(n for n in nodes if n) if n != "head")
    cluster.nodes[victim].kill()
    killed_at = time.monotonic()
    outcomes: list[tuple[float, bool]] = []
    deadline = killed_at + 120
    while time.monotonic() < deadline:
        good = [a for a in _invoke_together(fn, 3, 0.2) if not a["error"]]
        outcomes.append((time.monotonic() - killed_at, len(good) == 3))
        if len(outcomes) >= 3 and all(ok for _, ok in outcomes[-3:]):
            assert all(cluster.node_of(a["pid"]) != victim for a in good), good
            break
        time.sleep(0.5)
    print(f"after killing {victim}: {outcomes}")
    assert all(ok for _, ok in outcomes[-3:]), outcomes

    # The node joins again (a new Ray node): kennel starts a function host on it.
    hosts_before = log.read_text(errors="replace").count("function host ready at")
    cluster.restart(victim)
    with cluster.server.client() as api:
        _wait(lambda: _ray_nodes(api) == 3, 180, "kennel to see the node again")
    _wait(
        lambda: log.read_text(errors="replace").count("function host ready at") > hosts_before,
        120,
        "a function host on the node that joined",
    )
    fn.delete_function(FunctionName="mn-where")


def test_job_and_endpoint_spread_over_nodes_and_survive_a_lost_node(cluster: Cluster) -> None:
    server = cluster.server
    with server.client() as api:
        api.post("/api/v1/datasets", {"name": "mn-digits", "demo": {"image_size": 16}})
        api.post(
            "/api/v1/training-jobs",
            {
                "name": "mn-job",
                "dataset": "mn-digits",
                "hyperparameters": TINY,
                "instance_count": 2,
                "instance_type": ITYPE,
            },
        )
        job = _wait(lambda: _job_done(api, "mn-job"), 900, "the training job", pause=2)
        assert job["status"] == "Completed", job["failure_reason"]
        placed = job["placement"]["nodes"]
        assert set(placed) == {"algo-1", "algo-2"}
        assert placed["algo-1"]["node_id"] != placed["algo-2"]["node_id"], placed
        assert all(p["node_ip"] for p in placed.values()), placed
        if cluster.ips:  # separate hosts: separate addresses, and DDP across them
            assert placed["algo-1"]["node_ip"] != placed["algo-2"]["node_ip"], placed
        log = api.get("/api/v1/training-jobs/mn-job/logs", params={"host": "algo-1"})["data"]
        assert "world_size=2" in log

        api.post("/api/v1/models", {"name": "mn-model", "artifact_uri": job["model_artifact_uri"]})
        variant = {"model_name": "mn-model", "initial_instance_count": 2, "instance_type": ITYPE}
        api.post("/api/v1/endpoint-configs", {"name": "mn-cfg", "variants": [variant]})
        api.post("/api/v1/endpoints", {"name": "mn-ep", "config_name": "mn-cfg"})
        info = _wait(
            lambda: (e := api.get("/api/v1/endpoints/mn-ep"))["status"] != "Creating" and e,
            600,
            "the endpoint",
            pause=2,
        )
        assert info["status"] == "InService", info
        instances = _instances(api, "mn-ep")
        assert len(instances) == 2
        assert instances[0]["node_id"] != instances[1]["node_id"], instances
        if cluster.ips:  # the gateway reaches each on its own node's address
            assert {i["address"].rsplit(":", 1)[0] for i in instances} == {
                i["node_ip"] for i in instances
            }
            assert len({i["node_ip"] for i in instances}) == 2
            for instance in instances:  # offered on its node's address only
                port = int(instance["address"].rsplit(":", 1)[1])
                listening = _listening(instance["pid"], port)
                assert listening == {instance["node_ip"]}, (instance, listening)
        image = next((server.home / "artifacts" / "datasets" / "mn-digits" / "test").rglob("*.jpg"))
        runtime = server.session.client(
            "sagemaker-runtime",
            endpoint_url=server.url,
            region_name="us-east-1",
            config=Config(
                retries={"total_max_attempts": 1},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

        def invoke() -> bool:
            try:
                answer = runtime.invoke_endpoint(
                    EndpointName="mn-ep", ContentType="image/jpeg", Body=image.read_bytes()
                )
                return bool(answer["Body"].read())
            except Exception:  # noqa: BLE001 - a failed invocation is what is counted
                return False

        assert all(invoke() for _ in range(4))

        # Lose a worker node that holds one of the endpoint's instances.
        where = {i["id"]: cluster.node_of(i["pid"]) for i in instances}
        victim_id, victim = next((i, n) for i, n in where.items() if n and n != "head")
        lost_node = next(i["node_id"] for i in instances if i["id"] == victim_id)
        cluster.nodes[victim].kill()
        killed_at = time.monotonic()
        outcomes: list[tuple[float, bool]] = []
        replaced: list[dict[str, Any]] = []
        deadline = killed_at + 300
        while time.monotonic() < deadline:
            outcomes.append((time.monotonic() - killed_at, invoke()))
            now = _instances(api, "mn-ep")
            healthy = [i for i in now if i["healthy"]]
            if len(healthy) == 2 and victim_id not in {i["id"] for i in now}:
                replaced = healthy
                if sum(ok for _, ok in outcomes[-5:]) == 5:
                    break
            time.sleep(0.2)
        failures = [t for t, ok in outcomes if not ok]
        print(
            f"after killing {victim}: {len(outcomes)} invocations, {len(failures)} failed "
            f"(last failure at {max(failures, default=0):.1f} s); instances now {replaced}"
        )
        assert replaced, f"the lost instance was not replaced: {_instances(api, 'mn-ep')}"
        assert all(i["node_id"] != lost_node for i in replaced), replaced
        assert all(ok for _, ok in outcomes[-5:]), outcomes[-10:]
        assert len(failures) <= max(10, len(outcomes) // 2), outcomes

        api.delete("/api/v1/endpoints/mn-ep")


def test_a_job_that_loses_a_node_fails_cleanly(cluster: Cluster) -> None:
    """Runs after the test above (which lost a worker): the job's two instances take the
    head and the last worker, and that worker is killed while it trains."""
    alive = [n for n, node in cluster.nodes.items() if n != "head" and node.process.poll() is None]
    assert alive, "no worker node is left"
    with cluster.server.client() as api:
        _wait(lambda: not api.get("/api/v1/endpoints")["endpoints"], 120, "no endpoint left")
        if not any(d["name"] == "mn-digits" for d in api.get("/api/v1/datasets")["datasets"]):
            api.post("/api/v1/datasets", {"name": "mn-digits", "demo": {"image_size": 16}})
        api.post(
            "/api/v1/training-jobs",
            {
                "name": "mn-long",
                "dataset": "mn-digits",
                "hyperparameters": {**TINY, "epochs": 500},
                "instance_count": 2,
                "instance_type": ITYPE,
                "max_runtime_seconds": 900,
            },
        )
        _wait(
            lambda: api.get("/api/v1/training-jobs/mn-long")["secondary_status"] == "Training",
            300,
            "the job to train",
        )
        time.sleep(3)
        cluster.nodes[alive[0]].kill()
        killed_at = time.monotonic()
        job = _wait(lambda: _job_done(api, "mn-long"), 300, "the job to end", pause=1)
        reason = job["failure_reason"]
        print(f"job ended {time.monotonic() - killed_at:.1f} s after the node: {reason}")
        assert job["status"] == "Failed", job
        assert "was lost while training" in job["failure_reason"], job["failure_reason"]


def test_functions_run_beside_the_gateway_and_outlive_worker_nodes(cluster: Cluster) -> None:
    """Runs last, when both workers are gone: the function host lives on the server's node."""
    session = cluster.server.session
    clients = {
        name: session.client(
            name, endpoint_url=cluster.server.url, region_name="us-east-1", config=no_retries()
        )
        for name in ("iam", "lambda")
    }
    role = make_role(clients["iam"], "mn-fn-role", BASIC_EXECUTION)
    clients["lambda"].create_function(
        FunctionName="mn-fn",
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code_zip({"app.py": "def handler(event, context):\n    return event\n"})},
    )
    wait_active(clients["lambda"], "mn-fn", timeout=60)
    if cluster.ips:
        log = cluster.server.log.read_text(errors="replace")
        assert f"function host ready at {cluster.ips[0]}:" in log
    answer = clients["lambda"].invoke(FunctionName="mn-fn", Payload=b'{"ping": 1}')
    assert payload_of(answer) == {"ping": 1}
