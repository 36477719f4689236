"""The zygote: a warm Python that has imported torch once and forks one child per trial.

A fresh interpreter importing torch and torchvision takes 2-4 s; a fork of one that has
already done it takes milliseconds, which is what lets a tuning trial start well under a
second after its slot frees. One zygote runs per warm slot (started by ``WarmSlotWorker``)::

    python -m kennel.training._zygote          # prints "READY" on its protocol pipe

It speaks JSON lines on stdin/stdout, one request and one answer at a time (its only
client is the slot's actor, which is single-threaded):

* ``{"op": "spawn", "argv": [...], "env": {...}, "cwd": ..., "log": ..., "module": ...}``
  forks a child that becomes the entry point (``module`` for ``python -m``, else
  ``argv[0]`` as a script); ``{"pid": N, "started_at": <epoch s>}``.
* ``{"op": "poll", "pid": N}``: ``{"code": int | null}`` (negative: killed by a signal).
* ``{"op": "ping"}``: ``{"ok": true}``.

The zygote itself stays single-threaded and never runs torch code (a fork of a process
whose OpenMP pool is running can hang in the child). It dies with its actor and its
children die with it (PR_SET_PDEATHSIG), and each child leads its own session, so a stop
signals the child's whole process tree (DataLoader workers included) and nothing else.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

from kennel.functions._template import set_death_signal

PREWARM_MODULES = ("torch", "torchvision", "kennel.trainer._run", "kennel.trainer._models")
"""What every trial would otherwise import itself: the trainer's heavy path."""


def prewarm() -> None:
    """Import what trials use; a module missing on this node only costs its trials time."""
    import importlib

    for module in PREWARM_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            print(f"zygote: could not pre-import {module}: {exc}", file=sys.stderr, flush=True)


class Zygote:
    """The request loop; ``exits`` keeps the exit codes of reaped children until asked."""

    def __init__(self, requests: TextIO, answers: TextIO) -> None:
        self.requests = requests
        self.answers = answers
        self.pid = os.getpid()
        self.children: set[int] = set()
        self.exits: dict[int, int] = {}

    def serve(self) -> int:
        """Answer requests until the actor closes the pipe (EOF), then take children down."""
        for line in self.requests:
            try:
                answer = self.handle(json.loads(line))
            except (ValueError, KeyError, TypeError, OSError) as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            self.answers.write(json.dumps(answer) + "\n")
            self.answers.flush()
        self.kill_children()
        return 0

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "spawn":
            started_at = time.time()
            pid = self.spawn(request)
            return {"pid": pid, "started_at": started_at}
        if op == "poll":
            return {"code": self.poll(int(request["pid"]))}
        if op == "ping":
            return {"ok": True, "children": len(self.children)}
        return {"error": f"unknown op {op!r}"}

    def spawn(self, request: dict[str, Any]) -> int:
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = self._become_trial(request)
            except BaseException:  # noqa: BLE001 - the child must never return into the loop
                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    if stream is not None:
                        stream.flush()
                os._exit(code)
        self.children.add(pid)
        return pid

    def poll(self, pid: int) -> int | None:
        if pid in self.exits:
            return self.exits[pid]
        if pid not in self.children:
            raise KeyError(f"pid {pid} is not a child of this zygote")
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            return None
        self.children.discard(pid)
        self.exits[pid] = os.waitstatus_to_exitcode(status)
        return self.exits[pid]

    def kill_children(self) -> None:
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            os.waitpid(pid, 0)

    def _become_trial(self, request: dict[str, Any]) -> int:
        """In the child: become the trial's entry point, as ``python <script> args`` would."""
        os.setsid()  # its own process group: a stop reaches its whole tree, not the zygote
        set_death_signal()
        if os.getppid() != self.pid:
            return 1
        self.answers.close()  # only the zygote answers the actor
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _redirect(request["log"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        _set_threads(request["env"])
        argv: list[str] = list(request["argv"])
        stamp = datetime.now(UTC).isoformat()
        print(f"[kennel] {stamp} trial started on a warm slot (pid {os.getpid()})", flush=True)
        module = request.get("module")
        try:
            if module:
                sys.argv = [module, *argv[1:]]
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            else:
                sys.argv = argv
                sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
                runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as done:
            return _exit_code(done.code)
        return 0


def _redirect(log_path: str) -> None:
    """fds 1 and 2 to the trial's log, stdin from /dev/null, Python's streams line-buffered."""
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    # The zygote's sys.stdout was its protocol pipe, wrapped around a saved fd: new streams
    # on fds 1 and 2, unbuffered like PYTHONUNBUFFERED=1 gives a fresh process.
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the child
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stdin = open(0, closefd=False)  # noqa: SIM115


def _set_threads(env: dict[str, str]) -> None:
    """OMP_NUM_THREADS is read when torch loads, which the zygote already did: apply it.

    Also reseed torch's and numpy's global generators: every fork inherits the zygote's
    state, and unseeded trials would otherwise all draw the same "random" numbers (Python's
    own ``random`` reseeds itself after a fork).
    """
    torch = sys.modules.get("torch")
    threads = env.get("OMP_NUM_THREADS")
    if torch is not None:
        torch.seed()
        if threads and threads.isdigit():
            torch.set_num_threads(int(threads))
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr, flush=True)
    return 1


def main() -> int:
    parent = os.getppid()
    set_death_signal()
    if os.getppid() != parent:
        return 1
    # Answers go to a private copy of stdout; fd 1 points at stderr so a stray print from an
    # import cannot corrupt the protocol.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    prewarm()
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", cwd)]
    import gc

    gc.collect()
    gc.freeze()  # children share the warm heap copy-on-write
    answers.write("READY\n")
    answers.flush()
    return Zygote(sys.stdin, answers).serve()


if __name__ == "__main__":
    sys.exit(main())
