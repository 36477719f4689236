"""Headless Chromium for tests that must see a page drawn, not just served.

``render`` opens a local HTML file twice: once to save a screenshot and once to dump the
DOM after the page's scripts ran (so a test can count the SVGs Plotly drew). Each run
gets a fresh profile, no network (every host name fails to resolve, so a page that
needs a CDN shows it), and a hard time limit: on timeout the whole process group is
killed, so no renderer or zygote outlives the test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
STDERR_TAIL = 3000


class BrowserError(RuntimeError):
    """Chromium failed, timed out or produced nothing; the message ends with its stderr."""


def chromium_path() -> str | None:
    """The Chromium to use: ``KENNEL_CHROMIUM``, /usr/bin/chromium, or one on PATH."""
    configured = os.environ.get("KENNEL_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def render(
    html_path: Path,
    screenshot: Path,
    *,
    width: int = 1400,
    height: int = 3000,
    timeout: float = 60,
) -> str:
    """Save a ``width`` x ``height`` PNG of ``html_path`` to ``screenshot`` and return the
    page's DOM after its scripts ran (virtual time lets timers and animations finish)."""
    browser = chromium_path()
    if browser is None:
        raise BrowserError("no Chromium found (install it with scripts/install-browser)")
    url = html_path.resolve().as_uri()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    _run(browser, [f"--screenshot={screenshot.resolve()}", url], width, height, timeout)
    if not screenshot.exists() or screenshot.stat().st_size == 0:
        raise BrowserError(f"Chromium wrote no screenshot to {screenshot}")
    dom = _run(browser, ["--dump-dom", url], width, height, timeout)
    if not dom.strip():
        raise BrowserError(f"Chromium dumped an empty DOM for {url}")
    return dom


def _flags(profile: str, width: int, height: int) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",  # root in containers and CI
        "--disable-gpu",
        "--disable-dev-shm-usage",  # small /dev/shm in containers
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: the page must not need the net
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--run-all-compositor-stages-before-draw",
        f"--window-size={width},{height}",
    ]


def _run(browser: str, args: list[str], width: int, height: int, timeout: float) -> str:
    """Run Chromium once; its stdout. Output goes to files, not pipes: a pipe held open
    by a leftover child process would block the read forever."""
    with tempfile.TemporaryDirectory(prefix="kennel-chromium-") as tmp:
        out_path, err_path = Path(tmp, "stdout"), Path(tmp, "stderr")
        command = [browser, *_flags(str(Path(tmp, "profile")), width, height), *args]
        with out_path.open("wb") as out, err_path.open("wb") as err:
            process = subprocess.Popen(
                command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
            )
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise BrowserError(
                    f"Chromium did not finish within {timeout:g} s: {' '.join(command)}\n"
                    + _tail(err_path)
                ) from None
            finally:
                _kill_group(process)
        if code != 0:
            raise BrowserError(
                f"Chromium exited with {code}: {' '.join(command)}\n" + _tail(err_path)
            )
        return out_path.read_text(encoding="utf-8", errors="replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the session Chromium started (its helpers included) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "Chromium's stderr (tail):\n" + (text[-STDERR_TAIL:] or "(empty)")
