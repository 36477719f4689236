"""``main``: arguments first, then the run, and the failure convention around both.

Importing torch and torchvision takes seconds, so they are imported only once the
arguments are known to be good: a typo fails at once, and code that only needs the
config (a platform checking hyperparameters) never loads torch.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

from kennel.trainer._args import parse_args
from kennel.trainer._failure import write_failure


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m kennel.trainer``; returns the exit code (2: bad arguments)."""
    environ = os.environ
    try:
        config = parse_args(argv, environ)
    except SystemExit as stop_request:  # argparse: --help (0) or a usage error (2)
        return stop_request.code if isinstance(stop_request.code, int) else 2
    try:
        from kennel.trainer._run import train  # heavy: torch, torchvision

        train(config, environ)
    except Exception as error:  # noqa: BLE001 - the top level: report, record, exit 1
        traceback.print_exc()
        sys.stderr.flush()
        write_failure(f"{type(error).__name__}: {error}", environ)
        return 1
    return 0
