"""Debugger and profiler: the training-script hook, the rules, the report.

A script saves with the hook (``get_hook``, ``modes``); kennel reads what it saved as a
``Trial`` and evaluates rules on it while the job runs (``rules``); ``kennel jobs
report`` renders it as one HTML page. The hook needs torch, the rest does not, so the
hook is imported on first use (the server imports this package without torch).

The SDK's configuration names are here too, as in ``sagemaker.debugger``: ``Rule``,
``ProfilerRule``, ``rule_configs``, ``ProfilerConfig``, ``DebuggerHookConfig`` and
``CollectionConfig`` (``Rule.sagemaker(rule_configs.vanishing_gradient())``). They
configure a job; the rule classes that run are in ``kennel.debugger.rules``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kennel.debugger._trial import Trial, read_trial

if TYPE_CHECKING:
    from kennel.debugger._hook import Hook, HookConfig, get_hook, modes
    from kennel.sdk._debugger import (
        CollectionConfig,
        DebuggerHookConfig,
        ProfilerConfig,
        ProfilerRule,
        Rule,
        rule_configs,
    )

__all__ = [
    "CollectionConfig",
    "DebuggerHookConfig",
    "Hook",
    "HookConfig",
    "ProfilerConfig",
    "ProfilerRule",
    "Rule",
    "Trial",
    "get_hook",
    "modes",
    "read_trial",
    "rule_configs",
]

_HOOK_NAMES = {"Hook", "HookConfig", "get_hook", "modes"}
_SDK_NAMES = {
    "CollectionConfig",
    "DebuggerHookConfig",
    "ProfilerConfig",
    "ProfilerRule",
    "Rule",
    "rule_configs",
}


def __getattr__(name: str) -> object:
    if name in _HOOK_NAMES:
        from kennel.debugger import _hook

        return getattr(_hook, name)
    if name in _SDK_NAMES:
        from kennel.sdk import _debugger

        return getattr(_debugger, name)
    raise AttributeError(f"module 'kennel.debugger' has no attribute {name!r}")
