"""Joining a Ray cluster, or starting a local Ray head (the embedded default)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


class RayCluster:
    """The server's connection to Ray.

    ``start()`` runs in a background thread so the gateway answers while Ray boots
    (a few seconds on a laptop); ``describe()`` tells where it is at.
    """

    def __init__(self, address: str | None, *, namespace: str = "kennel") -> None:
        self.address = address
        self.namespace = namespace
        self.state = "stopped"
        self.error: str | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._ready_seconds: float | None = None

    @property
    def mode(self) -> str:
        return "cluster" if self.address else "local"

    def start_in_background(self) -> None:
        self.state = "starting"
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._start, name="ray-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
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
            self.state = "running"
            if self._started_at is not None:
                self._ready_seconds = time.monotonic() - self._started_at
        except Exception as exc:  # noqa: BLE001 - any failure to start is reported as state
            self.state = "error"
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("Ray did not start: %s", self.error)
        finally:
            self._ready.set()

    def wait(self, timeout: float) -> bool:
        """Block until Ray is up or failed; True when it is running."""
        self._ready.wait(timeout)
        return self.state == "running"

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"mode": self.mode, "state": self.state}
        if self.address:
            info["address"] = self.address
        if self.error:
            info["error"] = self.error
        if self._ready_seconds is not None:
            info["start_seconds"] = round(self._ready_seconds, 2)
        if self.state == "running":
            import ray

            nodes = [n for n in ray.nodes() if n.get("Alive")]
            info["nodes"] = len(nodes)
            info["resources"] = {
                k: v for k, v in ray.cluster_resources().items() if not k.startswith("node:")
            }
            info["gcs_address"] = ray.get_runtime_context().gcs_address
        return info

    def stop(self) -> None:
        if self._thread is not None:
            self._ready.wait(60)
        if self.state == "running":
            import ray

            ray.shutdown()
        self.state = "stopped"
