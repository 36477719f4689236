"""Where invocations meet execution environments: pools, concurrency, throttling.

The dispatcher lives in the gateway process, on its event loop (one gateway per cluster
is assumed, as for endpoint routing): it is the one place that knows how many
environments of each function are busy, so reserved and account concurrency are
counted here, without a round trip anywhere.

* **Environments** are forked by a template process per node (``_template.py``, run by
  a :class:`~kennel.functions._host.FunctionHost` Ray actor). The gateway opens a
  connection to the template and asks for a fork; the child keeps that connection, so
  every later invocation is one frame out and one frame back on a warm socket.
* **Pools.** On-demand environments are keyed by (function, version, revision): an
  update of ``$LATEST`` changes the revision, new invocations start fresh environments,
  and the old ones finish what they run and are closed by the reaper (no in-flight
  invocation is dropped). Provisioned environments are kept per (function, qualifier)
  and tried first; beyond them invocations spill over to on-demand environments.
* **Concurrency** is the number of busy environments. A function with reserved
  concurrency R may have R busy; the others share the account limit minus all
  reservations. Over it: Lambda's 429 TooManyRequestsException with its Reason.
* **Asynchronous invocations** are rows in ``lambda_events`` before the 202 goes out
  (so none is lost when the server stops); a worker runs due events, retries a failed
  one after the configured delays (``function_async_retry_delays``), reschedules a
  throttled one without counting an attempt, and keeps the last error of an event that
  ran out of attempts (the on-failure record).
* **Logs and metrics**: each invocation's START..REPORT text is a row of ``lambda_logs``
  (written in bulk by a background thread); counters become MetricSample rows every
  period (Invocations, Errors, Throttles, Duration, ConcurrentExecutions, ColdStarts,
  ProvisionedConcurrencyUtilization).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from kennel.functions._envclient import (
    EnvironmentClient,
    EnvironmentLost,
    InvokeResult,
    kill,
    spawn,
)
from kennel.store._histogram import Histogram
from kennel.store._models import LambdaEvent, LambdaLog, MetricSample

if TYPE_CHECKING:
    from kennel._settings import Settings
    from kennel.cluster import RayCluster
    from kennel.functions._service import FunctionService, ProvisionedConfig, ResolvedFunction
    from kennel.iam._service import IamService
    from kennel.store import Database

log = logging.getLogger(__name__)

TIMEOUT_GRACE_SECONDS = 2.0
"""The environment ends a timed-out invocation itself; past this, the gateway kills it."""
CREDENTIAL_MARGIN_SECONDS = 120.0
REAP_EVERY_SECONDS = 0.25
ASYNC_CONCURRENCY = 32
THROTTLE_RETRY_SECONDS = (0.2, 2.0)
LOG_FLUSH_SECONDS = 0.25
CONFIG_RELOAD_SECONDS = 5.0
"""Provisioned-concurrency configs are re-read on every change, and at least this often."""
HOST_START_GRACE_SECONDS = 30.0
"""How long stopping waits for a function host still starting (see :meth:`stop`)."""
HOST_CHECK_SECONDS = 5.0
"""On a cluster, how often hosts are checked and nodes that joined get one."""
HOST_PING_TIMEOUT_SECONDS = 10.0
TAIL_BYTES = 4096


class Throttled(Exception):
    """Lambda's 429: the function's (or the account's) concurrency is all in use."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SpawnFailed(Exception):
    """No environment could be started (no template running, code unreadable, ...)."""


@dataclass(eq=False)
class Env:
    client: EnvironmentClient
    key: tuple[str, str, str]
    """(function, version, revision): which configuration this environment runs."""
    host: tuple[str, int]
    credentials_expire: float
    provisioned: str | None = None
    """The qualifier this environment is provisioned for, or None (on demand)."""
    started: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    busy: bool = False
    invocations: int = 0
    stream: str = ""


@dataclass(eq=False)
class _Host:
    """A FunctionHost actor on one node, and how many live environments it holds."""

    address: str
    port: int
    actor: Any
    node_id: str
    cpus: float
    envs: int = 0

    @property
    def where(self) -> tuple[str, int]:
        return self.address, self.port

    @property
    def load(self) -> float:
        """Live environments per CPU of the node: a new environment goes to the lowest."""
        return self.envs / self.cpus


@dataclass
class Outcome:
    """One invocation's result as the API layer answers it."""

    result: InvokeResult
    executed_version: str
    cold: bool
    request_id: str
    handler_started_ms: float = 0.0

    @property
    def function_error(self) -> str | None:
        return None if self.result.kind == "ok" else "Unhandled"

    def tail(self) -> str:
        raw = self.result.log.encode()
        return raw[-TAIL_BYTES:].decode("utf-8", errors="ignore")


@dataclass
class _Counters:
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    durations: list[float] = field(default_factory=list)
    max_concurrency: int = 0
    provisioned_busy_max: int = 0
    provisioned_allocated: int = 0


@dataclass(eq=False)
class FunctionTotals:
    """A function's running totals since the server started (``/metrics`` reads them);
    written on the event loop only, never reset."""

    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    duration: Histogram = field(default_factory=Histogram)


@dataclass(frozen=True)
class RuntimeGauges:
    """What the runtime holds right now, per function and per provisioned config."""

    concurrent: dict[str, int]
    """Function -> invocations running now (busy environments)."""
    environments: dict[str, int]
    """Function -> execution environments alive (idle, busy and provisioned)."""
    provisioned: dict[tuple[str, str], tuple[int, int]]
    """(function, qualifier) -> (environments ready, of which busy)."""


class FunctionRuntime:
    """Runs invocations of functions in execution environments (see the module doc)."""

    def __init__(
        self,
        functions: FunctionService,
        iam: IamService,
        ray: RayCluster,
        settings: Settings,
        db: Database,
        *,
        account_id: str,
        region: str,
    ) -> None:
        self.functions = functions
        self.iam = iam
        self.ray = ray
        self.settings = settings
        self.db = db
        self.account_id = account_id
        self.region = region
        self.gateway_url = settings.resolved_endpoint_url
        self.gateway_ca_pem = _read_ca_bundle(settings)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._hosts: list[_Host] = []
        """Server's node first; on a cluster one per alive node with CPUs."""
        self._hosts_ready: asyncio.Event | None = None
        self._host_error: str | None = None
        self._hosts_checked = 0.0
        self._syncing: asyncio.Task[None] | None = None
        self._idle: dict[tuple[str, str, str], list[Env]] = defaultdict(list)
        self._provisioned: dict[tuple[str, str], list[Env]] = defaultdict(list)
        self._provisioning: dict[tuple[str, str], int] = defaultdict(int)
        self._provision_failed: dict[tuple[str, str], str] = {}
        self._provision_states: dict[tuple[str, str], tuple[int, str, str]] = {}
        self._all: set[Env] = set()
        self._busy: dict[str, int] = defaultdict(int)
        self._unreserved_busy = 0
        self._credentials: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
        self._credential_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._counters: dict[str, _Counters] = defaultdict(_Counters)
        self.totals: dict[str, FunctionTotals] = defaultdict(FunctionTotals)
        """Function -> running totals since the server started."""
        self.last_period: dict[str, dict[str, float]] = {}
        """Function -> the values of its latest metric period (replaced whole)."""
        self._period_started = time.time()
        self._tasks: list[asyncio.Task[None]] = []
        self._async_wakeup: asyncio.Event | None = None
        self._async_running: set[str] = set()
        self._log_rows: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._log_stop = threading.Event()
        self._log_thread: threading.Thread | None = None
        self._seen_generation = -1
        self._configs: list[ProvisionedConfig] = []
        self._configs_loaded = 0.0
        self._retry_delays = _delays(settings.function_async_retry_delays)
        self.stats = {"cold_starts": 0, "warm_starts": 0, "throttles": 0}

    # --- life ------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._hosts_ready = asyncio.Event()
        self._async_wakeup = asyncio.Event()
        await asyncio.to_thread(self._recover_events)
        self._log_thread = threading.Thread(target=self._log_writer, name="fn-logs", daemon=True)
        self._log_thread.start()
        self._tasks = [
            asyncio.create_task(self._start_hosts()),
            asyncio.create_task(self._housekeeping()),
            asyncio.create_task(self._async_worker()),
        ]

    async def stop(self) -> None:
        # A host start in flight runs on in its thread even when its task is cancelled,
        # and would call into Ray after Ray stops (Ray then ends the whole process, exit
        # code 1): let it finish, so the host it started is stopped below with the rest.
        starting = {t for t in (*self._tasks[:1], self._syncing) if t is not None}
        if starting:
            await asyncio.wait(starting, timeout=HOST_START_GRACE_SECONDS)
        tasks = [*self._tasks, *([self._syncing] if self._syncing is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for env in list(self._all):
            await self._discard(env)
        self._log_stop.set()
        if self._log_thread is not None:
            await asyncio.to_thread(self._log_thread.join, 10)
        await asyncio.to_thread(self.flush_metrics)
        await asyncio.to_thread(self._stop_hosts)

    async def _start_hosts(self) -> None:
        assert self._hosts_ready is not None
        try:
            if not await asyncio.to_thread(self.ray.wait, 600):
                raise SpawnFailed(f"Ray is not running: {self.ray.error}")
            await self._sync_hosts()
        except Exception as exc:  # noqa: BLE001 - reported on every invocation that needs it
            self._host_error = f"{type(exc).__name__}: {exc}"
            log.error("the function hosts did not start: %s", self._host_error)
        self._hosts_checked = time.monotonic()
        self._hosts_ready.set()

    async def _sync_hosts(self) -> None:
        """Drop hosts that stopped answering or whose node is gone; start one on each
        node without one (locally: just the one host, started once)."""
        nodes = await asyncio.to_thread(self._nodes)
        hosts = list(self._hosts)
        answers = await asyncio.gather(*(asyncio.to_thread(self._answers, h) for h in hosts))
        for host, ok in zip(hosts, answers, strict=True):
            if not ok or host.node_id not in nodes:
                await self._drop_host(host)
        missing = [(n, c) for n, c in nodes.items() if n not in {h.node_id for h in self._hosts}]
        started = await asyncio.gather(
            *(asyncio.to_thread(self._start_host, n, c) for n, c in missing),
            return_exceptions=True,
        )
        for new in started:
            if isinstance(new, BaseException):
                self._host_error = f"{type(new).__name__}: {new}"
                log.error("a function host did not start: %s", self._host_error)
            else:
                self._hosts.append(new)
                self._host_error = None

    def _nodes(self) -> dict[str, float]:
        """Node id -> CPUs of the nodes that should have a host, the server's first."""
        import ray

        own = ray.get_runtime_context().get_node_id()
        cpus = {
            n["NodeID"]: float(n.get("Resources", {}).get("CPU", 0))
            for n in ray.nodes()
            if n.get("Alive")
        }
        if self.ray.mode == "local":
            return {own: cpus.get(own) or 1.0}
        return {own: cpus.get(own) or 1.0} | {n: c for n, c in cpus.items() if c > 0}

    def _answers(self, host: _Host) -> bool:
        import ray

        try:
            return ray.get(host.actor.poll.remote(), timeout=HOST_PING_TIMEOUT_SECONDS) is None
        except Exception as exc:  # noqa: BLE001 - any failure: the host is lost
            log.warning("function host at %s:%s is not answering: %s", *host.where, exc)
            return False

    async def _drop_host(self, host: _Host) -> None:
        log.warning("function host at %s:%s (node %s) removed", *host.where, host.node_id)
        self._hosts.remove(host)
        for env in [e for e in self._all if e.host == host.where and not e.busy]:
            await self._discard(env)
        await asyncio.to_thread(self._kill_actors, [host.actor], 5)

    def _start_host(self, node_id: str, cpus: float) -> _Host:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from kennel.functions._host import FunctionHost

        local = self.ray.mode == "local"
        # Hard affinity: a soft one did not keep a 0-CPU actor on its node (Ray 2.60); a
        # host whose node dies is dropped by _sync_hosts. The server's own node's host
        # keeps functions answering while worker nodes come and go.
        on_node = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
        actor = (
            ray.remote(FunctionHost)
            .options(
                num_cpus=0,
                max_concurrency=2,
                name=None,
                scheduling_strategy="DEFAULT" if local else on_node,
            )
            .remote("127.0.0.1" if local else "0.0.0.0")
        )
        try:
            address, port, _pid = ray.get(actor.start.remote(), timeout=120)
        except Exception:
            self._kill_actors([actor], 5)
            raise
        log.info("function host ready at %s:%s", address, port)
        return _Host(address, port, actor, node_id, cpus)

    def _kill_actors(self, actors: list[Any], timeout: float) -> None:
        import ray

        refs = [actor.terminate.remote() for actor in actors]
        with contextlib.suppress(Exception):
            ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for actor in actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)

    def _stop_hosts(self) -> None:
        if not self._hosts or self.ray.state != "running":
            return
        self._kill_actors([host.actor for host in self._hosts], 30)
        self._hosts.clear()

    async def _host(self, avoid: _Host | None = None) -> _Host:
        """The host for a new environment: the least loaded per CPU (counted from here)."""
        assert self._hosts_ready is not None
        if not self._hosts_ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._hosts_ready.wait(), self.settings.function_spawn_timeout_seconds
                )
        hosts = [h for h in self._hosts if h is not avoid] or self._hosts
        if not hosts:
            raise SpawnFailed(
                "No function host is running"
                + (f" ({self._host_error})" if self._host_error else " yet (Ray is starting)")
            )
        host = min(hosts, key=lambda h: h.load)  # ties: the earliest, the server's node first
        host.envs += 1
        return host

    # --- invoking ----------------------------------------------------------------------

    async def invoke(
        self,
        fn: ResolvedFunction,
        payload: bytes,
        *,
        request_id: str,
        client_context: str | None = None,
    ) -> Outcome:
        """Run one invocation; raises Throttled or SpawnFailed, else returns its Outcome."""
        counters = self._counters[fn.name]
        totals = self.totals[fn.name]
        try:
            unreserved = self._admit(fn, counters)
        except Throttled:
            totals.throttles += 1
            raise
        try:
            env, cold = await self._acquire(fn)
            # A flush may have swapped the period's counters while this waited.
            counters = self._counters[fn.name]
            counters.invocations += 1
            totals.invocations += 1
            concurrency = self._busy[fn.name]
            counters.max_concurrency = max(counters.max_concurrency, concurrency)
            if cold:
                counters.cold_starts += 1
                totals.cold_starts += 1
                self.stats["cold_starts"] += 1
            else:
                self.stats["warm_starts"] += 1
            if env.provisioned is not None:
                busy = sum(1 for e in self._provisioned[(fn.name, env.provisioned)] if e.busy)
                counters.provisioned_busy_max = max(counters.provisioned_busy_max, busy)
            if env.client.init_error is not None:
                result = _init_failure(env, fn, request_id)
                await self._discard(env)
            else:
                result = await self._run(env, fn, payload, request_id, client_context)
                self._release(env, result)
        finally:
            self._busy[fn.name] -= 1
            if unreserved:
                self._unreserved_busy -= 1
        counters = self._counters[fn.name]  # the run, too, may have spanned a flush
        if result.kind != "ok":
            counters.errors += 1
            totals.errors += 1
        counters.durations.append(result.duration_ms)
        totals.duration.observe(result.duration_ms / 1000.0)
        self._queue_log(fn, env, request_id, result.log)
        return Outcome(result, fn.version, cold, request_id)

    def _admit(self, fn: ResolvedFunction, counters: _Counters) -> bool:
        busy = self._busy[fn.name]
        reserved = fn.reserved_concurrency
        if reserved is not None:
            if busy >= reserved:
                counters.throttles += 1
                self.stats["throttles"] += 1
                raise Throttled(
                    "ReservedFunctionConcurrentInvocationLimitExceeded",
                    "Rate Exceeded."
                    if reserved
                    else "Rate Exceeded. The function's reserved concurrency is 0: every "
                    "invocation is throttled (kennel functions concurrency delete "
                    f"{fn.name} lifts it).",
                )
            self._busy[fn.name] = busy + 1
            return False
        limit, _minimum = self.functions.concurrency_limits()
        if self._unreserved_busy >= limit - self.functions.reserved_total():
            counters.throttles += 1
            self.stats["throttles"] += 1
            raise Throttled("ConcurrentInvocationLimitExceeded", "Rate Exceeded.")
        self._busy[fn.name] = busy + 1
        self._unreserved_busy += 1
        return True

    async def _acquire(self, fn: ResolvedFunction) -> tuple[Env, bool]:
        key = (fn.name, fn.version, fn.revision_id)
        if fn.qualifier not in (None, "$LATEST"):
            for env in self._provisioned.get((fn.name, fn.qualifier), ()):
                if not env.busy and env.key == key and env.client.alive:
                    env.busy = True
                    return env, False
        idle = self._idle.get(key)
        while idle:
            env = idle.pop()
            if env.client.alive and env.credentials_expire - time.monotonic() > fn.timeout_s:
                env.busy = True
                return env, False
            await self._discard(env)
        env = await self._spawn(fn, "on-demand")
        env.busy = True
        return env, True

    async def _spawn(self, fn: ResolvedFunction, initialization: str) -> Env:
        expires, credentials = await self._role_credentials(fn)
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{fn.version}]{uuid.uuid4().hex}"
        spec = {
            "function_name": fn.name,
            "version": fn.version,
            "invoked_function_arn": fn.invoked_arn,
            "handler": fn.handler,
            "runtime": fn.runtime,
            "memory_mb": fn.memory_mb,
            "timeout_s": fn.timeout_s,
            "environment": dict(fn.environment),
            "code_uri": fn.code_uri,
            "code_sha256": fn.code_sha256,
            "credentials": credentials,
            "region": self.region,
            "account_id": self.account_id,
            "log_group": f"/aws/lambda/{fn.name}",
            "log_stream": stream,
            "initialization_type": initialization,
            "gateway_url": self.gateway_url,
            "runtime_api": self.gateway_url.split("://", 1)[-1],
            # The PEM itself, not its path: the environment may run on another node.
            "gateway_ca_pem": self.gateway_ca_pem,
        }
        client, host = await self._spawn_somewhere(fn, spec)
        key = (fn.name, fn.version, fn.revision_id)
        env = Env(client, key, host.where, expires, stream=stream)
        self._all.add(env)
        return env

    async def _spawn_somewhere(
        self, fn: ResolvedFunction, spec: dict[str, Any]
    ) -> tuple[EnvironmentClient, _Host]:
        """Spawn on the chosen host; if its node was lost since the last check (the
        connection is refused), once more on another."""
        avoid = None
        for attempt in range(2):
            host = await self._host(avoid)
            try:
                client = await spawn(
                    host.address,
                    host.port,
                    spec,
                    timeout=self.settings.function_spawn_timeout_seconds,
                )
            except (OSError, EnvironmentLost, TimeoutError) as exc:
                host.envs -= 1
                if attempt or len(self._hosts) < 2 or not isinstance(exc, ConnectionError):
                    raise SpawnFailed(
                        f"Starting an execution environment for {fn.name} failed: {exc}"
                    ) from exc
                avoid = host
            else:
                return client, host
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _role_credentials(self, fn: ResolvedFunction) -> tuple[float, dict[str, str]]:
        """The execution role's temporary credentials, shared by a function's environments."""
        cache_key = (fn.role, fn.name)
        hit = self._credentials.get(cache_key)
        now = time.monotonic()
        if hit is not None and hit[0] - now > fn.timeout_s + CREDENTIAL_MARGIN_SECONDS:
            return hit
        lock = self._credential_locks.setdefault(cache_key, asyncio.Lock())
        async with lock:
            hit = self._credentials.get(cache_key)
            if hit is not None and hit[0] - now > fn.timeout_s + CREDENTIAL_MARGIN_SECONDS:
                return hit
            session_name = fn.name if len(fn.name) >= 2 else f"{fn.name}-fn"
            try:
                answer = await asyncio.to_thread(
                    self.iam.assume_role, "lambda.amazonaws.com", fn.role, session_name[:64]
                )
            except Exception as exc:
                raise SpawnFailed(
                    f"The execution role {fn.role} could not be assumed by Lambda: {exc}"
                ) from exc
            creds = answer["Credentials"]
            expiration = creds["Expiration"]
            if isinstance(expiration, str):
                expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
            seconds = (expiration - datetime.now(UTC)).total_seconds()
            value = (
                time.monotonic() + seconds,
                {
                    "access_key_id": creds["AccessKeyId"],
                    "secret_access_key": creds["SecretAccessKey"],
                    "session_token": creds["SessionToken"],
                },
            )
            self._credentials[cache_key] = value
            return value

    async def _run(
        self,
        env: Env,
        fn: ResolvedFunction,
        payload: bytes,
        request_id: str,
        client_context: str | None,
    ) -> InvokeResult:
        deadline = time.time() + fn.timeout_s
        meta = {
            "op": "invoke",
            "request_id": request_id,
            "invoked_function_arn": fn.invoked_arn,
            "version": fn.version,
            "timeout_ms": fn.timeout_s * 1000,
            "deadline_epoch_ms": int(deadline * 1000),
            "client_context": client_context,
        }
        env.invocations += 1
        try:
            return await asyncio.wait_for(
                env.client.invoke(meta, payload), fn.timeout_s + TIMEOUT_GRACE_SECONDS
            )
        except TimeoutError:
            await self._kill(env)
            message = (
                f"{_aws_time(datetime.now(UTC))} {request_id} Task timed out after "
                f"{fn.timeout_s:.2f} seconds"
            )
            return _synthetic(request_id, fn, "timeout", "Sandbox.Timedout", message)
        except EnvironmentLost as exc:
            await self._discard(env)
            message = f"RequestId: {request_id} Error: Runtime exited without providing a reason"
            log.warning("environment %s of %s was lost: %s", env.client.pid, fn.name, exc)
            return _synthetic(request_id, fn, "error", "Runtime.ExitError", message)

    def _release(self, env: Env, result: InvokeResult) -> None:
        env.busy = False
        env.last_used = time.monotonic()
        if result.exit or not env.client.alive:
            self._forget(env)
            return
        if env.provisioned is None:
            self._idle[env.key].append(env)

    def _forget(self, env: Env) -> None:
        if env in self._all:
            self._all.discard(env)
            for host in self._hosts:
                if host.where == env.host:
                    host.envs -= 1
        if env.provisioned is not None:
            pool = self._provisioned.get((env.key[0], env.provisioned))
            if pool and env in pool:
                pool.remove(env)
        idle = self._idle.get(env.key)
        if idle and env in idle:
            idle.remove(env)

    async def _discard(self, env: Env) -> None:
        self._forget(env)
        with contextlib.suppress(Exception):
            await env.client.close()

    async def _kill(self, env: Env) -> None:
        self._forget(env)
        with contextlib.suppress(Exception):
            await kill(env.host[0], env.host[1], env.client.pid)
        with contextlib.suppress(Exception):
            await env.client.close()

    # --- asynchronous invocations --------------------------------------------------------

    def enqueue(
        self, fn: ResolvedFunction, payload: bytes, *, request_id: str, client_context: str | None
    ) -> None:
        """Store an Event invocation (blocking: call it off the event loop)."""
        with self.db.session() as session:
            session.add(
                LambdaEvent(
                    id=request_id,
                    function=fn.name,
                    qualifier=fn.qualifier or "",
                    payload=payload,
                    client_context=client_context,
                    status="queued",
                    attempts=0,
                    next_attempt_at=datetime.now(UTC),
                )
            )

    def wake_async(self) -> None:
        if self.loop is not None and self._async_wakeup is not None:
            self.loop.call_soon_threadsafe(self._async_wakeup.set)

    def _recover_events(self) -> None:
        """Events that were running when the server stopped run again (at least once)."""
        with self.db.session() as session:
            session.execute(
                update(LambdaEvent).where(LambdaEvent.status == "running").values(status="queued")
            )

    async def _async_worker(self) -> None:
        assert self._async_wakeup is not None
        running: set[asyncio.Task[None]] = set()
        while True:
            self._async_wakeup.clear()
            free = ASYNC_CONCURRENCY - len(running)
            due: list[tuple[str, str, str, bytes, str | None, int, datetime]] = []
            if free > 0:
                try:
                    due = await asyncio.to_thread(self._claim_due, free)
                except Exception:
                    log.exception("reading queued events failed")
            for event in due:
                task = asyncio.create_task(self._run_event(*event))
                running.add(task)
                task.add_done_callback(running.discard)
            if len(due) < free:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._async_wakeup.wait(), 0.5)
            else:
                await asyncio.sleep(0)

    def _claim_due(
        self, limit: int
    ) -> list[tuple[str, str, str, bytes, str | None, int, datetime]]:
        now = datetime.now(UTC)
        claimed = []
        with self.db.session() as session:
            rows = session.scalars(
                select(LambdaEvent)
                .where(LambdaEvent.status == "queued", LambdaEvent.next_attempt_at <= now)
                .order_by(LambdaEvent.next_attempt_at)
                .limit(limit)
            ).all()
            for row in rows:
                row.status = "running"
                created = (
                    row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
                )
                claimed.append(
                    (
                        row.id,
                        row.function,
                        row.qualifier,
                        row.payload,
                        row.client_context,
                        row.attempts,
                        created,
                    )
                )
        return claimed

    async def _run_event(
        self,
        event_id: str,
        function: str,
        qualifier: str,
        payload: bytes,
        client_context: str | None,
        attempts: int,
        created: datetime,
    ) -> None:
        changes: dict[str, Any]
        try:
            fn = await asyncio.to_thread(self.functions.resolve, function, qualifier or None)
            retries, max_age = await asyncio.to_thread(
                self.functions.event_config, function, qualifier or None
            )
        except Exception as exc:  # noqa: BLE001 - the function is gone: the event fails
            await asyncio.to_thread(
                self._finish_event,
                event_id,
                "failed",
                attempts,
                {"errorType": type(exc).__name__, "errorMessage": str(exc)},
                None,
            )
            return
        if (datetime.now(UTC) - created).total_seconds() > max_age:
            await asyncio.to_thread(
                self._finish_event,
                event_id,
                "expired",
                attempts,
                {
                    "errorType": "EventAgeExceeded",
                    "errorMessage": f"The event was older than {max_age} s before it could run.",
                },
                None,
            )
            return
        try:
            outcome = await self.invoke(
                fn, payload, request_id=event_id, client_context=client_context
            )
        except (Throttled, SpawnFailed) as exc:
            delay = random.uniform(*THROTTLE_RETRY_SECONDS)
            changes = {
                "status": "queued",
                "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay),
                "last_error": {"errorType": type(exc).__name__, "errorMessage": str(exc)},
            }
            await asyncio.to_thread(self._update_event, event_id, changes)
            return
        attempts += 1
        if outcome.result.kind == "ok":
            await asyncio.to_thread(
                self._finish_event, event_id, "succeeded", attempts, None, fn.version
            )
            return
        error = _error_json(outcome.result.payload)
        if attempts > retries:
            await asyncio.to_thread(
                self._finish_event, event_id, "failed", attempts, error, fn.version
            )
            return
        delay = self._retry_delays[min(attempts - 1, len(self._retry_delays) - 1)]
        changes = {
            "status": "queued",
            "attempts": attempts,
            "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay),
            "last_error": error,
            "executed_version": fn.version,
        }
        await asyncio.to_thread(self._update_event, event_id, changes)
        if self.loop is not None:
            self.loop.call_later(delay, self.wake_async)

    def _update_event(self, event_id: str, changes: dict[str, Any]) -> None:
        with self.db.session() as session:
            session.execute(update(LambdaEvent).where(LambdaEvent.id == event_id).values(**changes))

    def _finish_event(
        self,
        event_id: str,
        status: str,
        attempts: int,
        error: dict[str, Any] | None,
        version: str | None,
    ) -> None:
        changes: dict[str, Any] = {
            "status": status,
            "attempts": attempts,
            "finished_at": datetime.now(UTC),
        }
        if error is not None:
            changes["last_error"] = error
        if version is not None:
            changes["executed_version"] = version
        self._update_event(event_id, changes)

    # --- housekeeping: reaping, provisioned concurrency, metrics -------------------------

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(REAP_EVERY_SECONDS)
            try:
                generation = self.functions.generation
                changed = generation != self._seen_generation
                await self._reap(changed)
                self._check_hosts()
                await self._provision(changed)
                self._seen_generation = generation
                if (
                    time.time() - self._period_started
                    >= self.settings.function_metrics_period_seconds
                ):
                    await asyncio.to_thread(self.flush_metrics)
            except Exception:
                log.exception("function housekeeping failed")

    def _check_hosts(self) -> None:
        """On a cluster, now and then in the background (starting a host takes a while):
        hosts of lost nodes go, nodes that joined get one."""
        if (
            self.ray.mode == "local"
            or self.ray.state != "running"
            or self._hosts_ready is None
            or not self._hosts_ready.is_set()
            or (self._syncing is not None and not self._syncing.done())
            or time.monotonic() - self._hosts_checked < HOST_CHECK_SECONDS
        ):
            return
        self._syncing = asyncio.create_task(self._resync_hosts())

    async def _resync_hosts(self) -> None:
        try:
            await self._sync_hosts()
        except Exception:
            log.exception("checking the function hosts failed")
        finally:
            self._hosts_checked = time.monotonic()

    async def _reap(self, changed: bool) -> None:
        now = time.monotonic()
        idle_limit = self.settings.function_idle_seconds
        stale: set[tuple[str, str, str]] = set()
        if changed:
            for key in list(self._idle):
                if not await self._current(key):
                    stale.add(key)
        for key, envs in list(self._idle.items()):
            for env in list(envs):
                if (
                    key in stale
                    or now - env.last_used > idle_limit
                    or env.credentials_expire - now < CREDENTIAL_MARGIN_SECONDS
                    or not env.client.alive
                ):
                    await self._discard(env)
            if not envs:
                self._idle.pop(key, None)

    async def _current(self, key: tuple[str, str, str]) -> bool:
        name, version, revision = key
        try:
            fn = await asyncio.to_thread(self.functions.resolve, name, version)
        except Exception:  # noqa: BLE001 - deleted (or its version is): not current
            return False
        return fn.revision_id == revision

    async def _provision(self, changed: bool) -> None:
        """Keep each provisioned-concurrency config's environments started and initialised."""
        if changed or time.monotonic() - self._configs_loaded > CONFIG_RELOAD_SECONDS:
            self._configs = await asyncio.to_thread(self.functions.provisioned_configs)
            self._configs_loaded = time.monotonic()
        configs = self._configs
        wanted: set[tuple[str, str]] = set()
        for config in configs:
            slot = (config.function, config.qualifier)
            wanted.add(slot)
            try:
                fn = await asyncio.to_thread(
                    self.functions.resolve, config.function, config.qualifier
                )
            except Exception as exc:  # noqa: BLE001 - the version or alias went away
                await self._provision_state(slot, 0, "FAILED", str(exc))
                continue
            key = (fn.name, fn.version, fn.revision_id)
            pool = self._provisioned[slot]
            for env in list(pool):
                if not env.client.alive or (env.key != key and not env.busy):
                    await self._discard(env)
            ready = [e for e in pool if e.key == key]
            for env in ready[config.requested :]:
                if not env.busy:
                    await self._discard(env)
            ready = [e for e in pool if e.key == key]
            missing = config.requested - len(ready) - self._provisioning[slot]
            if missing > 0 and slot not in self._provision_failed:
                for _ in range(missing):
                    self._provisioning[slot] += 1
                    asyncio.create_task(self._provision_one(slot, fn))
            failed = self._provision_failed.get(slot)
            allocated = min(len(ready), config.requested)
            self._counters[fn.name].provisioned_allocated = allocated
            if failed:
                await self._provision_state(slot, allocated, "FAILED", failed)
            elif allocated >= config.requested:
                await self._provision_state(slot, allocated, "READY", "")
            else:
                await self._provision_state(slot, allocated, "IN_PROGRESS", "")
        for slot in list(self._provisioned):
            if slot not in wanted:
                for env in list(self._provisioned.pop(slot)):
                    if env.busy:
                        env.provisioned = None  # finishes its invocation, then goes away
                        self._all.discard(env)
                    else:
                        await self._discard(env)
                self._provision_failed.pop(slot, None)
                self._provision_states.pop(slot, None)

    async def _provision_one(self, slot: tuple[str, str], fn: ResolvedFunction) -> None:
        try:
            env = await self._spawn(fn, "provisioned-concurrency")
        except Exception as exc:  # noqa: BLE001 - the config's status says why
            self._provision_failed[slot] = str(exc)
            return
        finally:
            self._provisioning[slot] -= 1
        if env.client.init_error is not None:
            error = env.client.init_error
            self._provision_failed[slot] = (
                "FUNCTION_ERROR_INIT_FAILURE: "
                f"{error.get('errorType')}: {error.get('errorMessage')}"
            )
            await self._discard(env)
            return
        env.provisioned = slot[1]
        self._provisioned[slot].append(env)

    async def _provision_state(
        self, slot: tuple[str, str], allocated: int, status: str, reason: str
    ) -> None:
        if self._provision_states.get(slot) == (allocated, status, reason):
            return
        self._provision_states[slot] = (allocated, status, reason)
        await asyncio.to_thread(
            self.functions.set_provisioned_state, slot[0], slot[1], allocated, status, reason
        )

    def flush_metrics(self) -> None:
        """The counters since the last period, as MetricSample rows (resource function/<name>)."""
        now = datetime.now(UTC)
        period = max(time.time() - self._period_started, 1e-6)
        self._period_started = time.time()
        counters, self._counters = self._counters, defaultdict(_Counters)
        samples: list[MetricSample] = []
        written: dict[str, dict[str, float]] = {}
        for name, c in counters.items():
            values: dict[str, float] = {
                "Invocations": c.invocations,
                "Errors": c.errors,
                "Throttles": c.throttles,
                "ColdStarts": c.cold_starts,
                "ConcurrentExecutions": c.max_concurrency,
            }
            if c.durations:
                ordered = sorted(c.durations)
                values["Duration"] = sum(ordered) / len(ordered)
                values["DurationP99"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            if c.provisioned_allocated:
                values["ProvisionedConcurrencyUtilization"] = (
                    c.provisioned_busy_max / c.provisioned_allocated
                )
            written[name] = values
            samples += [
                MetricSample(resource=f"function/{name}", name=k, value=float(v), timestamp=now)
                for k, v in values.items()
            ]
            # Keep the allocation known for the next period's utilisation.
            self._counters[name].provisioned_allocated = c.provisioned_allocated
        del period
        self.last_period = written
        if samples:
            with self.db.session() as session:
                session.add_all(samples)

    # --- logs ------------------------------------------------------------------------------

    def _queue_log(self, fn: ResolvedFunction, env: Env, request_id: str, text: str) -> None:
        row = {
            "function": fn.name,
            "version": fn.version,
            "stream": env.stream,
            "request_id": request_id,
            "timestamp": datetime.now(UTC),
            "message": text,
        }
        with self._log_lock:
            self._log_rows.append(row)

    def _log_writer(self) -> None:
        while not self._log_stop.wait(LOG_FLUSH_SECONDS):
            self.flush_logs()
        self.flush_logs()

    def flush_logs(self) -> None:
        with self._log_lock:
            rows, self._log_rows = self._log_rows, []
        if not rows:
            return
        try:
            with self.db.session() as session:
                session.execute(insert(LambdaLog), rows)
        except Exception:
            log.exception("writing %d function log rows failed", len(rows))

    # --- what the console and `describe` show ---------------------------------------------

    def gauges(self) -> RuntimeGauges:
        """Concurrency and environments now (on the event loop; no I/O)."""
        environments: dict[str, int] = defaultdict(int)
        for env in list(self._all):
            environments[env.key[0]] += 1
        provisioned = {
            slot: (len(envs), sum(1 for e in envs if e.busy))
            for slot, envs in list(self._provisioned.items())
        }
        concurrent = {name: busy for name, busy in list(self._busy.items()) if busy > 0}
        return RuntimeGauges(concurrent, dict(environments), provisioned)

    def describe(self, name: str) -> dict[str, Any]:
        envs = [e for e in self._all if e.key[0] == name]
        return {
            "environments": len(envs),
            "busy": sum(1 for e in envs if e.busy),
            "provisioned": sum(1 for e in envs if e.provisioned is not None),
            "concurrent_executions": self._busy.get(name, 0),
        }


def _delays(raw: str) -> list[float]:
    values = [float(part) for part in raw.replace(" ", "").split(",") if part]
    return values or [60.0, 120.0]


def _aws_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _synthetic(
    request_id: str, fn: ResolvedFunction, kind: str, error_type: str, message: str
) -> InvokeResult:
    import json

    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    text = (
        f"START RequestId: {request_id} Version: {fn.version}\n"
        f"{_aws_time(datetime.now(UTC))} {message}\n"
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {fn.timeout_s * 1000:.2f} ms\t"
        f"Billed Duration: {fn.timeout_s * 1000} ms\tMemory Size: {fn.memory_mb} MB\t"
        f"Max Memory Used: 0 MB\n"
    )
    return InvokeResult(
        kind=kind,
        payload=body,
        duration_ms=float(fn.timeout_s * 1000) if kind == "timeout" else 0.0,
        billed_ms=fn.timeout_s * 1000 if kind == "timeout" else 0,
        max_memory_mb=0,
        init_duration_ms=None,
        log=text,
        exit=True,
    )


def _init_failure(env: Env, fn: ResolvedFunction, request_id: str) -> InvokeResult:
    import json

    error = dict(env.client.init_error or {})
    if not error.get("requestId"):
        error["requestId"] = request_id
    init_ms = env.client.init_duration_ms or 0.0
    text = (
        f"{getattr(env.client, 'init_log', '') or ''}"
        f"START RequestId: {request_id} Version: {fn.version}\n"
        f"{json.dumps(error)}\n"
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {init_ms:.2f} ms\t"
        f"Billed Duration: {math.ceil(init_ms)} ms\tMemory Size: {fn.memory_mb} MB\t"
        f"Max Memory Used: 0 MB\tInit Duration: {init_ms:.2f} ms\n"
    )
    return InvokeResult(
        kind="error",
        payload=json.dumps(error).encode(),
        duration_ms=init_ms,
        billed_ms=math.ceil(init_ms),
        max_memory_mb=0,
        init_duration_ms=init_ms,
        log=text,
        exit=True,
    )


def _error_json(payload: bytes) -> dict[str, Any]:
    import json

    try:
        value = json.loads(payload)
    except ValueError:
        return {"errorMessage": payload.decode("utf-8", errors="replace")[:1000]}
    return value if isinstance(value, dict) else {"errorMessage": str(value)}


def _read_ca_bundle(settings: Settings) -> str | None:
    """The CA certificates function environments verify an https gateway with, if any."""
    if settings.ca_bundle is None:
        return None
    try:
        return settings.ca_bundle.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning(
            "cannot read the CA bundle %s (%s): functions' boto3 calls to the gateway will "
            "use the usual trust store",
            settings.ca_bundle,
            exc,
        )
        return None
