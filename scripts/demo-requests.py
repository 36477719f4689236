"""`make demo`'s last step: send test images through the function URL, as a client would.

The images are served on 127.0.0.1 (the endpoint's model server fetches each by its URL,
as the dog-breed function's callers send `{"url": ...}`); every request goes to the
function URL over plain HTTP. Prints each prediction and a timing table.

    python scripts/demo-requests.py FUNCTION_URL IMAGES_DIR [--count N]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

TIMEOUT_SECONDS = 60.0


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``folder`` on a free loopback port; returns the server and its base URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


def pick_images(test_dir: Path, count: int) -> list[Path]:
    """``count`` test images, taking classes in turn so each class shows up."""
    per_class = [sorted(d.iterdir()) for d in sorted(test_dir.iterdir()) if d.is_dir()]
    picked: list[Path] = []
    for i in range(max(len(c) for c in per_class)):
        for images in per_class:
            if i < len(images) and len(picked) < count:
                picked.append(images[i])
    return picked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function_url")
    parser.add_argument("images", type=Path, help="a make-demo folder (train/ valid/ test/)")
    parser.add_argument("--count", type=int, default=8)
    args = parser.parse_args()
    console = Console()
    classes = sorted(d.name for d in (args.images / "train").iterdir() if d.is_dir())
    server, base = serve(args.images)
    table = Table("image", "class", "predicted", "score", "ms", title="Through the function URL")
    times: list[float] = []
    right = 0
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
            for image in pick_images(args.images / "test", args.count):
                url = f"{base}/{image.relative_to(args.images).as_posix()}"
                began = time.perf_counter()
                answer = client.post(args.function_url, json={"url": url})
                elapsed = (time.perf_counter() - began) * 1000
                if answer.status_code != 200:
                    console.print(f"[red]{answer.status_code} from the function URL: {answer.text}")
                    return 1
                scores = answer.json()
                row = scores[0] if isinstance(scores[0], list) else scores
                if len(row) != len(classes):
                    console.print(f"[red]{len(row)} scores for {len(classes)} classes: {row}")
                    return 1
                best = max(range(len(row)), key=row.__getitem__)
                truth = image.parent.name
                right += classes[best] == truth
                times.append(elapsed)
                table.add_row(
                    image.name, truth, classes[best], f"{row[best]:.3f}", f"{elapsed:.1f}"
                )
    finally:
        server.shutdown()
    console.print(table)
    timing = Table("requests", "right", "first ms", "median ms", "max ms", title="Timing")
    timing.add_row(
        str(len(times)),
        f"{right}/{len(times)}",
        f"{times[0]:.1f}",
        f"{statistics.median(times):.1f}",
        f"{max(times):.1f}",
    )
    console.print(timing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
