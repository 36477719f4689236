"""Joining a Ray cluster, or starting a local Ray head (the embedded default)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

LOCAL_START_ATTEMPTS = 3
"""A local head can fail to start on a loaded machine (a raylet whose agents are slow to
report their ports aborts; seen with Ray 2.60 on 2 busy cores): it is tried again."""


class RayCluster:
    """The server's connection to Ray.

    Ray boots in the background so the gateway answers at once (a local head takes a
    few seconds). The Ray driver is owned by one long-lived thread: Ray's driver state
    dies with the thread that called ``ray.init`` (seen with Ray 2.60: later calls hang),
    so ``init``, ``shutdown`` and the status queries all run there.
    """

    def __init__(self, address: str | None, *, namespace: str = "kennel") -> None:
        self.address = address
        self.namespace = namespace
        self.state = "stopped"
        self.error: str | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ray-driver")
        self._started: Future[None] | None = None
        self._start_seconds: float | None = None

    @property
    def mode(self) -> str:
        return "cluster" if self.address else "local"

    def start_in_background(self) -> None:
        self.state = "starting"
        self._started = self._executor.submit(self._start)

    def _start(self) -> None:
        began = time.monotonic()
        attempts = 1 if self.address else LOCAL_START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                self._init()
            except Exception as exc:  # noqa: BLE001 - any failure to start is reported as state
                self.error = f"{type(exc).__name__}: {exc}"
                if attempt < attempts:
                    log.warning(
                        "Ray did not start (attempt %d of %d): %s; trying again",
                        attempt,
                        attempts,
                        self.error,
                    )
                    self._clear_failed_start()
                    continue
                self.state = "error"
                log.error("Ray did not start: %s", self.error)
                return
            self.error = None
            self.state = "running"
            self._start_seconds = time.monotonic() - began
            return

    def _init(self) -> None:
        import ray

        kwargs: dict[str, Any] = {
            "namespace": self.namespace,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if self.address:
            ray.init(address=self.address, **kwargs)
        else:
            # "local" forces a new head even if another Ray runs on this machine.
            ray.init(address="local", include_dashboard=False, **kwargs)

    @staticmethod
    def _clear_failed_start() -> None:
        """Undo what a failed local start left (its head processes), before the next try."""
        import ray

        try:
            ray.shutdown()
        except Exception as exc:  # noqa: BLE001 - the next attempt reports what matters
            log.warning("cleaning up after Ray's failed start: %s", exc)

    def wait(self, timeout: float) -> bool:
        """Block until Ray is up or failed; True when it is running."""
        if self._started is not None:
            self._started.result(timeout)
        return self.state == "running"

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"mode": self.mode, "state": self.state}
        if self.address:
            info["address"] = self.address
        if self.error:
            info["error"] = self.error
        if self._start_seconds is not None:
            info["start_seconds"] = round(self._start_seconds, 2)
        if self.state == "running":
            info.update(self._executor.submit(_cluster_info).result(30))
        return info

    def stop(self) -> None:
        if self._started is not None:
            self._started.result(120)
        if self.state == "running":
            import ray

            self._executor.submit(ray.shutdown).result(60)
        self.state = "stopped"
        self._executor.shutdown(wait=True)


def _cluster_info() -> dict[str, Any]:
    import ray

    resources = {k: v for k, v in ray.cluster_resources().items() if not k.startswith("node:")}
    return {
        "nodes": sum(1 for n in ray.nodes() if n.get("Alive")),
        "resources": resources,
        "gcs_address": ray.get_runtime_context().gcs_address,
    }
