"""Debugger and profiler: the training-script hook, the rules, the report.

A script saves with the hook (``get_hook``, ``modes``); kennel reads what it saved as a
``Trial`` and evaluates rules on it while the job runs (``rules``); ``kennel jobs
report`` renders it as one HTML page. The hook needs torch, the rest does not, so the
hook is imported on first use (the server imports this package without torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kennel.debugger._trial import Trial, read_trial

if TYPE_CHECKING:
    from kennel.debugger._hook import Hook, HookConfig, get_hook, modes

__all__ = ["Hook", "HookConfig", "Trial", "get_hook", "modes", "read_trial"]

_HOOK_NAMES = {"Hook", "HookConfig", "get_hook", "modes"}


def __getattr__(name: str) -> object:
    if name in _HOOK_NAMES:
        from kennel.debugger import _hook

        return getattr(_hook, name)
    raise AttributeError(f"module 'kennel.debugger' has no attribute {name!r}")
