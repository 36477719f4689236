"""One execution environment: the child the template forks for a function.

The template has already imported the runtime and boto3, so the child starts with a warm
interpreter and only does what is specific to its function: swap in the function's
variables and credentials (nothing of the host's own environment or AWS profile may leak
in), unpack the code once per node, import the handler (the function's init phase), then
run one invocation at a time on the connection the gateway opened to spawn it.

AWS's Python runtime is the reference for everything a handler or a log reader can see:
the error JSON and error types (``Runtime.ImportModuleError``, ``Runtime.MarshalError``,
...), the START/END/REPORT lines, the root logger's format, the timeout and out-of-memory
messages. Limits are enforced from inside, by a watchdog thread (the template itself must
stay single-threaded because it forks): it replies ``timeout`` or ``memory`` on the
gateway's connection and ends the process, as Lambda ends an environment that overran.
A handler stuck in C code that never releases the GIL cannot be stopped from inside; the
gateway's own deadline (it kills through the template) covers that case.

A caveat of forking a warm interpreter: modules the template imported (boto3, botocore,
urllib3, ...) are already in ``sys.modules``. When the function's code ships its own copy
of such a top-level package, that package is dropped from ``sys.modules`` before the
handler is imported so the function gets the version it bundled, as it would on AWS.
"""

from __future__ import annotations

import contextlib
import decimal
import hashlib
import importlib
import io
import json
import logging
import math
import os
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from kennel.functions._lambda_context import (
    ClientContextError,
    LambdaContext,
    parse_client_context,
)
from kennel.functions._protocol import Meta, ProtocolError, recv_frame, send_frame

WORK_ROOT_ENV = "KENNEL_FUNCTION_WORK_ROOT"
DEFAULT_RUNTIME = "python3.11"
WATCH_INTERVAL_SECONDS = 0.005
LOG_LIMIT_CHARS = 4 * 2**20  # per invocation; the rest is counted and dropped
MAX_UNZIPPED_BYTES = 250 * 2**20  # Lambda's limit for unzipped code
MAX_ZIP_MEMBERS = 20_000
RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
NO_BREAK_SPACE = "\u00a0"  # AWS indents stack traces in logs with it
# A backstop against one allocation (``b"x" * 10**11``) that the watchdog, which samples,
# could not see in time: address space beyond the start plus this is refused.
ADDRESS_SPACE_SLACK_BYTES = 2**30
# The template's variables that a function environment keeps (everything else is replaced).
INHERITED_VARIABLES = ("PATH", "LD_LIBRARY_PATH", "MALLOC_ARENA_MAX")


class SetupError(Exception):
    """The environment could not be prepared (code missing, corrupt, too large)."""


class _Fault(Exception):
    """A failure AWS's runtime reports with its own error type (not the exception's)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def work_root() -> Path:
    """Where code is unpacked (shared by a node's environments) and C-level output goes."""
    configured = os.environ.get(WORK_ROOT_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "kennel-functions"


# --- environment variables -----------------------------------------------------------------


def build_environ(
    spec: dict[str, Any],
    code_dir: str,
    base: Mapping[str, str] | None = None,
    *,
    ca_bundle: str | None = None,
) -> dict[str, str]:
    """The function's ``os.environ``: a clean base, the user's variables, Lambda's reserved ones.

    Reserved variables win over the user's (the control plane rejects them anyway). The
    AWS config and credential files point at a path that does not exist, so neither the
    host's profile nor its keys can reach the function's boto3. ``ca_bundle`` (the file
    :func:`ensure_ca_bundle` wrote) becomes AWS_CA_BUNDLE, so boto3 verifies an https
    gateway whose certificate the usual trust store does not know.
    """
    if base is None:
        base = os.environ
    name = str(spec["function_name"])
    region = str(spec.get("region") or "us-east-1")
    runtime = str(spec.get("runtime") or DEFAULT_RUNTIME)
    gateway = str(spec.get("gateway_url") or "")
    missing = str(Path(code_dir).parent.parent / "no-aws-config")
    env = {key: base[key] for key in INHERITED_VARIABLES if key in base}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update({"LANG": "en_US.UTF-8", "HOME": tempfile.gettempdir()})
    env.update({str(k): str(v) for k, v in (spec.get("environment") or {}).items()})
    reserved = {
        "_HANDLER": str(spec["handler"]),
        "TZ": ":UTC",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(spec.get("version") or "$LATEST"),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec["memory_mb"]),
        "AWS_LAMBDA_INITIALIZATION_TYPE": str(spec.get("initialization_type") or "on-demand"),
        "AWS_LAMBDA_LOG_GROUP_NAME": str(spec.get("log_group") or f"/aws/lambda/{name}"),
        "AWS_LAMBDA_LOG_STREAM_NAME": str(spec.get("log_stream") or ""),
        "AWS_LAMBDA_RUNTIME_API": str(spec.get("runtime_api") or ""),
        "LAMBDA_TASK_ROOT": code_dir,
        "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
        "AWS_CONFIG_FILE": missing,
        "AWS_SHARED_CREDENTIALS_FILE": missing,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if gateway:
        reserved["AWS_ENDPOINT_URL"] = gateway
        reserved["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = gateway
        reserved["AWS_ENDPOINT_URL_LAMBDA"] = gateway
    if ca_bundle:
        reserved["AWS_CA_BUNDLE"] = ca_bundle
    credentials = spec.get("credentials") or {}
    for key, variable in (
        ("access_key_id", "AWS_ACCESS_KEY_ID"),
        ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
        ("session_token", "AWS_SESSION_TOKEN"),
    ):
        if credentials.get(key):
            reserved[variable] = str(credentials[key])
    env.update(reserved)
    return env


def ensure_ca_bundle(pem: str | None, root: Path) -> str | None:
    """The gateway's CA certificates as a file, ``<root>/ca/<sha256>.pem``; written once per
    node (the spec carries the PEM, not a path, as the gateway may be on another node)."""
    if not pem:
        return None
    data = pem.encode("ascii")
    path = root / "ca" / f"{hashlib.sha256(data).hexdigest()}.pem"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        scratch.write_bytes(data)
        os.replace(scratch, path)  # another environment may write the same file at once
    return str(path)


# --- code ------------------------------------------------------------------------------------


def ensure_code(code_uri: str, code_sha256: str | None, root: Path) -> Path:
    """The unpacked code's folder, ``<root>/code/<sha256>``; unpacks it on first use.

    Environments of one node share the folder. Two may unpack the same code at once: each
    writes a private temporary folder and renames it into place; the loser drops its copy.
    """
    code_root = root / "code"
    expected = (code_sha256 or "").lower()
    if expected and not _is_sha256(expected):
        raise SetupError(f"code_sha256 {code_sha256!r} is not a hex SHA-256 digest")
    if expected and (code_root / expected).is_dir():
        return code_root / expected
    data = _read_code(code_uri)
    digest = hashlib.sha256(data).hexdigest()
    if expected and digest != expected:
        raise SetupError(f"the code at {code_uri} has SHA-256 {digest}, expected {expected}")
    target = code_root / digest
    if target.is_dir():
        return target
    code_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=code_root))
    try:
        _unzip(data, scratch, code_uri)
        try:
            os.rename(scratch, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _read_code(code_uri: str) -> bytes:
    local = code_uri[len("file://") :] if code_uri.startswith("file://") else None
    if local is None and "://" not in code_uri:
        local = code_uri
    try:
        if local is not None:
            return Path(local).read_bytes()
        import fsspec

        with fsspec.open(code_uri, "rb") as f:
            data: bytes = f.read()
            return data
    except (OSError, ValueError) as exc:
        raise SetupError(f"could not read the function's code at {code_uri}: {exc}") from exc


def _unzip(data: bytes, dest: Path, code_uri: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise SetupError(f"the code zip has {len(members)} entries (max {MAX_ZIP_MEMBERS})")
            total = sum(m.file_size for m in members)
            if total > MAX_UNZIPPED_BYTES:
                raise SetupError(
                    f"the code unzips to {total} bytes; Lambda's limit is {MAX_UNZIPPED_BYTES}"
                )
            # extractall drops absolute paths and '..' parts, so nothing lands outside dest.
            zf.extractall(dest)
            for member in members:
                mode = (member.external_attr >> 16) & 0o777
                if mode and not member.is_dir():
                    with contextlib.suppress(OSError):  # a name zipfile had to sanitise
                        os.chmod(dest / member.filename, mode | 0o400)
    except zipfile.BadZipFile as exc:
        raise SetupError(f"the code at {code_uri} is not a valid zip file: {exc}") from exc


# --- logs ------------------------------------------------------------------------------------


class InvocationLog:
    """The text of one invocation's log, bounded so a chatty handler cannot exhaust memory."""

    def __init__(self, limit: int = LOG_LIMIT_CHARS) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._limit = limit
        self._dropped = 0

    def write(self, text: str) -> None:
        if self._size + len(text) > self._limit:
            room = max(0, self._limit - self._size)
            self._dropped += len(text) - room
            text = text[:room]
        if text:
            self._parts.append(text)
            self._size += len(text)

    def text(self) -> str:
        body = "".join(self._parts)
        if self._dropped:
            body += f"\n[kennel: {self._dropped} characters of log output were dropped]\n"
        return body


class _LogBytes(io.RawIOBase):
    """``sys.stdout.buffer``: bytes written there land in the same log, decoded."""

    def __init__(self, sink: Standby) -> None:
        super().__init__()
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raw = bytes(data)
        self._sink.log.write(raw.decode("utf-8", errors="replace"))
        return len(raw)


class _LogStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of the function: text goes into the current log."""

    def __init__(self, sink: Standby, fd: int) -> None:
        super().__init__()
        self._sink = sink
        self._fd = fd
        self.buffer = _LogBytes(sink)

    def write(self, text: str) -> int:
        self._sink.log.write(text)
        return len(text)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd  # C-level writers and subprocesses reach the environment's log file

    encoding = "utf-8"
    errors = "strict"


class _AwsLogHandler(logging.Handler):
    """The root logger's handler, as AWS installs it: tab-separated, with the request id."""

    def __init__(self, sink: Standby) -> None:
        super().__init__()
        self._sink = sink
        self.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )

    def emit(self, record: logging.LogRecord) -> None:
        record.aws_request_id = self._sink.last_request_id
        try:
            self._sink.log.write(self.format(record))
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)


def _install_logging(sink: Standby) -> None:
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_AwsLogHandler(sink))
    root.setLevel(logging.WARNING)


# --- errors ----------------------------------------------------------------------------------


def _user_frames(tb: TracebackType | None) -> list[str]:
    """The traceback without the runtime's own leading frames, as AWS trims bootstrap.py."""
    # Plain tuples, as AWS builds them: format_list then prints no ``^^^`` position lines.
    frames = [(f.filename, f.lineno or 0, f.name, f.line) for f in traceback.extract_tb(tb)]
    start = 0
    while start < len(frames) and frames[start][0].startswith(RUNTIME_DIR):
        start += 1
    return traceback.format_list(frames[start:])


def _error(message: str, error_type: str, trace: list[str], request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": trace,
    }


def _error_log_text(error: dict[str, Any]) -> str:
    """AWS's ``[ERROR] Type: message`` block for the log, traceback indented with NBSPs."""
    head = "[ERROR]"
    if error.get("errorType"):
        head += " " + error["errorType"]
    if error.get("errorMessage"):
        head += (":" if error.get("errorType") else "") + " " + error["errorMessage"]
    lines = [head]
    trace = error.get("stackTrace")
    if trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in trace:
            for line in element.splitlines() or [""]:
                stripped = line.lstrip(" ")
                lines.append(NO_BREAK_SPACE * (len(line) - len(stripped)) + stripped)
    return "\n".join(lines) + "\n"


def _aws_timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _marshal(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value  # AWS passes bytes through untouched ("application/unknown")
    return json.dumps(value, default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):  # AWS's encoder writes Decimals as numbers
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# --- handler loading -------------------------------------------------------------------------


def _load_handler(handler: str) -> Any:
    """Import the handler's module and fetch the function, failing as AWS's runtime does."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from exc
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise _Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {exc}",
            trace,
        ) from exc
    try:
        return getattr(module, function_name)
    except AttributeError as exc:
        raise _Fault(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        ) from exc


def _shadow_preloaded(code_dir: Path) -> None:
    """Forget template-imported packages that the function ships its own copy of."""
    names = set()
    for entry in code_dir.iterdir():
        if entry.is_dir() and (entry / "__init__.py").exists():
            names.add(entry.name)
        elif entry.suffix == ".py":
            names.add(entry.stem)
    for name in names:
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None) or ""
        if module is None or location.startswith(str(code_dir)):
            continue
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]


# --- memory ----------------------------------------------------------------------------------


class _Memory:
    """RSS sampling (watchdog) and the per-invocation peak (VmHWM, reset at each start)."""

    def __init__(self) -> None:
        self._statm = os.open("/proc/self/statm", os.O_RDONLY)
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._can_reset = True

    def rss(self) -> int:
        return int(os.pread(self._statm, 128, 0).split()[1]) * self._page

    def reset_peak(self) -> None:
        if not self._can_reset:
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self._can_reset = False  # peak then stays a lifetime peak; still a valid bound

    def peak(self) -> int:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
        return self.rss()

    def address_space(self) -> int:
        return int(os.pread(self._statm, 128, 0).split()[0]) * self._page


# --- the environment -------------------------------------------------------------------------


@dataclass
class _Invocation:
    request_id: str
    version: str
    log: InvocationLog
    started: float  # perf_counter
    deadline: float  # perf_counter
    init_ms: float | None
    claimed: bool = False  # a result was (or is being) sent


class Standby:
    """What an environment sets up before it knows its function.

    A spare child (see ``_template``) builds this while the template is idle, so a spawn
    that finds a spare skips it. Its output sink, root logger and memory probe are the
    environment's own from then on.
    """

    def __init__(self) -> None:
        _redirect_output(work_root())
        self.log = InvocationLog()  # init output, then output between invocations
        self.last_request_id = ""
        self.memory = _Memory()
        sys.stdout = _LogStream(self, 1)
        sys.stderr = _LogStream(self, 2)
        _install_logging(self)
        self._rehearse()

    def _rehearse(self) -> None:
        """Write, once, to what every spawn writes: the copy-on-write faults happen now.

        A forked child pays a page fault for each page of the shared heap it first writes
        (refcounts included). Most of those pages are already behind us once the streams
        and the logger are installed; these few calls take the rest (~0.2 ms measured).
        """
        os.environ["KENNEL_STANDBY"] = "1"
        del os.environ["KENNEL_STANDBY"]
        json.loads(json.dumps({"op": "ready", "n": [1, 2.5, None, True, "x"]}))
        self.memory.peak()
        self.memory.rss()
        threading.Lock()
        threading.Event()
        record = logging.LogRecord("standby", logging.INFO, __file__, 0, "warm", None, None)
        record.aws_request_id = ""
        logging.getLogger().handlers[0].format(record)


class _Runtime:
    """State of the running environment, shared by the main thread and the watchdog."""

    def __init__(
        self, standby: Standby, conn: socket.socket, spec: dict[str, Any], started: float
    ) -> None:
        self.out = standby
        self.memory = standby.memory
        self.conn = conn
        self.spec = spec
        self.started = started
        self.memory_mb = int(spec["memory_mb"])
        self.limit_bytes = self.memory_mb * 2**20
        self.timeout_s = float(spec["timeout_s"])
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.current: _Invocation | None = None
        self.init_ms: float | None = None
        self.handler: Any = None

    # -- lifecycle

    def serve(self) -> int:
        try:
            code_dir = self._prepare()
        except Exception as exc:  # noqa: BLE001 - any setup failure is reported to the gateway
            error = _error(f"{type(exc).__name__}: {exc}", "Kennel.SetupError", [], "")
            self._send_ready(0.0, error, "")
            return 1
        init_error = self._init(code_dir)
        init_ms = (time.perf_counter() - self.started) * 1000
        if init_error is None and self.memory.peak() > self.limit_bytes:
            init_error = _error(
                "Runtime exited with error: signal: killed", "Runtime.ExitError", [], ""
            )
        if init_error is not None:
            self.out.log.write(_error_log_text(init_error))
            self._send_ready(init_ms, init_error, self.out.log.text())
            return 1
        self._send_ready(init_ms, None, "")
        if self.spec.get("initialization_type", "on-demand") == "on-demand":
            self.init_ms = init_ms
        threading.Thread(target=self._watch, name="kennel-watchdog", daemon=True).start()
        return self._loop()

    def _send_ready(self, init_ms: float, error: dict[str, Any] | None, log: str) -> None:
        self._send(
            {
                "op": "ready",
                "pid": os.getpid(),
                "init_duration_ms": round(init_ms, 3),
                "init_error": error,
                "log": log,
            }
        )

    def _prepare(self) -> Path:
        root = work_root()
        code_dir = ensure_code(str(self.spec["code_uri"]), self.spec.get("code_sha256"), root)
        ca_bundle = ensure_ca_bundle(self.spec.get("gateway_ca_pem"), root)
        os.environ.clear()
        os.environ.update(build_environ(self.spec, str(code_dir), ca_bundle=ca_bundle))
        time.tzset()
        os.chdir(code_dir)
        sys.path.insert(0, str(code_dir))
        _shadow_preloaded(code_dir)
        soft = self.memory.address_space() + 4 * self.limit_bytes + ADDRESS_SPACE_SLACK_BYTES
        with contextlib.suppress(ValueError, OSError):  # a lower hard limit is kept
            resource.setrlimit(resource.RLIMIT_AS, (soft, resource.RLIM_INFINITY))
        return code_dir

    def _init(self, code_dir: Path) -> dict[str, Any] | None:
        try:
            self.handler = _load_handler(str(self.spec["handler"]))
        except _Fault as fault:
            return _error(fault.message, fault.error_type, fault.trace, "")
        except MemoryError:
            return _error("Runtime exited with error: signal: killed", "Runtime.ExitError", [], "")
        except BaseException as exc:  # noqa: BLE001 - module code failed: AWS reports its type
            return _error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), "")
        return None

    def _loop(self) -> int:
        while True:
            try:
                frame = recv_frame(self.conn)
            except (OSError, ProtocolError):
                return 2
            if frame is None:
                return 0
            meta, payload = frame
            if meta.get("op") != "invoke":
                return 2
            if self._invoke(meta, payload):
                return 1

    # -- one invocation

    def _invoke(self, meta: Meta, payload: bytes) -> bool:
        """Run one invocation and reply; True if the environment must end."""
        started = time.perf_counter()
        request_id = str(meta["request_id"])
        version = str(meta.get("version") or self.spec.get("version") or "$LATEST")
        now_ms = int(time.time() * 1000)
        if meta.get("timeout_ms") is not None:
            budget_ms = float(meta["timeout_ms"])
            deadline_epoch_ms = int(meta.get("deadline_epoch_ms") or now_ms + budget_ms)
        elif meta.get("deadline_epoch_ms") is not None:
            deadline_epoch_ms = int(meta["deadline_epoch_ms"])
            budget_ms = float(deadline_epoch_ms - now_ms)
        else:
            budget_ms = self.timeout_s * 1000
            deadline_epoch_ms = int(now_ms + budget_ms)
        log = InvocationLog()
        log.write(self.out.log.text())
        log.write(f"START RequestId: {request_id} Version: {version}\n")
        invocation = _Invocation(
            request_id, version, log, started, started + budget_ms / 1000, self.init_ms
        )
        self.init_ms = None
        self.memory.reset_peak()
        self.out.last_request_id = request_id
        with self.lock:
            self.out.log = log
            self.current = invocation
        self.wake.set()

        kind, body, ends = self._call(meta, payload, invocation, deadline_epoch_ms)
        duration_ms = (time.perf_counter() - started) * 1000
        peak = self.memory.peak()
        with self.lock:
            if invocation.claimed:  # the watchdog answered; it is ending the process
                return True
            invocation.claimed = True
            self.current = None
            self.out.log = InvocationLog()
        if kind != "memory" and peak > self.limit_bytes:
            kind, body, ends = "memory", b"", True
        if kind == "memory":
            self._reply_fatal(invocation, "memory", duration_ms, peak)
            return True
        self._reply(invocation, kind, body, duration_ms, peak, ends)
        return ends

    def _call(
        self, meta: Meta, payload: bytes, invocation: _Invocation, deadline_epoch_ms: int
    ) -> tuple[str, bytes, bool]:
        """The handler's outcome: (kind, body, environment ends)."""
        request_id = invocation.request_id
        try:
            try:
                context = LambdaContext(
                    request_id,
                    str(meta.get("invoked_function_arn") or self.spec["invoked_function_arn"]),
                    deadline_epoch_ms,
                    parse_client_context(meta.get("client_context")),
                    meta.get("cognito_identity"),
                )
            except ClientContextError as exc:
                raise _Fault("Runtime.LambdaContextUnmarshalError", str(exc)) from exc
            try:
                event = json.loads(payload) if payload else {}
            except ValueError as exc:
                raise _Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}") from exc
            value = self.handler(event, context)
            try:
                return "ok", _marshal(value), False
            except (TypeError, ValueError, OverflowError, RecursionError) as exc:
                raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from exc
        except _Fault as fault:
            error = _error(fault.message, fault.error_type, fault.trace, request_id)
            ends = False
        except MemoryError:
            return "memory", b"", True
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            message = (
                f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
            )
            error = {"errorType": "Runtime.ExitError", "errorMessage": message}
            invocation.log.write(f"{message}\nRuntime.ExitError\n")
            return "error", json.dumps(error).encode(), True
        except BaseException as exc:  # noqa: BLE001 - the handler's failure is the result
            error = _error(
                str(exc), type(exc).__name__, _user_frames(exc.__traceback__), request_id
            )
            ends = False
        invocation.log.write(_error_log_text(error))
        return "error", json.dumps(error).encode(), ends

    def _reply(
        self,
        invocation: _Invocation,
        kind: str,
        body: bytes,
        duration_ms: float,
        peak: int,
        ends: bool,
        status: str = "",
    ) -> None:
        billed = max(1, math.ceil(duration_ms))
        max_mb = math.ceil(peak / 2**20)
        rid = invocation.request_id
        report = (
            f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {billed} ms\tMemory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {max_mb} MB"
        )
        if invocation.init_ms is not None:
            report += f"\tInit Duration: {invocation.init_ms:.2f} ms"
        invocation.log.write(f"END RequestId: {rid}\n{report}{status}\n")
        meta = {
            "op": "result",
            "kind": kind,
            "duration_ms": round(duration_ms, 3),
            "billed_ms": billed,
            "max_memory_mb": max_mb,
            "init_duration_ms": None
            if invocation.init_ms is None
            else round(invocation.init_ms, 3),
            "log": invocation.log.text(),
            "exit": ends,
        }
        self._send(meta, body)

    def _reply_fatal(
        self, invocation: _Invocation, kind: str, duration_ms: float, peak: int
    ) -> None:
        """The timeout / out-of-memory result; the caller ends the process right after."""
        rid = invocation.request_id
        if kind == "timeout":
            message = f"{_aws_timestamp()} {rid} Task timed out after {self.timeout_s:.2f} seconds"
            error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
            invocation.log.write(f"{message}\n")
            status = "\tStatus: timeout"
            duration_ms = self.timeout_s * 1000
        else:
            message = f"RequestId: {rid} Error: Runtime exited with error: signal: killed"
            error = {"errorType": "Runtime.ExitError", "errorMessage": message}
            invocation.log.write(f"{message}\nRuntime.ExitError\n")
            status = "\tStatus: error\tError Type: Runtime.OutOfMemory"
        self._reply(invocation, kind, json.dumps(error).encode(), duration_ms, peak, True, status)

    def _send(self, meta: Meta, payload: bytes = b"") -> None:
        try:
            send_frame(self.conn, meta, payload)
        except OSError:
            os._exit(3)  # the gateway is gone: nobody is left to serve

    # -- watchdog

    def _watch(self) -> None:
        while True:
            self.wake.wait()
            with self.lock:
                invocation = self.current
                if invocation is None:
                    self.wake.clear()
                    continue
            rss = self.memory.rss()
            if rss > self.limit_bytes:
                self._give_up(invocation, "memory", max(rss, self.memory.peak()))
            elif time.perf_counter() >= invocation.deadline:
                self._give_up(invocation, "timeout", self.memory.peak())
            time.sleep(WATCH_INTERVAL_SECONDS)

    def _give_up(self, invocation: _Invocation, kind: str, peak: int) -> None:
        with self.lock:
            if invocation.claimed or self.current is not invocation:
                return
            invocation.claimed = True
            duration_ms = (time.perf_counter() - invocation.started) * 1000
            self._reply_fatal(invocation, kind, duration_ms, peak)
            with contextlib.suppress(OSError):
                self.conn.shutdown(socket.SHUT_WR)
            os._exit(1)


def _redirect_output(root: Path) -> None:
    """fd 0 from /dev/null; fd 1 and 2 (C-level output) into ``<root>/logs/<pid>.log``."""
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = os.open(logs / f"{os.getpid()}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)


def run(
    conn: socket.socket, spec: dict[str, Any], started: float, standby: Standby | None = None
) -> int:
    """The environment's whole life in the forked child; returns its exit code.

    ``started`` is ``time.perf_counter()`` when the spawn began (just before the fork, or
    when a spare received its function): Init Duration runs from there to the end of the
    handler's import.
    """
    return _Runtime(standby or Standby(), conn, spec, started).serve()
