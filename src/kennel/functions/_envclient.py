"""The gateway's side of an execution environment: spawn it, invoke it, kill it.

``spawn`` opens a TCP connection to a node's template and asks for a fork; the forked
child keeps that connection, so the returned ``EnvironmentClient`` talks to the
environment directly, one invocation at a time. Closing the connection ends the
environment (it exits on EOF); ``kill`` goes through the template, which is the only
process allowed to signal its children and can do so on any node.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

from kennel.functions._protocol import Meta, ProtocolError, read_frame, write_frame

STREAM_LIMIT = 2**20
CONTROL_TIMEOUT_SECONDS = 10.0


class EnvironmentLost(Exception):
    """The environment's connection ended (or broke) before it answered."""


@dataclass(frozen=True)
class InvokeResult:
    kind: str  # "ok" | "error" | "timeout" | "memory"
    payload: bytes  # the response, or the error JSON
    duration_ms: float
    billed_ms: int
    max_memory_mb: int
    init_duration_ms: float | None  # set on the first invocation of an on-demand environment
    log: str  # START ... REPORT
    exit: bool  # the environment is gone after this result


class EnvironmentClient:
    """One live execution environment, reached over the connection that spawned it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pid: int,
        template: tuple[str, int],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.pid = pid
        self.template = template
        self.init_duration_ms: float | None = None
        self.init_error: dict[str, Any] | None = None
        self.init_log = ""
        self._alive = True
        self._busy = False

    @property
    def alive(self) -> bool:
        return self._alive

    async def invoke(self, meta: Meta, payload: bytes) -> InvokeResult:
        """Run one invocation; raises EnvironmentLost if the environment went away.

        Cancelling (``asyncio.wait_for`` running out) leaves the connection in an unknown
        state, so the client then counts as dead: kill the environment and drop it.
        """
        if not self._alive:
            raise EnvironmentLost(f"environment {self.pid} is not alive")
        if self._busy:
            raise RuntimeError(f"environment {self.pid} is already running an invocation")
        self._busy = True
        try:
            await write_frame(self._writer, {**meta, "op": "invoke"}, payload)
            frame = await read_frame(self._reader)
        except (OSError, ProtocolError) as exc:
            self._lost()
            raise EnvironmentLost(f"environment {self.pid}: {exc}") from exc
        except BaseException:
            self._lost()
            raise
        finally:
            self._busy = False
        if frame is None:
            self._lost()
            raise EnvironmentLost(f"environment {self.pid} closed its connection")
        answer, body = frame
        result = InvokeResult(
            kind=str(answer.get("kind", "error")),
            payload=body,
            duration_ms=float(answer.get("duration_ms") or 0.0),
            billed_ms=int(answer.get("billed_ms") or 0),
            max_memory_mb=int(answer.get("max_memory_mb") or 0),
            init_duration_ms=answer.get("init_duration_ms"),
            log=str(answer.get("log") or ""),
            exit=bool(answer.get("exit")),
        )
        if result.exit:
            self._lost()
        return result

    async def kill(self) -> None:
        """SIGKILL the environment through its template, then drop the connection."""
        try:
            await kill(self.template[0], self.template[1], self.pid)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection; an idle environment exits when it reads EOF."""
        self._alive = False
        if not self._writer.is_closing():
            self._writer.close()
        try:
            await self._writer.wait_closed()
        except (OSError, ConnectionError):
            return  # already reset by the peer: closed either way

    def _lost(self) -> None:
        self._alive = False
        if not self._writer.is_closing():
            self._writer.close()


async def _connect(address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(address, port, limit=STREAM_LIMIT)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def spawn(
    address: str, port: int, spec: dict[str, Any], *, timeout: float
) -> EnvironmentClient:
    """Fork an environment from the template at ``address:port`` and wait for its init.

    Returns the client once the handler is imported; if init failed, ``init_error`` holds
    AWS's error JSON (and ``init_log`` the init output) and the environment has exited.
    Raises TimeoutError (after killing the half-started child), OSError or EnvironmentLost.
    """
    reader, writer = await _connect(address, port)
    client: EnvironmentClient | None = None
    try:
        async with asyncio.timeout(timeout):
            await write_frame(writer, {"op": "spawn", "spec": spec})
            spawned = await read_frame(reader)
            if spawned is None or spawned[0].get("op") != "spawned":
                raise EnvironmentLost(
                    f"the template at {address}:{port} did not fork an environment"
                    + ("" if spawned is None else f" (answered {spawned[0]})")
                )
            client = EnvironmentClient(reader, writer, int(spawned[0]["pid"]), (address, port))
            ready = await read_frame(reader)
    except TimeoutError:
        writer.close()
        if client is not None:
            await _kill_quietly(address, port, client.pid)
        raise TimeoutError(
            f"the environment did not finish its init within {timeout:g} s"
            + ("" if client is None else f" (pid {client.pid}, killed)")
        ) from None
    except ProtocolError as exc:
        writer.close()
        raise EnvironmentLost(f"spawning at {address}:{port}: {exc}") from exc
    except BaseException:
        writer.close()
        raise
    if ready is None:
        client._lost()
        raise EnvironmentLost(f"environment {client.pid} exited during its init")
    meta = ready[0]
    client.init_duration_ms = meta.get("init_duration_ms")
    client.init_error = meta.get("init_error")
    client.init_log = str(meta.get("log") or "")
    if client.init_error is not None:
        client._lost()
    return client


async def _control(address: str, port: int, meta: Meta) -> Meta:
    async with asyncio.timeout(CONTROL_TIMEOUT_SECONDS):
        reader, writer = await _connect(address, port)
        try:
            await write_frame(writer, meta)
            frame = await read_frame(reader)
        finally:
            writer.close()
    if frame is None:
        raise EnvironmentLost(f"the template at {address}:{port} closed the connection")
    return frame[0]


async def kill(address: str, port: int, pid: int) -> None:
    """SIGKILL environment ``pid`` through its template (a no-op if it is already gone)."""
    await _control(address, port, {"op": "kill", "pid": pid})


async def _kill_quietly(address: str, port: int, pid: int) -> None:
    try:
        await kill(address, port, pid)
    except (OSError, TimeoutError, EnvironmentLost, ProtocolError):
        return  # the template is gone too, and its children with it


async def ping(address: str, port: int) -> int:
    """The number of live children of the template (raises if it does not answer)."""
    answer = await _control(address, port, {"op": "ping"})
    return int(answer.get("children", 0))
