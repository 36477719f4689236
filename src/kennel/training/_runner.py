"""Running one training job: place its instances, start them, watch them, finish it.

One thread per job in the server. It talks to the instances (Ray actors) and writes
every state change to the database first, so ``describe`` always tells the truth.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kennel.cluster._catalog import InstanceType, instance_type
from kennel.debugger._spec import CONFIG_ENV, hook_config
from kennel.store import MetricSample, TrainingJob
from kennel.training._debug_watch import DEBUG_FOLDER, DebugWatch, debug_configs
from kennel.training._instance import PYTHON, TrainingInstance
from kennel.training._spec import BUILTIN_TRAINER

if TYPE_CHECKING:
    from kennel.training._jobs import TrainingService

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 10.0
FAILURE_TAIL_LINES = 15
_ERROR_LINE = re.compile(r"(Error|Exception|error:|Traceback|Killed)")


class JobFailed(Exception):
    """Ends a job as Failed with a reason a person can act on."""


class JobStopped(Exception):
    """Ends a job as Stopped (secondary status Stopped or MaxRuntimeExceeded)."""

    def __init__(self, secondary: str, message: str) -> None:
        super().__init__(message)
        self.secondary = secondary


class JobRunner(threading.Thread):
    def __init__(self, name: str, service: TrainingService) -> None:
        super().__init__(name=f"training-{name}", daemon=True)
        self.job_name = name
        self.service = service
        self.db = service.db
        self._stop = threading.Event()
        self._stop_reason = "Stopped by request."
        self.actors: list[Any] = []
        self.placement_group: Any = None
        self.log_offsets: dict[str, int] = {}
        self.partial_lines: dict[str, str] = {}
        self.training_started: float | None = None
        self.deadline: float | None = None
        self.step = 0
        self.last_metrics: dict[str, float] = {}
        self._compiled: list[tuple[str, re.Pattern[str]]] | None = None
        self.poll_seconds = POLL_SECONDS
        self.hosts: list[str] = []
        self.debug: DebugWatch | None = None

    def request_stop(self, reason: str = "Stopped by request.") -> None:
        self._stop_reason = reason
        self._stop.set()

    # The life of a job -----------------------------------------------------------

    def run(self) -> None:
        job = self._load()
        itype = instance_type(job["instance_type"])
        self.deadline = time.monotonic() + job["max_runtime_seconds"]
        hosts = [f"algo-{i + 1}" for i in range(job["instance_count"])]
        self.hosts = hosts
        (self.service.log_dir / self.job_name).mkdir(parents=True, exist_ok=True)
        self.debug = DebugWatch(job, self.service.log_dir / self.job_name / DEBUG_FOLDER)
        try:
            self._start(job, itype, hosts)
            self._watch(hosts)
            self._transition("Uploading", "Uploading generated training model")
            self._finish("Completed", "Completed", "Training job completed", model=self._upload())
        except JobStopped as stopped:
            self._finish("Stopped", stopped.secondary, str(stopped), model=self._upload_quietly())
        except JobFailed as failed:
            self._finish("Failed", "Failed", "Training job failed", failure=str(failed))
        except Exception as exc:
            log.exception("training job %s failed", self.job_name)
            self._finish(
                "Failed",
                "Failed",
                "Training job failed",
                failure=f"InternalFailure: {type(exc).__name__}: {exc}",
            )
        finally:
            self._release()
            self.service.forget(self.job_name)

    def _start(self, job: dict[str, Any], itype: InstanceType, hosts: list[str]) -> None:
        """Cold start: place the instances, start their actors, download, launch."""
        placement = self._place(itype, len(hosts))
        self._start_actors(job, hosts, placement)
        self._transition("Downloading", "Downloading input data")
        channels = self._prepare(job)
        self._transition("Training", "Training in progress.")
        self._launch(job, hosts, placement, channels)

    # Placement ----------------------------------------------------------------------

    def _place(self, itype: InstanceType, count: int) -> dict[str, Any]:
        """Reserve the instances' resources: whole instances on a cluster, shares locally."""
        import ray
        from ray.util.placement_group import placement_group

        self._transition("Starting", "Preparing the instances for training")
        if not self.service.ray.wait(300):
            raise JobFailed(f"Ray is not running: {self.service.ray.error}")
        local = self.service.ray.mode == "local"
        total_cpus = float(ray.cluster_resources().get("CPU", 1))
        total_gpus = float(ray.cluster_resources().get("GPU", 0))
        plan = plan_placement(itype, count, total_cpus, total_gpus, local=local)
        cpus, gpus = plan["cpus_per_instance"], plan["gpus_per_instance"]
        bundle: dict[str, float] = {"CPU": cpus}
        if gpus:
            bundle["GPU"] = gpus
        self.placement_group = placement_group(
            [dict(bundle) for _ in range(count)], strategy="PACK" if local else "SPREAD"
        )
        waiting_since = time.monotonic()
        while True:
            ready, _ = ray.wait([self.placement_group.ready()], timeout=1.0)
            if ready:
                break
            self._check_stop_or_timeout()
            if time.monotonic() - waiting_since > 2:
                self._transition(
                    "Starting",
                    f"Waiting for {count} x {itype.name} ({itype.vcpus} vCPU) to fit in the "
                    f"cluster ({total_cpus:.0f} CPU in all)",
                )
        if not local:
            plan["nodes"] = bundle_nodes(
                self.placement_group, [f"algo-{i + 1}" for i in range(count)]
            )
        self._update(placement=plan)
        return plan

    def _start_actors(
        self, job: dict[str, Any], hosts: list[str], placement: dict[str, Any]
    ) -> None:
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        remote_cls = ray.remote(TrainingInstance)
        for index, host in enumerate(hosts):
            strategy = PlacementGroupSchedulingStrategy(
                placement_group=self.placement_group, placement_group_bundle_index=index
            )
            actor = remote_cls.options(
                num_cpus=placement["cpus_per_instance"],
                num_gpus=placement["gpus_per_instance"],
                scheduling_strategy=strategy,
            ).remote(self.job_name, host, self.service.settings.resolved_artifact_url)
            self.actors.append(actor)

    def _prepare(self, job: dict[str, Any]) -> dict[str, str]:
        """Every instance fetches the channels and the source; they land at the same paths."""
        refs = [a.prepare.remote(job["channels"], job["source_uri"]) for a in self.actors]
        results = self._get(refs, what="downloading the input data")
        return dict(results[0])

    # Launch and watch -------------------------------------------------------------------

    def _launch(
        self,
        job: dict[str, Any],
        hosts: list[str],
        placement: dict[str, Any],
        channels: dict[str, str],
    ) -> None:
        master_addr, master_port = self._get([self.actors[0].node_address.remote()], "")[0]
        paths = self._get([a.paths.remote() for a in self.actors], "")
        interfaces: list[str | None] = [None] * len(hosts)
        if self.service.ray.mode != "local" and len(hosts) > 1:
            interfaces = self._get([a.network_interface.remote() for a in self.actors], "")
        command = self._command(job)
        refs = []
        for rank, (actor, host) in enumerate(zip(self.actors, hosts, strict=True)):
            env = sm_environment(
                job,
                hosts,
                host,
                placement,
                channels,
                paths[rank],
                master=(master_addr, master_port),
                rank=rank,
                artifact_url=self.service.settings.resolved_artifact_url,
            )
            interface = interfaces[rank] or "eth0"
            if interfaces[rank]:
                # Gloo would otherwise bind the address the host name resolves to, which
                # need not be the one the other nodes reach (or even exist on this node).
                env.setdefault("GLOO_SOCKET_IFNAME", interface)
                env["SM_NETWORK_INTERFACE_NAME"] = interface
            resource = {"current_host": host, "hosts": hosts, "network_interface_name": interface}
            self._get([actor.write_config.remote(job["hyperparameters"], resource)], "")
            refs.append(actor.start.remote(command, env, None))
        self._get(refs, what="starting the entry point")
        self._start_monitors(job, placement)
        self.training_started = time.monotonic()
        self._update(training_started_at=datetime.now(UTC))

    def _start_monitors(self, job: dict[str, Any], placement: dict[str, Any]) -> None:
        """The profiler's system metrics, sampled by each instance beside its script."""
        _, profiler = debug_configs(job)
        if profiler.enabled:
            interval, cpus = profiler.interval_ms / 1000, int(placement["threads_per_instance"])
            refs = [a.start_monitor.remote(interval, cpus) for a in self.actors]
            try:
                self._get(refs, what="starting the profiler")
            except JobFailed as exc:  # the job runs on without system metrics
                log.warning("%s: %s", self.job_name, exc)

    def _command(self, job: dict[str, Any]) -> list[str]:
        args = [part for k, v in job["hyperparameters"].items() for part in (f"--{k}", str(v))]
        if job["entry_point"] == BUILTIN_TRAINER:
            return [PYTHON, "-m", BUILTIN_TRAINER, *args]
        return [PYTHON, job["entry_point"], *args]

    def _watch(self, hosts: list[str]) -> None:
        import ray

        exit_codes: dict[str, int] = {}
        while True:
            try:
                self._drain_logs(hosts)
                self._watch_rules(hosts)
                codes = ray.get([a.poll.remote() for a in self.actors])
            except ray.exceptions.RayActorError as exc:
                # Its node died (or its worker process): the job cannot go on without it.
                raise JobFailed(_lost_instance(exc, hosts, self.actors)) from exc
            for host, code in zip(hosts, codes, strict=True):
                if code is not None:
                    exit_codes[host] = code
            failed = {h: c for h, c in exit_codes.items() if c != 0}
            if failed:
                self._drain_logs(hosts)
                raise JobFailed(self._failure_reason(hosts, failed))
            if len(exit_codes) == len(hosts):
                self._drain_logs(hosts)
                return
            self._check_stop_or_timeout()
            time.sleep(self.poll_seconds)

    def _watch_rules(self, hosts: list[str]) -> None:
        """Copy the debug output, run the rules; a StopTraining rule that fires stops us."""
        if self.debug is None:
            return
        self.debug.drain(hosts, self.actors)
        changed, stop = self.debug.evaluate()
        if changed:
            self._update(rule_evaluations=self.debug.statuses())
        if stop and not self._stop.is_set():
            state = stop[0]
            name = state.configuration.configuration_name
            self.request_stop(f"Stopped by rule {name} (action StopTraining): {state.details}")

    def _close_rules(self) -> None:
        """Last copy and final evaluation; the data into the artifact store."""
        if self.debug is None or not self.debug.enabled:
            return
        try:
            if self.actors and self.hosts:
                self.debug.drain(self.hosts, self.actors)
            self.debug.evaluate(final=True)
            self._update(rule_evaluations=self.debug.statuses())
            key = _output_key(self._load()["output_path"], self.service.artifacts)
            if key is not None:
                self.debug.upload(self.service.artifacts, f"{key}/debug-output")
        except Exception as exc:  # noqa: BLE001 - the job's own outcome stands regardless
            log.warning("closing the debugger of %s failed: %s", self.job_name, exc)

    def _check_stop_or_timeout(self) -> None:
        if self._stop.is_set():
            self._terminate_all()
            raise JobStopped("Stopped", self._stop_reason)
        if self.deadline is not None and time.monotonic() > self.deadline:
            self._terminate_all()
            raise JobStopped(
                "MaxRuntimeExceeded",
                "Training job stopped: it ran past its maximum runtime.",
            )

    def _terminate_all(self) -> None:
        import ray

        self._transition("Stopping", "Stopping the training job")
        if self.actors:
            ray.get([a.terminate.remote(STOP_GRACE_SECONDS) for a in self.actors], timeout=60)

    def _failure_reason(self, hosts: list[str], failed: dict[str, int]) -> str:
        import ray

        host, code = sorted(failed.items())[0]
        index = hosts.index(host)
        reported = ray.get(self.actors[index].failure_file.remote())
        if reported:
            return f"AlgorithmError: {reported}"
        tail = self._log_tail(host)
        return (
            f"AlgorithmError: the entry point exited with code {code} on {host}. "
            f"Last lines of its log:\n{tail}"
        )

    def _log_tail(self, host: str) -> str:
        path = self.service.log_dir / self.job_name / f"{host}.log"
        if not path.exists():
            return "(no output)"
        lines = path.read_text(errors="replace").splitlines()
        errors = [i for i, line in enumerate(lines) if _ERROR_LINE.search(line)]
        start = max(0, (errors[0] if errors else len(lines)) - 2)
        picked = lines[start:][-FAILURE_TAIL_LINES:] or lines[-FAILURE_TAIL_LINES:]
        return "\n".join(picked) or "(no output)"

    # Logs and metrics ---------------------------------------------------------------------

    def _drain_logs(self, hosts: list[str]) -> None:
        import ray

        for host, actor in zip(hosts, self.actors, strict=True):
            offset = self.log_offsets.get(host, 0)
            while True:
                data, new_offset = ray.get(actor.read_log.remote(offset))
                if not data:
                    break
                path = self.service.log_dir / self.job_name / f"{host}.log"
                with path.open("ab") as f:
                    f.write(data)
                if host == hosts[0]:
                    # Metrics come from the first host's log: under DDP every rank would
                    # otherwise report the same value once each.
                    self._parse_metrics(host, data.decode("utf-8", errors="replace"))
                offset = new_offset
            self.log_offsets[host] = offset

    def _parse_metrics(self, host: str, text: str) -> None:
        definitions = self._definitions()
        if not definitions:
            return
        buffered = self.partial_lines.get(host, "") + text
        *lines, rest = buffered.split("\n")
        self.partial_lines[host] = rest
        samples: list[MetricSample] = []
        now = datetime.now(UTC)
        for line in lines:
            for name, pattern in definitions:
                for match in pattern.finditer(line):
                    try:
                        value = float(match.group(1))
                    except (ValueError, IndexError):
                        continue
                    self.step += 1
                    self.last_metrics[name] = value
                    samples.append(
                        MetricSample(
                            resource=f"training-job/{self.job_name}",
                            name=name,
                            value=value,
                            timestamp=now,
                            step=self.step,
                        )
                    )
        if samples:
            with self.db.session() as session:
                session.add_all(samples)
                job = session.get(TrainingJob, self.job_name)
                if job is not None:
                    job.final_metrics = dict(self.last_metrics)

    def _definitions(self) -> list[tuple[str, re.Pattern[str]]]:
        if self._compiled is None:
            job = self._load()
            self._compiled = [
                (d["name"], re.compile(d["regex"])) for d in job["metric_definitions"]
            ]
        return self._compiled

    # Output and the end ----------------------------------------------------------------------

    def _upload(self) -> str | None:
        import ray

        job = self._load()
        key = _output_key(job["output_path"], self.service.artifacts)
        if key is None:
            return None
        uri = ray.get(self.actors[0].upload_model.remote(f"{key}/model.tar.gz"), timeout=3600)
        return str(uri) if uri else None

    def _upload_quietly(self) -> str | None:
        try:
            return self._upload() if self.actors else None
        except Exception as exc:  # noqa: BLE001 - a stopped job keeps what it can
            log.warning("could not upload the model of stopped job %s: %s", self.job_name, exc)
            return None

    def _finish(
        self,
        status: str,
        secondary: str,
        message: str,
        *,
        model: str | None = None,
        failure: str | None = None,
    ) -> None:
        self._close_rules()
        job = self._load()
        itype = instance_type(job["instance_type"])
        seconds = 0
        if self.training_started is not None:
            seconds = math.ceil(time.monotonic() - self.training_started) * job["instance_count"]
        # One write: a reader must never see the final secondary status on a job still
        # InProgress (the SDK's log follower printed "Completed" twice).
        self._transition(
            secondary,
            message,
            status=status,
            model_artifact_uri=model,
            failure_reason=failure,
            billable_seconds=seconds,
            cost_usd=seconds / 3600 * itype.price_per_hour,
            ended_at=datetime.now(UTC),
            final_metrics=dict(self.last_metrics),
        )
        if failure:
            log.info("training job %s failed: %s", self.job_name, failure.splitlines()[0])

    def _release(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        for actor in self.actors:
            try:
                ray.get(actor.cleanup.remote(), timeout=30)
            except Exception as exc:  # noqa: BLE001 - cleaning up must go on
                log.warning("cleanup of %s failed: %s", self.job_name, exc)
            ray.kill(actor)
        if self.placement_group is not None:
            remove_placement_group(self.placement_group)

    # Small helpers ------------------------------------------------------------------------------

    def _get(self, refs: list[Any], what: str) -> list[Any]:
        """ray.get, but a stop request or the runtime limit still gets through."""
        import ray

        pending = list(refs)
        while True:
            ready, _ = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            if len(ready) == len(pending):
                try:
                    return list(ray.get(refs))
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if exc.cause is not None else exc
                    raise JobFailed(f"ClientError: {what} failed: {cause}") from exc
            self._check_stop_or_timeout()

    def _load(self) -> dict[str, Any]:
        from kennel.training._jobs import job_to_dict

        with self.db.session() as session:
            job = session.get(TrainingJob, self.job_name)
            assert job is not None
            return job_to_dict(job)

    def _update(self, **values: Any) -> None:
        with self.db.session() as session:
            job = session.get(TrainingJob, self.job_name)
            assert job is not None
            for key, value in values.items():
                setattr(job, key, value)

    def _transition(self, secondary: str, message: str, **values: Any) -> None:
        """Record a secondary status (SageMaker's SecondaryStatusTransitions) and, in the
        same write, any other ``values`` of the job."""
        now = datetime.now(UTC).isoformat()
        with self.db.session() as session:
            job = session.get(TrainingJob, self.job_name)
            assert job is not None
            for key, value in values.items():
                setattr(job, key, value)
            transitions = list(job.status_transitions)
            if transitions and transitions[-1]["status"] == secondary:
                if transitions[-1]["message"] == message:
                    return
                transitions[-1] = {**transitions[-1], "message": message}
            else:
                if transitions:
                    transitions[-1] = {**transitions[-1], "end_time": now}
                transitions.append({"status": secondary, "start_time": now, "message": message})
            job.status_transitions = transitions
            job.secondary_status = secondary
            job.status_message = message
            if secondary == "Stopping" and job.status == "InProgress":
                job.status = "Stopping"


def plan_placement(
    itype: InstanceType, count: int, total_cpus: float, total_gpus: float, *, local: bool
) -> dict[str, Any]:
    """How much of the cluster each of ``count`` instances gets.

    On a cluster an instance is the whole instance type (and waits until one fits); on one
    machine (local mode) instances that would not fit share its cores, so multi-instance
    jobs and a tuning job's parallel warm slots still run side by side.
    """
    want_cpus = float(itype.vcpus * count)
    if local and want_cpus > total_cpus:
        # Rounded down: the shares must add up to no more than the machine has.
        cpus = math.floor(total_cpus / count * 100) / 100
        note = (
            f"oversubscribed: {count} x {itype.name} want {want_cpus:.0f} vCPU, this machine "
            f"has {total_cpus:.0f}; each instance gets {cpus} CPU"
        )
    else:
        cpus, note = float(itype.vcpus), ""
    gpus = float(itype.gpus) if total_gpus >= itype.gpus * count else 0.0
    if itype.gpus and not gpus:
        note = (note + "; " if note else "") + "no GPU here: runs on the CPU"
    return {
        "cpus_per_instance": cpus,
        "gpus_per_instance": gpus,
        "threads_per_instance": max(1, math.floor(cpus)),
        "oversubscribed": bool(note.startswith("oversubscribed")),
        "note": note,
    }


def _lost_instance(error: Exception, hosts: list[str], actors: list[Any]) -> str:
    """Why a job failed when one of its instances' actors died (its node was lost)."""
    lost = getattr(error, "actor_id", None)
    host = next(
        (h for h, a in zip(hosts, actors, strict=True) if a._actor_id.hex() == lost),
        "an instance",
    )
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"InternalServerError: {host} was lost while training (its Ray node or worker "
        f"process died: {first}). Start the job again: the cluster places it on the nodes "
        "it has now."
    )


def bundle_nodes(group: Any, hosts: list[str]) -> dict[str, dict[str, str]]:
    """Which Ray node each host's bundle was placed on (its node id and IP address)."""
    import ray
    from ray.util import placement_group_table

    placed = placement_group_table(group).get("bundles_to_node_id", {})
    ips = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
    nodes = {}
    for index, host in enumerate(hosts):
        node_id = str(placed.get(index, ""))
        nodes[host] = {"node_id": node_id, "node_ip": str(ips.get(node_id, ""))}
    return nodes


def sm_environment(
    job: dict[str, Any],
    hosts: list[str],
    host: str,
    placement: dict[str, Any],
    channels: dict[str, str],
    paths: dict[str, str],
    *,
    master: tuple[str, int],
    rank: int,
    artifact_url: str | None = None,
) -> dict[str, str]:
    """The SageMaker training environment (plus torch.distributed's when N > 1)."""
    hps = job["hyperparameters"]
    user_args = [part for k, v in hps.items() for part in (f"--{k}", str(v))]
    threads = str(placement["threads_per_instance"])
    env: dict[str, str] = {
        "SM_MODEL_DIR": paths["model"],
        "SM_OUTPUT_DIR": paths["output"],
        "SM_OUTPUT_DATA_DIR": paths["output_data"],
        "SM_INPUT_DIR": paths["input"],
        "SM_INPUT_CONFIG_DIR": paths["input_config"],
        "SM_CHECKPOINT_DIR": paths["checkpoints"],
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hps),
        "SM_HOSTS": json.dumps(hosts),
        "SM_CURRENT_HOST": host,
        "SM_NUM_CPUS": threads,
        "SM_NUM_GPUS": str(int(placement["gpus_per_instance"])),
        "SM_LOG_LEVEL": "20",
        "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_USER_ARGS": json.dumps(user_args),
        "SM_USER_ENTRY_POINT": job["entry_point"],
        "SM_MODULE_DIR": paths["code"],
        "SAGEMAKER_SUBMIT_DIRECTORY": paths["code"],
        "SAGEMAKER_PROGRAM": job["entry_point"],
        "TRAINING_JOB_NAME": job["name"],
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "PYTHONUNBUFFERED": "1",
    }
    for name, path in channels.items():
        env[f"SM_CHANNEL_{name.upper().replace('-', '_').replace('.', '_')}"] = path
    for key, value in hps.items():
        env[f"SM_HP_{key.upper().replace('-', '_')}"] = str(value)
    if len(hosts) > 1:
        env.update(
            MASTER_ADDR=master[0],
            MASTER_PORT=str(master[1]),
            WORLD_SIZE=str(len(hosts)),
            RANK=str(rank),
            LOCAL_RANK="0",
        )
    training_env = {
        "hosts": hosts,
        "current_host": host,
        "hyperparameters": hps,
        "channel_input_dirs": channels,
        "model_dir": paths["model"],
        "output_data_dir": paths["output_data"],
        "num_cpus": int(threads),
        "num_gpus": int(placement["gpus_per_instance"]),
        "job_name": job["name"],
    }
    env["SM_TRAINING_ENV"] = json.dumps(training_env)
    if artifact_url is not None:
        # The built-in trainer's feature cache (frozen backbone): trials of one tuning job
        # share backbone features through the artifact store, which every node can read.
        env["KENNEL_FEATURE_CACHE_URL"] = f"{artifact_url.rstrip('/')}/feature-cache"
    hook = hook_config(*debug_configs(job), out_dir=str(Path(paths["output"]) / DEBUG_FOLDER))
    if hook is not None:
        env[CONFIG_ENV] = json.dumps(hook)
    env.update(job["environment"])
    return env


def _output_key(output_path: str, artifacts: Any) -> str | None:
    """The artifact-store key under which a job's output goes (None if outside the store)."""
    root = artifacts.uri("")
    if output_path.rstrip("/").startswith(root.rstrip("/")):
        return output_path.rstrip("/")[len(root.rstrip("/")) :].strip("/")
    return None
