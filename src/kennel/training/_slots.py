"""Warm slots: one trial instance's resources, data and a warm Python, held across trials.

A cold training job places its instances, starts actors, downloads its channels and runs a
fresh Python that imports torch: seconds to minutes before the script's first line. A
tuning job runs many short trials of the same template, so it opens ``max_parallel`` warm
slots once (``TrainingService.open_slots``) and runs each trial on a free one
(``TrainingService.create(spec, slot=...)``):

* the slot's placement (whole instances on a cluster, a share of the cores locally, as
  multi-instance jobs share them) is held for the tuning job's life;
* its ``WarmSlotWorker`` actor downloaded the channels and the source once;
* its zygote (``_zygote``) has imported torch and the trainer, and forks the trial.

Every trial is still a training job with its own record, log, metrics, model artifact and
stop; only its process and its model/output folders are per trial. Multi-instance trials
take the cold path (a DDP rendezvous per trial across warm slots is not worth it yet).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kennel._settings import without_server_secrets
from kennel.cluster._catalog import InstanceType
from kennel.training._instance import PYTHON, WORK_ROOT_ENV, TrainingInstance, prepare_inputs
from kennel.training._runner import JobRunner, plan_placement, sm_environment

if TYPE_CHECKING:
    from kennel.training._jobs import TrainingService

log = logging.getLogger(__name__)

ZYGOTE_START_SECONDS = 120.0
"""Importing torch and torchvision on a busy 2-core machine can take half a minute."""
ZYGOTE_CALL_SECONDS = 30.0
WARM_POLL_SECONDS = 0.05
"""A warm trial's runner polls its process this often: the slot frees this much sooner."""
OPEN_SLOTS_SECONDS = 600.0


class SlotUnavailable(Exception):
    """The warm slots could not be opened (no room, Ray gone, a zygote that would not start)."""


class WarmSlotWorker(TrainingInstance):
    """The actor behind a slot; between trials ``self.work`` points at the current trial.

    It reuses ``TrainingInstance``'s per-folder methods (paths, read_log, failure_file,
    upload_model) on the trial's folder, whose ``input/data`` and ``code`` link to the
    slot's once-downloaded copies.
    """

    def __init__(self, slot_name: str, artifact_url: str) -> None:
        root = Path(os.environ.get(WORK_ROOT_ENV) or Path(tempfile.gettempdir()) / "kennel-jobs")
        self.slot_dir = root / "warm-slots" / slot_name
        shutil.rmtree(self.slot_dir, ignore_errors=True)
        for sub in ("input/data", "code", "trials"):
            (self.slot_dir / sub).mkdir(parents=True, exist_ok=True)
        self.work = self.slot_dir
        self.host = "algo-1"
        self.artifact_url = artifact_url
        self.log_path = self.slot_dir / "idle.log"
        self.log_path.touch()
        self.process = None
        self.zygote: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.started_at = 0.0

    # The slot -----------------------------------------------------------------------

    def prepare(self, channels: dict[str, str], source_uri: str | None) -> dict[str, str]:
        """Download once, for every trial: the channels and the source into the slot."""
        return prepare_inputs(self.slot_dir, channels, source_uri)

    def start_zygote(self) -> float:
        """Start the warm Python and wait until it has imported torch; its start seconds."""
        began = time.monotonic()
        with (self.slot_dir / "zygote.log").open("ab") as errors:
            self.zygote = subprocess.Popen(
                [sys.executable, "-m", "kennel.training._zygote"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=str(self.slot_dir),
                # Its trials are forks: what it starts with, /proc/<trial>/environ shows.
                env=without_server_secrets(os.environ),
                start_new_session=True,
            )
        line = self._read_line(ZYGOTE_START_SECONDS)
        if line.strip() != b"READY":
            raise RuntimeError(f"the zygote did not start: {line!r}; see {self.slot_dir}")
        return time.monotonic() - began

    def _read_line(self, timeout: float) -> bytes:
        assert self.zygote is not None and self.zygote.stdout is not None
        ready, _, _ = select.select([self.zygote.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"the zygote did not answer in {timeout} s")
        return self.zygote.stdout.readline()

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.zygote is None or self.zygote.stdin is None or self.zygote.poll() is not None:
            raise RuntimeError("the slot's zygote is not running; see its zygote.log")
        self.zygote.stdin.write(json.dumps(request).encode() + b"\n")
        self.zygote.stdin.flush()
        answer: dict[str, Any] = json.loads(self._read_line(ZYGOTE_CALL_SECONDS) or b"{}")
        if "error" in answer:
            raise RuntimeError(f"zygote: {answer['error']}")
        return answer

    # One trial ------------------------------------------------------------------------

    def begin_trial(self, job_name: str) -> dict[str, str]:
        """A fresh folder for this trial (model, output, config), linked to the slot's data."""
        self.end_trial()
        self.work = self.slot_dir / "trials" / job_name
        for sub in ("input/config", "model", "output/data", "checkpoints"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        (self.work / "input" / "data").symlink_to(self.slot_dir / "input" / "data")
        (self.work / "code").symlink_to(self.slot_dir / "code")
        self.log_path = self.work / "output" / "log.txt"
        self.log_path.touch()
        return self.paths()

    def start(self, command: list[str], env: dict[str, str], cwd: str | None) -> int:
        """Fork the entry point from the zygote; the same command a cold instance runs."""
        code_dir = str(self.slot_dir / "code")
        full_env = {**without_server_secrets(os.environ), **env}
        request: dict[str, Any]
        if command[:2] == [PYTHON, "-m"]:
            request = {"module": command[2], "argv": [command[2], *command[3:]]}
        else:
            script = str(Path(code_dir) / command[1])
            request = {"module": None, "argv": [script, *command[2:]]}
        answer = self._call(
            {
                "op": "spawn",
                **request,
                "env": full_env,
                "cwd": cwd or code_dir,
                "log": str(self.log_path),
            }
        )
        self.pid, self.exit_code = int(answer["pid"]), None
        self.started_at = float(answer["started_at"])
        return self.pid

    def trial_started_at(self) -> float:
        """When the zygote forked the trial (epoch seconds)."""
        return self.started_at

    def script_pid(self) -> int | None:
        return self.pid

    def poll(self) -> int | None:
        if self.pid is None or self.exit_code is not None:
            return self.exit_code
        code = self._call({"op": "poll", "pid": self.pid}).get("code")
        self.exit_code = None if code is None else int(code)
        if self.exit_code is not None:
            self.stop_monitor()
        return self.exit_code

    def terminate(self, grace_seconds: float) -> int | None:
        """SIGTERM the trial's process group, SIGKILL after the grace; never the zygote."""
        if self.pid is None or self.poll() is not None:
            return self.exit_code
        for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):  # gone already: poll says how
                os.killpg(self.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.poll() is not None:
                    return self.exit_code
                time.sleep(0.05)
        return self.exit_code

    def end_trial(self) -> None:
        """Kill what is left of the trial and drop its folder (its model was uploaded)."""
        if self.pid is not None:
            self.terminate(1.0)
        self.stop_monitor()
        if self.work != self.slot_dir:
            shutil.rmtree(self.work, ignore_errors=True)
        self.work, self.pid, self.exit_code = self.slot_dir, None, None
        self.log_path = self.slot_dir / "idle.log"

    def cleanup(self) -> None:
        """The slot is closing: the trial, then the zygote (EOF, then a kill), then files."""
        self.end_trial()
        if self.zygote is not None:
            if self.zygote.stdin is not None:
                self.zygote.stdin.close()
            try:
                self.zygote.wait(5)
            except subprocess.TimeoutExpired:
                self.zygote.kill()
                self.zygote.wait(5)
        shutil.rmtree(self.slot_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # the shared folder goes with the last slot
            self.slot_dir.parent.rmdir()


# The server's side --------------------------------------------------------------------


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass
class WarmSlot:
    """One slot as the server sees it: free, or busy with one training job."""

    name: str
    actor: Any
    placement: dict[str, Any]
    channels: dict[str, str]
    pool: SlotPool
    busy_with: str | None = None
    freed_at: float = field(default_factory=time.time)

    def release(self) -> None:
        """The trial on this slot has ended (its status is written): the next may start."""
        with self.pool.lock:
            self.busy_with = None
            self.freed_at = time.time()
        self.pool.on_free()


@dataclass
class SlotPool:
    """A tuning job's warm slots, opened together and closed together."""

    name: str
    instance_type: InstanceType
    on_free: Callable[[], None]
    slots: list[WarmSlot] = field(default_factory=list)
    placement_group: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, job_name: str) -> WarmSlot | None:
        """A free slot, now busy with ``job_name``; None when every slot is busy."""
        with self.lock:
            for slot in self.slots:
                if slot.busy_with is None:
                    slot.busy_with = job_name
                    return slot
        return None

    def close(self) -> None:
        """Kill every slot's processes and give the resources back (idempotent)."""
        import ray
        from ray.util.placement_group import remove_placement_group

        for slot in self.slots:
            try:
                ray.get(slot.actor.cleanup.remote(), timeout=30)
            except Exception as exc:  # noqa: BLE001 - closing must go on with the others
                log.warning("closing warm slot %s: %s", slot.name, exc)
            ray.kill(slot.actor)
        self.slots = []
        if self.placement_group is not None:
            remove_placement_group(self.placement_group)
            self.placement_group = None


def open_pool(
    service: TrainingService,
    name: str,
    itype: InstanceType,
    count: int,
    channels: dict[str, str],
    source_uri: str | None,
    *,
    on_free: Callable[[], None],
    should_stop: Callable[[], bool],
) -> SlotPool:
    """Hold ``count`` slots: placement, actors, downloads and zygotes, in parallel."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    if not service.ray.wait(300):
        raise SlotUnavailable(f"Ray is not running: {service.ray.error}")
    local = service.ray.mode == "local"
    resources = ray.cluster_resources()
    plan = plan_placement(
        itype,
        count,
        float(resources.get("CPU", 1)),
        float(resources.get("GPU", 0)),
        local=local,
    )
    bundle: dict[str, float] = {"CPU": plan["cpus_per_instance"]}
    if plan["gpus_per_instance"]:
        bundle["GPU"] = plan["gpus_per_instance"]
    pool = SlotPool(name, itype, on_free)
    pool.placement_group = placement_group(
        [dict(bundle) for _ in range(count)], strategy="PACK" if local else "SPREAD"
    )
    try:
        _wait(pool.placement_group.ready(), "placing the warm slots", should_stop)
        remote_cls = ray.remote(WarmSlotWorker)
        for index in range(count):
            actor = remote_cls.options(
                num_cpus=plan["cpus_per_instance"],
                num_gpus=plan["gpus_per_instance"],
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=pool.placement_group, placement_group_bundle_index=index
                ),
            ).remote(f"{name}-slot-{index + 1}", service.settings.resolved_artifact_url)
            slot_placement = {**plan, "warm_slot": f"{name}-slot-{index + 1}"}
            pool.slots.append(WarmSlot(f"{name}-slot-{index + 1}", actor, slot_placement, {}, pool))
        prepared = [s.actor.prepare.remote(channels, source_uri) for s in pool.slots]
        for slot, local_channels in zip(
            pool.slots, _wait(prepared, "downloading the input data", should_stop), strict=True
        ):
            slot.channels = dict(local_channels)
        zygotes = [s.actor.start_zygote.remote() for s in pool.slots]
        seconds = _wait(zygotes, "starting the warm Python processes", should_stop)
        log.info("warm slots of %s ready (zygotes started in %s s)", name, seconds)
    except BaseException:
        pool.close()
        raise
    now = time.time()
    for slot in pool.slots:
        slot.freed_at = now
    return pool


def _wait(refs: Any, what: str, should_stop: Callable[[], bool]) -> Any:
    """ray.get, bounded in time, giving up early when the tuning job is stopping."""
    import ray

    deadline = time.monotonic() + OPEN_SLOTS_SECONDS
    pending = refs if isinstance(refs, list) else [refs]
    while time.monotonic() < deadline:
        ready, _ = ray.wait(pending, num_returns=len(pending), timeout=0.5)
        if len(ready) == len(pending):
            try:
                return ray.get(refs)
            except ray.exceptions.RayError as exc:
                raise SlotUnavailable(f"{what} failed: {exc}") from exc
        if should_stop():
            raise SlotUnavailable(f"stopped while {what}")
    raise SlotUnavailable(f"{what} took more than {OPEN_SLOTS_SECONDS:.0f} s")


class WarmJobRunner(JobRunner):
    """Runs one training job on a warm slot: no placement, no download, a forked process."""

    def __init__(self, name: str, service: TrainingService, slot: WarmSlot) -> None:
        super().__init__(name, service)
        self.slot = slot
        self.actors = [slot.actor]
        self.poll_seconds = WARM_POLL_SECONDS

    def _start(self, job: dict[str, Any], itype: InstanceType, hosts: list[str]) -> None:
        actor = self.slot.actor
        paths = self._get([actor.begin_trial.remote(self.job_name)], "preparing the trial")[0]
        resource = {"current_host": hosts[0], "hosts": hosts, "network_interface_name": "eth0"}
        self._get([actor.write_config.remote(job["hyperparameters"], resource)], "")
        env = sm_environment(
            job,
            hosts,
            hosts[0],
            self.slot.placement,
            self.slot.channels,
            paths,
            master=("127.0.0.1", 0),
            rank=0,
            artifact_url=self.service.settings.resolved_artifact_url,
        )
        self._transition("Training", f"Training in progress on warm slot {self.slot.name}.")
        self._get([actor.start.remote(self._command(job), env, None)], "starting the entry point")
        self._start_monitors(job, self.slot.placement)
        started = self._get([actor.trial_started_at.remote()], "")[0]
        self.training_started = time.monotonic()
        self._update(
            training_started_at=datetime.now(UTC),
            placement={
                **self.slot.placement,
                "slot_freed_at": _iso(self.slot.freed_at),
                "started_at": _iso(started),
            },
        )

    def _release(self) -> None:
        import ray

        try:
            ray.get(self.slot.actor.end_trial.remote(), timeout=30)
        except Exception as exc:  # noqa: BLE001 - the slot is freed regardless
            log.warning("ending trial %s on its warm slot: %s", self.job_name, exc)
        self.slot.release()
