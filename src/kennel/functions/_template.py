"""The template process: a warm interpreter that forks function execution environments.

A fresh Python with boto3 takes ~450 ms to start; a fork of one that has already imported
the runtime, boto3, botocore and fsspec (and built a boto3 client of each service a
function typically calls, so botocore's service models and endpoint rules are parsed)
takes a few ms. One template runs per node (started by ``FunctionHost``)::

    python -m kennel.functions._template --host 127.0.0.1     # prints "READY <port>"

It serves one frame per TCP connection (see ``_protocol``):

* ``{"op": "spawn", "spec": {...}}``: a new environment gets the accepted connection and
  serves the gateway on it directly, with no extra hop; the template closes its copy.
  The environment first sends ``{"op": "spawned", "pid"}`` (so a stuck init can be
  killed), then ``{"op": "ready", ...}`` once the handler is imported.
* ``{"op": "kill", "pid": N}``: SIGKILL one of its children; ``{"ok": bool}``.
* ``{"op": "ping"}``: ``{"ok": true, "children": n}`` (environments, not the spare).

**The spare.** Right after a fork, every page the child writes (refcounts included) is
copied on a page fault; on a VM that costs several microseconds a page, and the generic
setup of an environment (signals, log capture, the root logger, ...) touches about a
thousand of them: half of a trivial cold start. So when it is idle the template forks one
*spare* that does that setup in advance (``_environment.Standby``) and waits on a Unix
socket; a spawn hands it the gateway's connection (SCM_RIGHTS) and the spec. When no
spare is ready (a burst of spawns) the template forks on demand, the same environment
minus the head start. A spare that keeps dying unused turns the mechanism off rather
than looping.

It must stay single-threaded (a fork copies only the calling thread; a lock held by any
other thread would stay locked forever in the child), so it multiplexes with ``select``
and learns about exited children through SIGCHLD written to a wakeup fd. It dies with its
parent and its children die with it (PR_SET_PDEATHSIG), so killing the host's actor or
the template never leaves environments behind; it reaps its children, so none linger as
zombies.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

from kennel.functions._protocol import ProtocolError, recv_frame, send_frame

READ_TIMEOUT_SECONDS = 5.0  # a client that connects must send its one frame promptly
KILL_WAIT_SECONDS = 0.2
PREWARM_SERVICES = ("sagemaker-runtime", "lambda", "sts")
PR_SET_PDEATHSIG = 1
SPARE_IDLE_SECONDS = 0.005  # fork the next spare after this long without a request
MAX_SPARE_FAILURES = 3  # spares that die unused; then every spawn forks on demand


def set_death_signal(sig: signal.Signals = signal.SIGKILL) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux only)."""
    if sys.platform.startswith("linux"):
        libc().prctl(PR_SET_PDEATHSIG, int(sig))


@functools.cache
def libc() -> Any:
    """libc, loaded once: dlopen in every fresh child costs a measurable part of a spawn."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def prewarm() -> None:
    """Import and exercise what environments use, so each child does not pay for it.

    The template's own AWS variables go first: boto3's default session (which children
    inherit) caches the config files it read, and a host profile must not reach functions.
    """
    from kennel.functions import _environment

    for key in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[key]
    missing = str(_environment.work_root() / "no-aws-config")
    os.environ.update(
        {
            "AWS_CONFIG_FILE": missing,
            "AWS_SHARED_CREDENTIALS_FILE": missing,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    import boto3
    import fsspec  # noqa: F401 - imported for the children

    boto3.setup_default_session()
    for service in PREWARM_SERVICES:
        boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="prewarm",
            aws_secret_access_key="prewarm",  # a dummy: prewarming never sends a request
        )


class Template:
    """The accept/fork loop. ``children`` are environments; ``spare`` is a standby child."""

    def __init__(self, listener: socket.socket, wakeup: int, *, spare: bool = True) -> None:
        self.listener = listener
        self.wakeup = wakeup
        self.children: set[int] = set()
        self.pid = os.getpid()
        self.use_spare = spare
        self.spare: tuple[int, socket.socket] | None = None  # (pid, the template's end)
        self.spare_failures = 0

    def serve_forever(self) -> None:
        while True:
            wait = SPARE_IDLE_SECONDS if self.use_spare and self.spare is None else 1.0
            try:
                ready, _, _ = select.select([self.listener.fileno(), self.wakeup], [], [], wait)
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
                continue
            if self.wakeup in ready:
                self._drain_wakeup()
            self._reap()
            if self.listener.fileno() in ready:
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    continue  # the client gave up between select and accept
                self._serve(conn)
            elif not ready and self.use_spare and self.spare is None:
                self._make_spare()  # only when idle: a burst of spawns is not slowed down

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(READ_TIMEOUT_SECONDS)
        try:
            frame = recv_frame(conn)
            if frame is None:
                return
            meta, _ = frame
            op = meta.get("op")
            if op == "spawn" and isinstance(meta.get("spec"), dict):
                conn.settimeout(None)
                self._spawn(conn, meta["spec"])
            elif op == "kill":
                send_frame(conn, {"ok": self._kill(int(meta.get("pid") or 0))})
            elif op == "ping":
                send_frame(conn, {"ok": True, "children": len(self.children)})
            else:
                send_frame(conn, {"ok": False, "error": f"unknown op {op!r}"})
        except (OSError, ProtocolError, ValueError) as exc:
            print(f"template: dropped a request: {exc}", file=sys.stderr, flush=True)
        finally:
            conn.close()

    # -- spawning

    def _spawn(self, conn: socket.socket, spec: dict[str, Any]) -> None:
        if self.spare is not None:
            pid, channel = self.spare
            self.spare = None
            try:
                socket.send_fds(channel, [b"S"], [conn.fileno()])
                send_frame(channel, {"spec": spec})
            except OSError:
                self._kill(pid)  # the spare is broken: fork afresh below
            else:
                self.children.add(pid)
                return
            finally:
                channel.close()
        started = time.perf_counter()
        pid = self._fork(lambda: self._become_environment(conn, spec, started))
        self.children.add(pid)

    def _make_spare(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = self._fork(lambda: self._become_spare(theirs, ours))
        theirs.close()
        self.spare = (pid, ours)

    def _fork(self, child: Callable[[], int]) -> int:
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = child()
            except BaseException:  # noqa: BLE001 - the child must never return into the loop
                traceback.print_exc(file=sys.__stderr__)  # fd 2: the environment's log file
                if sys.__stderr__ is not None:
                    sys.__stderr__.flush()
            finally:
                os._exit(code)
        return pid

    def _leave_template(self) -> bool:
        """In a new child: drop the template's duties; False if the template already died."""
        set_death_signal()
        if os.getppid() != self.pid:  # the template died before the signal was armed
            return False
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.listener.close()
        os.close(self.wakeup)
        if self.spare is not None:
            self.spare[1].close()
        return True

    def _become_environment(self, conn: socket.socket, spec: dict[str, Any], started: float) -> int:
        if not self._leave_template():
            return 1
        send_frame(conn, {"op": "spawned", "pid": os.getpid()})
        from kennel.functions import _environment

        return _environment.run(conn, spec, started)

    def _become_spare(self, channel: socket.socket, template_end: socket.socket) -> int:
        """Prepare a generic environment, then wait for a function (or exit on EOF)."""
        template_end.close()
        if not self._leave_template():
            return 1
        from kennel.functions import _environment

        standby = _environment.Standby()
        _, fds, _, _ = socket.recv_fds(channel, 1, 1)
        if not fds:
            return 0  # the template closed the channel: not needed after all
        started = time.perf_counter()
        conn = socket.socket(fileno=fds[0])
        frame = recv_frame(channel)
        channel.close()
        if frame is None or not isinstance(frame[0].get("spec"), dict):
            return 1
        send_frame(conn, {"op": "spawned", "pid": os.getpid()})
        return _environment.run(conn, frame[0]["spec"], started, standby)

    # -- children

    def _kill(self, pid: int) -> bool:
        if pid not in self.children and (self.spare is None or self.spare[0] != pid):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while time.monotonic() < deadline:  # reap now, so "killed" means gone
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self._forget(pid)
                break
            time.sleep(0.002)
        return True

    def _reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._forget(pid)

    def _forget(self, pid: int) -> None:
        self.children.discard(pid)
        if self.spare is not None and self.spare[0] == pid:
            self.spare[1].close()
            self.spare = None
            self.spare_failures += 1
            if self.spare_failures >= MAX_SPARE_FAILURES and self.use_spare:
                self.use_spare = False  # never a fork loop: fall back to forking on demand
                print(
                    f"template: {self.spare_failures} spares died unused (see their logs in "
                    "the logs folder); forking every environment on demand from now on",
                    file=sys.stderr,
                    flush=True,
                )
                return  # keep the dead spare's log for whoever reads the message
        from kennel.functions import _environment

        log = _environment.work_root() / "logs" / f"{pid}.log"
        with contextlib.suppress(OSError):  # kept when the child wrote C-level output
            if log.stat().st_size == 0:
                log.unlink()

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wakeup, 512):
                pass

    def kill_children(self) -> None:
        pids = list(self.children) + ([self.spare[0]] if self.spare is not None else [])
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _on_sigchld(signum: int, frame: FrameType | None) -> None:
    """Nothing to do here: the wakeup fd wakes the select loop, which reaps."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--no-spare",
        action="store_true",
        help="fork every environment on demand instead of keeping a prepared spare",
    )
    args = parser.parse_args(argv)
    parent = os.getppid()
    set_death_signal()
    if os.getppid() != parent:
        return 1
    prewarm()
    # `python -m` put the working directory first on sys.path: functions must not import
    # whatever happens to sit in the host's working directory.
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", cwd)]
    gc.collect()
    gc.freeze()  # children share the warm heap copy-on-write; GC passes would touch it
    listener = socket.create_server((args.host, args.port), backlog=512)
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    signal.signal(signal.SIGCHLD, _on_sigchld)
    template = Template(listener, read_end, spare=not args.no_spare)

    def stop(signum: int, frame: FrameType | None) -> None:
        template.kill_children()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"READY {listener.getsockname()[1]}", flush=True)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # nobody reads stdout after READY; a closed pipe must not hurt
    os.close(null)
    template.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
