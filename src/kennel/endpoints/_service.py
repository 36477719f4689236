"""Endpoint configs and endpoints: their lifecycle, their fleets, their rollouts.

An endpoint runs one *deployment*: for each production variant of its endpoint config,
N instances (Ray actors, each running a model server process; see ``_instance``). The
gateway routes to them through the :class:`RoutingTable` this service maintains.

* **Create**: the row is ``Creating`` at once; a worker thread starts the instances,
  waits for each ``GET /ping`` to answer 200, then publishes the route: ``InService``.
  Instances that cannot start make the endpoint ``Failed`` with the reason (their log).
* **Update** (blue/green, SageMaker's way): the new config's fleet starts beside the old
  one, which keeps serving; only when every new instance is healthy does traffic move:
  all at once, canary or linear (``DeploymentSpec``), while alarms watch the new fleet's
  5XX rate and latency. A new fleet that never gets healthy, or an alarm, rolls back: all
  traffic stays on (or returns to) the old fleet, the endpoint is ``InService`` on its old
  config, and ``failure_reason`` and ``last_deployment`` say what happened.
* **Health**: a supervisor thread checks every instance each second; one whose process
  exited (or whose actor died) leaves the route at once and a replacement starts.
  Requests in flight on it fail fast in the gateway (the connection drops).
* **Metrics**: per variant and period, the gateway's counters become metric samples
  (Invocations, InvocationsPerInstance, ModelLatency, OverheadLatency,
  Invocation4XXErrors, Invocation5XXErrors, ModelErrors, InstanceCount).
* **Restart**: endpoints that were serving come back as ``SystemUpdating`` and are
  redeployed from their config; when healthy they are ``InService`` again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import delete, select

from kennel._errors import ConflictError, NotFoundError, ValidationError
from kennel._names import check_name
from kennel._settings import Settings
from kennel.cluster import RayCluster
from kennel.cluster._catalog import InstanceType, instance_type
from kennel.endpoints._capture import capture_settings
from kennel.endpoints._models import ModelService, arn
from kennel.endpoints._routing import (
    Backend,
    DeploymentRoute,
    EndpointRoute,
    RoutingTable,
    VariantRoute,
    VariantStats,
    VariantTotals,
)
from kennel.endpoints._spec import (
    AlarmSpec,
    DeploymentSpec,
    EndpointConfigSpec,
    EndpointSpec,
    UpdateEndpointSpec,
)
from kennel.store import ArtifactStore, Database, Endpoint, EndpointConfig, MetricSample
from kennel.store._models import utcnow

log = logging.getLogger(__name__)

CREATING, IN_SERVICE, UPDATING = "Creating", "InService", "Updating"
ROLLING_BACK, FAILED, DELETING = "RollingBack", "Failed", "Deleting"
SYSTEM_UPDATING = "SystemUpdating"
"""SageMaker's state for maintenance; here: redeploying after a server restart."""
SERVING = (IN_SERVICE, UPDATING, ROLLING_BACK, SYSTEM_UPDATING)

METRIC_NAMES = (
    "Invocations",
    "InvocationsPerInstance",
    "ModelLatency",
    "OverheadLatency",
    "Invocation4XXErrors",
    "Invocation5XXErrors",
    "ModelErrors",
    "InstanceCount",
    "CPUUtilization",
    "MemoryUtilization",
)
_LOG_TAIL = 1500
PRUNE_EVERY_SECONDS = 600.0
"""How often old metric samples are deleted."""


class DeploymentError(Exception):
    """Instances could not be started or never became healthy; the message says why."""


@dataclass(eq=False)
class LiveInstance:
    instance_id: str
    actor: Any
    backend: Backend
    pid: int
    suspect_since: float | None = None
    node: dict[str, str] = field(default_factory=dict)
    """The Ray node it runs on (``node_id``, ``node_ip``)."""


@dataclass(eq=False)
class LiveVariant:
    name: str
    model: dict[str, Any]
    itype: InstanceType
    desired: int
    route: VariantRoute
    instances: list[LiveInstance] = field(default_factory=list)
    replacing: int = 0
    next_replacement_at: float = 0.0
    scaling: bool = False
    """A scale-out or scale-in is being carried out (one at a time per variant)."""
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """Each instance's CPU time at the last metric period (for CPUUtilization)."""


@dataclass(eq=False)
class LiveDeployment:
    config_name: str
    variants: list[LiveVariant]
    route: DeploymentRoute
    retired: bool = False


@dataclass(frozen=True)
class VariantGauge:
    """A serving variant right now, as ``/metrics`` shows it."""

    endpoint: str
    variant: str
    desired: int
    healthy: int
    outstanding: int


@dataclass(eq=False)
class LiveEndpoint:
    name: str
    status: str
    current: LiveDeployment | None = None
    candidate: LiveDeployment | None = None
    share: float = 0.0
    """The candidate's traffic share during a rollout."""
    worker: threading.Thread | None = None


def config_to_dict(row: EndpointConfig) -> dict[str, Any]:
    return {
        "name": row.name,
        "arn": row.arn,
        "variants": list(row.variants),
        "data_capture": dict(row.data_capture) if row.data_capture else None,
        "created_at": row.created_at.isoformat(),
    }


class EndpointService:
    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        settings: Settings,
        ray: RayCluster,
        models: ModelService,
        *,
        account_id: str,
        region: str,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.settings = settings
        self.ray = ray
        self.models = models
        self.account_id = account_id
        self.region = region
        self.routes = RoutingTable()
        self._live: dict[str, LiveEndpoint] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._http = httpx.Client(timeout=2.0, trust_env=False)
        self._metrics_thread: threading.Thread | None = None
        self._next_prune = 0.0
        self.period_listeners: list[Callable[[dict[str, dict[str, float]]], None]] = []
        """Called after each metric period with ``{resource: {metric: value}}``."""
        self.last_period: dict[str, dict[str, float]] = {}
        """The latest period's values, as :meth:`flush_metrics` returned them (replaced
        whole each period, so a reader never sees half of one)."""
        self.totals: dict[tuple[str, str], VariantTotals] = {}
        """(endpoint, variant) -> running totals since the server started, shared by the
        variant's routes in every deployment; dropped when the endpoint is deleted."""
        self.on_empty: Callable[[str, str], bool] | None = None
        """Asked to start a first instance when a request reaches a variant at zero."""

    # Endpoint configs ---------------------------------------------------------

    def create_config(self, spec: EndpointConfigSpec) -> dict[str, Any]:
        check_name("Endpoint config", spec.name)
        for variant in spec.variants:
            check_name("Variant", variant.variant_name)
            instance_type(variant.instance_type)
            if not self.models.exists(variant.model_name):
                raise ValidationError(
                    f"Could not find model {variant.model_name} (variant {variant.variant_name}).",
                    hint="Create it first: kennel models create NAME --from-job JOB.",
                )
        with self.db.session() as session:
            if session.get(EndpointConfig, spec.name) is not None:
                raise ConflictError(
                    f"Endpoint config {spec.name} already exists.",
                    hint="Endpoint configs cannot change: create one with a new name.",
                )
            session.add(
                EndpointConfig(
                    name=spec.name,
                    arn=arn(self.region, self.account_id, "endpoint-config", spec.name),
                    variants=[v.model_dump() for v in spec.variants],
                    data_capture=(
                        spec.data_capture.model_dump() if spec.data_capture is not None else None
                    ),
                )
            )
        return self.describe_config(spec.name)

    def list_configs(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(EndpointConfig).order_by(EndpointConfig.created_at))
            return [config_to_dict(r) for r in rows.all()]

    def describe_config(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(EndpointConfig, name)
            if row is None:
                raise _config_not_found(name)
            return config_to_dict(row)

    def delete_config(self, name: str) -> None:
        with self.db.session() as session:
            row = session.get(EndpointConfig, name)
            if row is None:
                raise _config_not_found(name)
            users = [
                e.name
                for e in session.scalars(select(Endpoint)).all()
                if name in (e.config_name, e.pending_config_name)
            ]
            if users:
                raise ConflictError(
                    f"Endpoint config {name} is in use by endpoint(s) {', '.join(users)}.",
                    hint="Delete the endpoint or update it to another config first.",
                )
            session.delete(row)

    def _require_config(self, name: str) -> None:
        """A request naming a missing config is a bad request (SageMaker: 400), not a 404."""
        try:
            self.describe_config(name)
        except NotFoundError as error:
            raise ValidationError(error.message, hint=error.hint) from None

    # Endpoints: reads -----------------------------------------------------------

    def list_all(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(Endpoint).order_by(Endpoint.created_at)).all()
            return [self._to_dict(r, brief=True) for r in rows]

    def describe(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(Endpoint, name)
            if row is None:
                raise endpoint_not_found(name)
            info = self._to_dict(row)
            config = session.get(EndpointConfig, row.config_name)
            capture = config.data_capture if config is not None else None
            info["data_capture"] = dict(capture) if capture else None
            return info

    def _to_dict(self, row: Endpoint, *, brief: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": row.name,
            "arn": row.arn,
            "status": row.status,
            "config_name": row.config_name,
            "pending_config_name": row.pending_config_name,
            "failure_reason": row.failure_reason,
            "created_at": row.created_at.isoformat(),
            "modified_at": row.modified_at.isoformat(),
        }
        live = self._live.get(row.name)
        info["production_variants"] = self._variants_info(live.current if live else None)
        if brief:
            return info
        info["last_deployment"] = dict(row.last_deployment)
        if live is not None and live.candidate is not None:
            info["pending_production_variants"] = self._variants_info(live.candidate)
            info["traffic"] = {
                row.config_name: round(1.0 - live.share, 4),
                live.candidate.config_name: round(live.share, 4),
            }
        return info

    @staticmethod
    def _variants_info(deployment: LiveDeployment | None) -> list[dict[str, Any]]:
        if deployment is None:
            return []
        out = []
        for variant in deployment.variants:
            backends = variant.route.backends
            nodes = {i.instance_id: i.node for i in variant.instances}
            out.append(
                {
                    "variant_name": variant.name,
                    "model_name": variant.model["name"],
                    "instance_type": variant.itype.name,
                    "current_weight": variant.route.weight,
                    "desired_instance_count": variant.desired,
                    "current_instance_count": sum(1 for b in backends if b.healthy),
                    "instances": [
                        {
                            "id": b.instance_id,
                            "address": f"{b.host}:{b.port}",
                            "pid": b.pid,
                            "healthy": b.healthy,
                            "outstanding": b.outstanding,
                            **nodes.get(b.instance_id, {}),
                        }
                        for b in backends
                    ],
                }
            )
        return out

    # Endpoints: create / update / delete ------------------------------------------

    def create(self, spec: EndpointSpec) -> dict[str, Any]:
        check_name("Endpoint", spec.name)
        self._require_config(spec.config_name)
        with self._lock:
            with self.db.session() as session:
                if session.get(Endpoint, spec.name) is not None:
                    raise ConflictError(
                        f"Cannot create already existing endpoint "
                        f'"{arn(self.region, self.account_id, "endpoint", spec.name)}".',
                        hint="Update it (kennel endpoints update) or pick another name.",
                    )
                session.add(
                    Endpoint(
                        name=spec.name,
                        arn=arn(self.region, self.account_id, "endpoint", spec.name),
                        status=CREATING,
                        config_name=spec.config_name,
                        desired_counts={},
                        last_deployment={},
                    )
                )
            live = LiveEndpoint(spec.name, CREATING)
            self._live[spec.name] = live
            self._publish(live)
            self._run(live, self._create_worker, live, False)
        return self.describe(spec.name)

    def update(self, name: str, spec: UpdateEndpointSpec) -> dict[str, Any]:
        self._require_config(spec.config_name)
        with self._lock:
            live = self._live.get(name)
            row = self.describe(name)
            if row["status"] != IN_SERVICE or live is None or live.current is None:
                raise ConflictError(
                    f"Endpoint {name} is {row['status']}; only an InService endpoint can be "
                    "updated.",
                    hint="Wait for InService (kennel endpoints describe) and try again.",
                )
            live.status = UPDATING
            self._save(
                name,
                status=UPDATING,
                pending_config_name=spec.config_name,
                failure_reason=None,
            )
            self._publish(live)
            self._run(live, self._update_worker, live, spec)
        return self.describe(name)

    def delete(self, name: str) -> dict[str, Any]:
        with self._lock:
            row = self.describe(name)
            live = self._live.get(name)
            if row["status"] in (CREATING, UPDATING, ROLLING_BACK, DELETING, SYSTEM_UPDATING):
                raise ConflictError(
                    f"Endpoint {name} is {row['status']}; it can be deleted once that ends.",
                    hint="Wait for InService or Failed, then delete it.",
                )
            self._save(name, status=DELETING)
            self.routes.remove(name)
            if live is None:
                live = LiveEndpoint(name, DELETING)
                self._live[name] = live
            live.status = DELETING
            previous = live.worker  # may still be retiring an old fleet
            self._run(live, self._delete_worker, live, previous)
        return self.describe(name)

    def _run(self, live: LiveEndpoint, target: Any, *args: Any) -> None:
        worker = threading.Thread(
            target=self._guarded, args=(target, *args), name=f"endpoint-{live.name}", daemon=True
        )
        live.worker = worker
        worker.start()

    def _guarded(self, target: Any, *args: Any) -> None:
        try:
            target(*args)
        except Exception:
            log.exception("endpoint worker %s failed", getattr(target, "__name__", target))

    # Workers -------------------------------------------------------------------

    def _create_worker(
        self, live: LiveEndpoint, recovering: bool, interrupted: tuple[str, str] | None = None
    ) -> None:
        """Start the endpoint's fleet on its config; ``recovering``: after a restart, at
        the size it had. ``interrupted`` is (the config an update was moving to, why it
        stopped) when the restart cut an update short: the endpoint comes back on its
        previous config, and says so as a rolled-back update would."""
        row = self.describe(live.name)
        counts: dict[str, Any] = {}
        if recovering:
            with self.db.session() as session:
                stored = session.get(Endpoint, live.name)
                counts = dict(stored.desired_counts) if stored is not None else {}
        try:
            deployment = self._launch(live.name, row["config_name"], counts)
        except DeploymentError as error:
            live.status = FAILED
            self._publish(live)
            reason = str(error)
            if recovering and row["status"] != CREATING:
                reason = f"The endpoint could not be started again after a server restart: {reason}"
            self._save(live.name, status=FAILED, failure_reason=reason)
            return
        if self._stop.is_set():
            self._retire(deployment, drain=False)
            return
        live.current = deployment
        live.status = IN_SERVICE
        self._publish(live)
        healthy = _event(f"{_fleet_size(deployment)} instance(s) healthy; InService")
        if interrupted is not None:
            target, why = interrupted
            failure: str | None = f"Update to {target} rolled back: {why}"
            story = _story(
                "RolledBack", target, [_event(why), healthy], kept_config=row["config_name"]
            )
        else:
            failure = None
            story = _story("Recovered" if recovering else "Created", row["config_name"], [healthy])
        self._save(
            live.name,
            status=IN_SERVICE,
            failure_reason=failure,
            desired_counts={v.name: v.desired for v in deployment.variants},
            last_deployment=story,
        )

    def _update_worker(self, live: LiveEndpoint, spec: UpdateEndpointSpec) -> None:
        old = live.current
        assert old is not None
        events = [_event(f"Starting the new fleet for {spec.config_name}")]
        try:
            new = self._launch(live.name, spec.config_name)
        except DeploymentError as error:
            events.append(_event(f"New fleet failed: {error}"))
            self._rolled_back(live, spec, events, f"the new fleet did not start: {error}")
            return
        events.append(_event(f"New fleet healthy ({_fleet_size(new)} instance(s))"))
        live.candidate = new
        deployment = spec.deployment
        self.routes.call_in_loop(lambda: [v.route.watch.take() for v in new.variants])
        steps = deployment.steps()
        for index, share in enumerate(steps):
            live.share = share
            self._publish(live)
            events.append(_event(f"{share:.0%} of traffic on the new fleet"))
            last = index == len(steps) - 1
            wait = deployment.wait_seconds
            if last and (deployment.alarms is None or wait == 0):
                break
            alarm = self._watch(new, deployment.alarms, wait)
            if alarm is not None:
                events.append(_event(f"Alarm: {alarm}; moving all traffic back"))
                live.status = ROLLING_BACK
                self._save(live.name, status=ROLLING_BACK)
                self._rolled_back(live, spec, events, f"alarm on the new fleet: {alarm}")
                return
            if self._stop.is_set():
                return
        live.current, live.candidate, live.share = new, None, 0.0
        live.status = IN_SERVICE
        self._publish(live)
        events.append(_event("All traffic on the new fleet; old fleet retired"))
        self._save(
            live.name,
            status=IN_SERVICE,
            config_name=spec.config_name,
            pending_config_name=None,
            failure_reason=None,
            desired_counts={v.name: v.desired for v in new.variants},
            last_deployment=_story("Succeeded", spec.config_name, events, deployment),
        )
        self._retire(old)

    def _rolled_back(
        self,
        live: LiveEndpoint,
        spec: UpdateEndpointSpec,
        events: list[dict[str, Any]],
        reason: str,
    ) -> None:
        candidate = live.candidate
        live.candidate, live.share = None, 0.0
        live.status = IN_SERVICE
        self._publish(live)
        events.append(_event("All traffic on the old fleet; update rolled back"))
        old_config = self.describe(live.name)["config_name"]
        self._save(
            live.name,
            status=IN_SERVICE,
            pending_config_name=None,
            failure_reason=f"Update to {spec.config_name} rolled back: {reason}",
            last_deployment=_story(
                "RolledBack", spec.config_name, events, spec.deployment, old_config
            ),
        )
        if candidate is not None:
            self._retire(candidate)

    def _delete_worker(self, live: LiveEndpoint, previous: threading.Thread | None) -> None:
        if previous is not None:
            previous.join()
        for deployment in (live.candidate, live.current):
            if deployment is not None:
                self._retire(deployment)
        with self._lock:
            self._live.pop(live.name, None)
            for key in [k for k in self.totals if k[0] == live.name]:
                self.totals.pop(key, None)
            with self.db.session() as session:
                session.execute(delete(Endpoint).where(Endpoint.name == live.name))

    def _watch(
        self, deployment: LiveDeployment, alarms: AlarmSpec | None, seconds: float
    ) -> str | None:
        """Wait ``seconds`` watching the deployment's alarms; the alarm's text if one fires."""
        deadline = time.monotonic() + seconds
        seen = VariantStats()
        while time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
            if alarms is None:
                continue
            for taken in self.routes.call_in_loop(
                lambda: [v.route.watch.take() for v in deployment.variants]
            ):
                seen.add(taken)
            alarm = _alarm(alarms, seen)
            if alarm is not None:
                return alarm
        return None

    # Fleets ----------------------------------------------------------------------

    def _launch(
        self, endpoint: str, config_name: str, counts: dict[str, Any] | None = None
    ) -> LiveDeployment:
        """Start every instance of a config's variants and wait until all are healthy.

        ``counts`` (variant -> instances) overrides the config's initial counts: after a
        restart an endpoint comes back at the size autoscaling had given it.
        """
        config = self.describe_config(config_name)
        counts = counts or {}
        capture = capture_settings(endpoint, config["data_capture"])
        variants: list[LiveVariant] = []
        for spec in config["variants"]:
            try:
                model = self.models.describe(spec["model_name"])
            except NotFoundError as error:
                raise DeploymentError(error.message) from error
            variants.append(
                LiveVariant(
                    name=spec["variant_name"],
                    model=model,
                    itype=instance_type(spec["instance_type"]),
                    desired=int(counts.get(spec["variant_name"], spec["initial_instance_count"])),
                    route=VariantRoute(
                        spec["variant_name"],
                        float(spec["initial_weight"]),
                        wake=partial(self._wake, endpoint, spec["variant_name"]),
                        totals=self.totals.setdefault(
                            (endpoint, spec["variant_name"]), VariantTotals()
                        ),
                        capture=capture,
                    ),
                )
            )
        deployment = LiveDeployment(
            config_name, variants, DeploymentRoute(config_name, tuple(v.route for v in variants))
        )
        results: list[tuple[LiveVariant, LiveInstance | Exception]] = []
        lock = threading.Lock()

        def start_one(variant: LiveVariant) -> None:
            try:
                started: LiveInstance | Exception = self._start_instance(endpoint, variant)
            except Exception as error:  # noqa: BLE001 - collected and reported below
                started = error
            with lock:
                results.append((variant, started))

        threads = [
            threading.Thread(target=start_one, args=(v,), daemon=True)
            for v in variants
            for _ in range(v.desired)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        errors = [e for _, e in results if isinstance(e, Exception)]
        for variant, started in results:
            if isinstance(started, LiveInstance):
                variant.instances.append(started)
        if errors:
            self._retire(deployment, drain=False)
            first = errors[0]
            text = str(first) if isinstance(first, DeploymentError) else repr(first)
            raise DeploymentError(text)
        for variant in variants:
            variant.route.backends = tuple(i.backend for i in variant.instances)
        return deployment

    def _start_instance(self, endpoint: str, variant: LiveVariant) -> LiveInstance:
        import ray

        from kennel.endpoints._instance import NODE_ADDRESS, EndpointInstance

        if not self.ray.wait(300):
            raise DeploymentError(f"Ray is not running: {self.ray.error}")
        local = self.ray.mode == "local"
        itype = variant.itype
        # On one machine instances share its cores (an endpoint beside a training job, an
        # update's two fleets); on a cluster each holds its instance type's vCPUs.
        threads = min(itype.vcpus, os.cpu_count() or 1) if local else itype.vcpus
        instance_id = f"{variant.name}-{uuid.uuid4().hex[:8]}"
        # On a cluster a variant's instances go to different nodes where they can, so one
        # node lost takes one instance, not the endpoint.
        actor = (
            ray.remote(EndpointInstance)
            .options(
                num_cpus=0 if local else itype.vcpus,
                max_concurrency=4,
                scheduling_strategy="DEFAULT" if local else "SPREAD",
            )
            .remote(endpoint, instance_id, self.settings.resolved_artifact_url)
        )
        model = variant.model
        environment = {
            **{k: str(v) for k, v in model["environment"].items()},
            "KENNEL_INSTANCE_VCPUS": str(threads),
            "KENNEL_FETCH_ALLOW_NETWORKS": getattr(self.settings, "fetch_allow_networks", ""),
            "SAGEMAKER_ENDPOINT_NAME": endpoint,
            "SAGEMAKER_VARIANT_NAME": variant.name,
        }
        bind_host = "127.0.0.1" if local else NODE_ADDRESS
        timeout = self.settings.endpoint_health_timeout_seconds
        try:
            host, port, pid = ray.get(
                actor.start.remote(
                    model["artifact_uri"], model["onnx_uri"], environment, bind_host
                ),
                timeout=timeout,
            )
            self._wait_healthy(actor, host, port, timeout)
            node = ray.get(actor.node.remote(), timeout=30)
        except Exception as error:
            reason = self._instance_failure(actor, error)
            _kill(actor)
            raise DeploymentError(
                f"instance {instance_id} of variant {variant.name} (model {model['name']}) "
                f"failed: {reason}"
            ) from error
        backend = Backend(instance_id, host, port, pid)
        return LiveInstance(instance_id, actor, backend, pid, node=node)

    def _wait_healthy(self, actor: Any, host: str, port: int, timeout: float) -> None:
        import ray

        deadline = time.monotonic() + timeout
        url = f"http://{host}:{port}/ping"
        while True:
            code = ray.get(actor.poll.remote(), timeout=30)
            if code is not None:
                raise DeploymentError(f"the model server exited with code {code}")
            try:
                answer = self._http.get(url)
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 200:
                return
            if answer is not None and answer.status_code == 503:
                body = _json(answer)
                if body.get("status") == "Failed":
                    raise DeploymentError(f"the model failed to load: {body.get('message')}")
            if time.monotonic() > deadline:
                raise DeploymentError(f"GET /ping did not answer 200 within {timeout:g} s")
            if self._stop.is_set():
                raise DeploymentError("the server is shutting down")
            time.sleep(0.1)

    def _instance_failure(self, actor: Any, error: Exception) -> str:
        import ray

        reason = str(error) if isinstance(error, DeploymentError) else repr(error)
        with contextlib.suppress(Exception):
            tail = ray.get(actor.log_tail.remote(), timeout=10)
            lines = [line for line in str(tail).strip().splitlines() if line.strip()]
            if lines:
                reason += "; last log lines: " + " | ".join(lines[-6:])[-_LOG_TAIL:]
        return reason

    def _retire(self, deployment: LiveDeployment, *, drain: bool = True) -> None:
        """Take a deployment's instances out of service: wait for requests, then stop."""
        deployment.retired = True
        instances = [i for v in deployment.variants for i in v.instances]
        if drain:
            deadline = time.monotonic() + self.settings.endpoint_model_timeout_seconds
            while time.monotonic() < deadline and any(i.backend.outstanding for i in instances):
                time.sleep(0.05)
        for variant in deployment.variants:
            variant.route.backends = ()
        self._stop_instances(instances)

    def _stop_instances(self, instances: list[LiveInstance]) -> None:
        import ray

        for instance in instances:
            instance.backend.mark_failed()
        refs = []
        for instance in instances:
            with contextlib.suppress(Exception):
                refs.append(instance.actor.cleanup.remote())
        if refs:
            with contextlib.suppress(Exception):
                ray.wait(refs, num_returns=len(refs), timeout=30)
        for instance in instances:
            _kill(instance.actor)
        with contextlib.suppress(Exception):
            self.routes.close_backends([i.backend for i in instances])

    # Scaling -----------------------------------------------------------------------

    def variant_capacity(self, endpoint: str, variant: str) -> tuple[int, int] | None:
        """``(desired, in service)`` instances of a variant that can scale now; None when
        it cannot (unknown, not InService, or an update is moving traffic)."""
        found = self._scalable(endpoint, variant)
        if found is None:
            return None
        _, live_variant = found
        return live_variant.desired, len(live_variant.route.healthy())

    def _scalable(self, endpoint: str, variant: str) -> tuple[LiveDeployment, LiveVariant] | None:
        live = self._live.get(endpoint)
        if live is None or live.status != IN_SERVICE or live.current is None:
            return None
        if live.candidate is not None:
            return None
        for candidate in live.current.variants:
            if candidate.name == variant:
                return live.current, candidate
        return None

    def scale_variant(self, endpoint: str, variant_name: str, desired: int) -> None:
        """Set a variant's instance count and carry it out; returns once it holds.

        Scale-out starts the new instances beside the serving ones and adds each to the
        route only once it is warm (model loaded, ``/ping`` 200). Scale-in takes instances
        out of the route first, lets the requests they are running finish, then stops
        them. No request fails because of either. Raises :class:`ConflictError` when the
        variant cannot scale now and :class:`DeploymentError` when new instances do not
        start (those that did stay in service; the desired count says how many run).
        """
        if desired < 0:
            raise ValidationError(f"An instance count cannot be negative (got {desired}).")
        with self._lock:
            found = self._scalable(endpoint, variant_name)
            if found is None:
                raise ConflictError(
                    f"Endpoint {endpoint} (variant {variant_name}) cannot scale now: it is not "
                    "InService or an update is under way.",
                    hint="Scaling resumes once the endpoint is InService.",
                )
            deployment, variant = found
            if variant.scaling:
                raise ConflictError(
                    f"Variant {variant_name} of endpoint {endpoint} is already being scaled.",
                    hint="Wait for the scaling activity to end (kennel endpoints activities).",
                )
            variant.scaling = True
        try:
            running = len(variant.instances)
            if desired > running:
                self._scale_out(endpoint, deployment, variant, desired - running)
            elif desired < running:
                self._scale_in(variant, running - desired)
            else:
                variant.desired = desired
        finally:
            variant.scaling = False
            live = self._live.get(endpoint)
            if live is not None and live.current is deployment:
                self._save(
                    endpoint, desired_counts={v.name: v.desired for v in deployment.variants}
                )

    def _scale_out(
        self, endpoint: str, deployment: LiveDeployment, variant: LiveVariant, count: int
    ) -> None:
        # Counted as "replacing" before desired rises, so the supervisor, which starts
        # instances missing from the desired count, does not start these a second time.
        variant.replacing += count
        variant.desired = len(variant.instances) + count
        errors: list[str] = []

        def start_one() -> None:
            try:
                instance = self._start_instance(endpoint, variant)
            except DeploymentError as error:
                errors.append(str(error))
                return
            finally:
                variant.replacing -= 1
            if deployment.retired or self._stop.is_set():
                self._stop_instances([instance])
                return
            variant.instances.append(instance)
            variant.route.backends = tuple(i.backend for i in variant.instances)

        threads = [threading.Thread(target=start_one, daemon=True) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            variant.desired = len(variant.instances)
            raise DeploymentError(
                f"{len(errors)} of {count} new instance(s) did not start: {errors[0]}"
            )

    def _scale_in(self, variant: LiveVariant, count: int) -> None:
        def take_out() -> list[LiveInstance]:
            # On the event loop: no request can pick an instance between this choice and
            # the new route, so every request that got one is counted in its outstanding.
            ranked = sorted(variant.instances, key=lambda i: i.backend.outstanding)
            leaving = ranked[:count]
            variant.instances = [i for i in variant.instances if i not in leaving]
            variant.route.backends = tuple(i.backend for i in variant.instances)
            return leaving

        variant.desired = len(variant.instances) - count
        leaving = self.routes.call_in_loop(take_out)
        deadline = time.monotonic() + self.settings.endpoint_model_timeout_seconds + 5.0
        while time.monotonic() < deadline and any(i.backend.outstanding for i in leaving):
            time.sleep(0.02)
        for instance in leaving:
            variant.cpu_seconds.pop(instance.instance_id, None)
        self._stop_instances(leaving)

    def _wake(self, endpoint: str, variant: str) -> bool:
        on_empty = self.on_empty
        return on_empty is not None and on_empty(endpoint, variant)

    # Supervision -------------------------------------------------------------------

    def start(self) -> None:
        """Start the supervisor (health checks, replacements) and the metric periods."""
        if self._supervisor is None:
            self._supervisor = threading.Thread(
                target=self._supervise, name="endpoint-supervisor", daemon=True
            )
            self._supervisor.start()
            self._metrics_thread = threading.Thread(
                target=self._metric_periods, name="endpoint-metrics", daemon=True
            )
            self._metrics_thread.start()

    def _supervise(self) -> None:
        interval = self.settings.endpoint_health_check_seconds
        while not self._stop.wait(interval):
            try:
                self._check_health()
            except Exception:
                log.exception("endpoint health check failed")

    def _metric_periods(self) -> None:
        """Close a metric period on a fixed beat (not drifting with the work done in it):
        autoscaling alarms count periods, so a late period is a late scale-out."""
        period = self.settings.endpoint_metrics_period_seconds
        beat = time.monotonic()
        while True:
            beat += period
            if self._stop.wait(max(0.0, beat - time.monotonic())):
                return
            beat = max(beat, time.monotonic() - period)  # skip periods lost to a stall
            try:
                values = self.flush_metrics()
            except Exception:
                log.exception("writing endpoint metrics failed")
                continue
            for listener in list(self.period_listeners):
                try:
                    listener(values)
                except Exception:
                    log.exception("an endpoint metrics listener failed")

    def _check_health(self) -> None:
        import ray

        if self.ray.state != "running":
            return
        checks: list[tuple[LiveVariant, LiveInstance, Any]] = []
        for live in list(self._live.values()):
            for deployment in (live.current, live.candidate):
                if deployment is None or deployment.retired:
                    continue
                for variant in deployment.variants:
                    for instance in list(variant.instances):
                        checks.append((variant, instance, instance.actor.poll.remote()))
                    self._maybe_replace(live.name, deployment, variant)
        if not checks:
            return
        ray.wait([c[2] for c in checks], num_returns=len(checks), timeout=5)
        for variant, instance, ref in checks:
            dead: str | None = None
            try:
                code = ray.get(ref, timeout=0.1)
                if code is not None:
                    dead = f"model server exited with code {code}"
            except ray.exceptions.GetTimeoutError:
                continue
            except Exception as error:  # noqa: BLE001 - the actor itself is gone
                dead = f"instance actor died ({type(error).__name__})"
            if dead is None and not instance.backend.healthy:
                dead = self._recheck(instance)
            if dead is not None:
                self._drop(variant, instance, dead)

    def _recheck(self, instance: LiveInstance) -> str | None:
        """The gateway marked an instance failed; it stays out unless /ping says 200."""
        backend = instance.backend
        try:
            answer = self._http.get(f"http://{backend.host}:{backend.port}/ping")
            if answer.status_code == 200:
                backend.healthy, backend.failed_at = True, None
                return None
        except httpx.HTTPError:
            pass
        return "not answering GET /ping"

    def _drop(self, variant: LiveVariant, instance: LiveInstance, reason: str) -> None:
        log.warning("instance %s left variant %s: %s", instance.instance_id, variant.name, reason)
        instance.backend.mark_failed()
        if instance in variant.instances:
            variant.instances.remove(instance)
        variant.route.backends = tuple(i.backend for i in variant.instances)
        threading.Thread(target=self._stop_instances, args=([instance],), daemon=True).start()

    def _maybe_replace(
        self, endpoint: str, deployment: LiveDeployment, variant: LiveVariant
    ) -> None:
        missing = variant.desired - len(variant.instances) - variant.replacing
        if missing <= 0 or time.monotonic() < variant.next_replacement_at:
            return
        for _ in range(missing):
            variant.replacing += 1
            threading.Thread(
                target=self._replace, args=(endpoint, deployment, variant), daemon=True
            ).start()

    def _replace(self, endpoint: str, deployment: LiveDeployment, variant: LiveVariant) -> None:
        try:
            instance = self._start_instance(endpoint, variant)
        except DeploymentError as error:
            log.error("replacing an instance of %s/%s failed: %s", endpoint, variant.name, error)
            variant.next_replacement_at = time.monotonic() + 5.0
            return
        finally:
            variant.replacing -= 1
        if deployment.retired or self._stop.is_set():
            self._stop_instances([instance])
            return
        variant.instances.append(instance)
        variant.route.backends = tuple(i.backend for i in variant.instances)
        log.info("instance %s replaced one in %s/%s", instance.instance_id, endpoint, variant.name)

    # Metrics ------------------------------------------------------------------------

    def flush_metrics(self) -> dict[str, dict[str, float]]:
        """Turn the gateway's counters since the last period into metric samples.

        Returns the values written, ``{"endpoint/E/variant/V": {metric: value}}``.
        """
        now = datetime.now(UTC)
        usage = self._usage()
        samples: list[MetricSample] = []
        written: dict[str, dict[str, float]] = {}
        for live in list(self._live.values()):
            per_variant: dict[str, tuple[VariantStats, int, list[float], list[float]]] = {}
            deployments = [d for d in (live.current, live.candidate) if d is not None]
            for deployment in deployments:
                taken = self.routes.call_in_loop(partial(_take_stats, deployment))
                for variant, stats in zip(deployment.variants, taken, strict=True):
                    total, count, cpu, memory = per_variant.get(
                        variant.name, (VariantStats(), 0, [], [])
                    )
                    total.add(stats)
                    healthy = sum(1 for b in variant.route.backends if b.healthy)
                    for instance in variant.instances:
                        used = usage.get(instance.instance_id)
                        if used is not None:
                            cpu_percent, memory_percent = self._utilization(variant, instance, used)
                            cpu.append(cpu_percent)
                            memory.append(memory_percent)
                    per_variant[variant.name] = (total, count + healthy, cpu, memory)
            for variant_name, (stats, count, cpu, memory) in per_variant.items():
                resource = metric_resource(live.name, variant_name)
                values = _metric_values(stats, count)
                values["CPUUtilization"] = sum(cpu) / len(cpu) if cpu else 0.0
                values["MemoryUtilization"] = sum(memory) / len(memory) if memory else 0.0
                written[resource] = values
                samples += [
                    MetricSample(resource=resource, name=n, value=v, timestamp=now)
                    for n, v in values.items()
                ]
        if samples:
            with self.db.session() as session:
                session.add_all(samples)
        self.last_period = written
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
            self._prune_metrics(now)
        return written

    def variant_gauges(self) -> list[VariantGauge]:
        """Every serving variant now: desired and healthy instances, requests in flight
        (summed over both fleets while an update runs). Cheap: no I/O."""
        gauges: list[VariantGauge] = []
        for live in list(self._live.values()):
            seen: dict[str, VariantGauge] = {}
            for deployment in (live.current, live.candidate):
                if deployment is None or deployment.retired:
                    continue
                for variant in deployment.variants:
                    backends = variant.route.backends
                    healthy = sum(1 for b in backends if b.healthy)
                    outstanding = sum(b.outstanding for b in backends)
                    before = seen.get(variant.name)
                    if before is not None:  # the candidate fleet of a variant already seen
                        healthy += before.healthy
                        outstanding += before.outstanding
                    desired = before.desired if before is not None else variant.desired
                    seen[variant.name] = VariantGauge(
                        live.name, variant.name, desired, healthy, outstanding
                    )
            gauges += seen.values()
        return gauges

    def _prune_metrics(self, now: datetime) -> None:
        """Drop endpoint samples older than the retention (a 1 s period writes ~10 rows a
        second per variant; left alone the table would only grow)."""
        cutoff = now - timedelta(seconds=self.settings.endpoint_metrics_retention_seconds)
        with self.db.session() as session:
            session.execute(
                delete(MetricSample).where(
                    MetricSample.resource.startswith("endpoint/"), MetricSample.timestamp < cutoff
                )
            )

    def _usage(self) -> dict[str, tuple[float, int]]:
        """Each running instance's (CPU seconds, resident bytes), asked of its actor."""
        import ray

        instances = [
            i
            for live in list(self._live.values())
            for d in (live.current, live.candidate)
            if d is not None and not d.retired
            for v in d.variants
            for i in v.instances
        ]
        if not instances or self.ray.state != "running":
            return {}
        refs = {i.instance_id: i.actor.usage.remote() for i in instances}
        ray.wait(list(refs.values()), num_returns=len(refs), timeout=2.0)
        out: dict[str, tuple[float, int]] = {}
        for instance_id, ref in refs.items():
            try:
                cpu_seconds, rss = ray.get(ref, timeout=0.01)
            except Exception:  # noqa: BLE001 - no sample this period; health checks act
                continue
            out[instance_id] = (float(cpu_seconds), int(rss))
        return out

    def _utilization(
        self, variant: LiveVariant, instance: LiveInstance, used: tuple[float, int]
    ) -> tuple[float, float]:
        """CPU as CloudWatch has it for an endpoint instance (100% per vCPU, so up to
        vCPUs x 100), and memory as a share of the instance type's."""
        cpu_seconds, rss = used
        period = self.settings.endpoint_metrics_period_seconds
        before = variant.cpu_seconds.get(instance.instance_id)
        variant.cpu_seconds[instance.instance_id] = cpu_seconds
        cpu = 0.0 if before is None else max(0.0, cpu_seconds - before) / period * 100.0
        memory = 100.0 * rss / (variant.itype.memory_gib * 2**30)
        return cpu, memory

    def metrics(self, name: str, since_seconds: float = 3600.0) -> dict[str, Any]:
        self.describe(name)
        since = datetime.now(UTC) - timedelta(seconds=since_seconds)
        prefix = f"endpoint/{name}/variant/"
        series: dict[str, dict[str, list[dict[str, Any]]]] = {}
        with self.db.session() as session:
            rows = session.scalars(
                select(MetricSample)
                .where(MetricSample.resource.startswith(prefix), MetricSample.timestamp >= since)
                .order_by(MetricSample.timestamp)
            ).all()
            for row in rows:
                variant = row.resource[len(prefix) :]
                stamp = row.timestamp if row.timestamp.tzinfo else row.timestamp.replace(tzinfo=UTC)
                series.setdefault(variant, {}).setdefault(row.name, []).append(
                    {"timestamp": stamp.isoformat(), "value": row.value}
                )
        return {
            "endpoint": name,
            "period_seconds": self.settings.endpoint_metrics_period_seconds,
            "variants": series,
        }

    def variant_samples(
        self, name: str, variant: str, since_seconds: float
    ) -> list[tuple[float, dict[str, float]]]:
        """A variant's recorded metric periods since then, oldest first, as
        ``(epoch seconds, {metric: value})``: the samples a scaling simulation replays.

        :meth:`flush_metrics` writes all of a period's values with one timestamp, so the
        rows grouped by timestamp give back the periods.
        """
        since = datetime.now(UTC) - timedelta(seconds=since_seconds)
        with self.db.session() as session:
            rows = session.execute(
                select(MetricSample.timestamp, MetricSample.name, MetricSample.value)
                .where(
                    MetricSample.resource == metric_resource(name, variant),
                    MetricSample.timestamp >= since,
                )
                .order_by(MetricSample.timestamp, MetricSample.id)
            ).all()
        periods: dict[datetime, dict[str, float]] = {}
        for stamp, metric, value in rows:
            periods.setdefault(stamp, {})[metric] = value
        return [
            ((stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp(), values)
            for stamp, values in periods.items()
        ]

    # Start, stop, recover ------------------------------------------------------------

    def recover(self, restarted_at: datetime | None = None) -> list[str]:
        """After a restart: redeploy endpoints that were serving, finish deletions.

        The previous server's instances died with it (``kennel.cluster._leftovers``), so
        every endpoint starts a new fleet: one being created is created again; one that
        served (InService, or mid-update) comes back ``SystemUpdating`` on the config it
        served, at the instance counts it had, and an update the restart cut short is
        rolled back, with the reason. Deletions are finished. Returns the names redeployed.
        """
        when = (restarted_at or datetime.now(UTC)).isoformat(timespec="seconds")
        recovered: list[str] = []
        with self.db.session() as session:
            rows = session.scalars(select(Endpoint)).all()
            found = [(r.name, r.status, r.config_name, r.pending_config_name) for r in rows]
        for name, status, config_name, pending in found:
            if status == DELETING:
                with self.db.session() as session:
                    session.execute(delete(Endpoint).where(Endpoint.name == name))
                continue
            if status == FAILED:
                continue
            interrupted = None
            if pending and status in (UPDATING, ROLLING_BACK):
                interrupted = (
                    pending,
                    f"the kennel server stopped during the update (restarted at {when}); "
                    f"the endpoint came back on its previous config {config_name}. "
                    "Update it again.",
                )
            new_status = CREATING if status == CREATING else SYSTEM_UPDATING
            self._save(name, status=new_status, pending_config_name=None)
            live = LiveEndpoint(name, new_status)
            self._live[name] = live
            self._publish(live)
            self._run(live, self._create_worker, live, True, interrupted)
            recovered.append(name)
        return recovered

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop supervising and stop every instance; rows stay for the next start."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        if self.ray.state == "running":
            with contextlib.suppress(Exception):
                self.flush_metrics()
        for live in list(self._live.values()):
            if live.worker is not None:
                live.worker.join(timeout)
        instances = [
            i
            for live in self._live.values()
            for d in (live.current, live.candidate)
            if d is not None
            for v in d.variants
            for i in v.instances
        ]
        if instances and self.ray.state == "running":
            self._stop_instances(instances)
        self._http.close()

    # Helpers ---------------------------------------------------------------------------

    def _publish(self, live: LiveEndpoint) -> None:
        deployments: list[tuple[DeploymentRoute, float]] = []
        if live.current is not None:
            deployments.append((live.current.route, 1.0 - live.share))
        if live.candidate is not None and live.share > 0:
            deployments.append((live.candidate.route, live.share))
        deployments = [(d, s) for d, s in deployments if s > 0]
        self.routes.set(EndpointRoute(live.name, tuple(deployments), live.status))

    def _save(self, name: str, **values: Any) -> None:
        with self.db.session() as session:
            row = session.get(Endpoint, name)
            if row is None:
                return
            for key, value in values.items():
                setattr(row, key, value)
            row.modified_at = utcnow()


def _take_stats(deployment: LiveDeployment) -> list[VariantStats]:
    return [v.route.stats.take() for v in deployment.variants]


def metric_resource(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def _metric_values(stats: VariantStats, instances: int) -> dict[str, float]:
    calls = stats.invocations
    return {
        "Invocations": float(calls),
        "InvocationsPerInstance": calls / instances if instances else float(calls),
        "ModelLatency": stats.model_latency_us / calls if calls else 0.0,
        "OverheadLatency": stats.overhead_latency_us / calls if calls else 0.0,
        "Invocation4XXErrors": float(stats.errors_4xx),
        "Invocation5XXErrors": float(stats.errors_5xx),
        "ModelErrors": float(stats.model_errors),
        "InstanceCount": float(instances),
    }


def _alarm(alarms: AlarmSpec, seen: VariantStats) -> str | None:
    if seen.invocations < alarms.min_invocations:
        return None
    errors = seen.errors_5xx
    rate = errors / seen.invocations
    if alarms.max_error_rate is not None and rate > alarms.max_error_rate:
        return (
            f"5XX rate {rate:.0%} ({errors} of {seen.invocations} invocations) is above "
            f"{alarms.max_error_rate:.0%}"
        )
    if alarms.max_latency_ms is not None and seen.latencies_ms:
        ordered = sorted(seen.latencies_ms)
        p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
        if p90 > alarms.max_latency_ms:
            return f"p90 latency {p90:.1f} ms is above {alarms.max_latency_ms:g} ms"
    return None


def _event(message: str) -> dict[str, Any]:
    return {"time": datetime.now(UTC).isoformat(), "message": message}


def _story(
    status: str,
    config_name: str,
    events: list[dict[str, Any]],
    deployment: DeploymentSpec | None = None,
    kept_config: str | None = None,
) -> dict[str, Any]:
    story: dict[str, Any] = {"status": status, "config_name": config_name, "events": events}
    if deployment is not None:
        story["deployment"] = deployment.model_dump()
    if kept_config is not None:
        story["serving_config_name"] = kept_config
    return story


def _fleet_size(deployment: LiveDeployment) -> int:
    return sum(len(v.instances) for v in deployment.variants)


def _kill(actor: Any) -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.kill(actor)


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        value = answer.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def endpoint_not_found(name: str) -> NotFoundError:
    return NotFoundError(f"Could not find endpoint {name}.", hint="See `kennel endpoints list`.")


def _config_not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"Could not find endpoint configuration {name}.",
        hint="See `kennel endpoint-configs list`.",
    )
