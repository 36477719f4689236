"""The autoscaler: acts on scaling policies each metric period, and on scale-from-zero.

After every metric period the endpoint service hands over the variants' values; for each
registered scalable target the autoscaler

* keeps the desired count inside the target's min/max (a changed min/max takes effect
  at the next period, as Application Auto Scaling does on RegisterScalableTarget);
* feeds the period's values to the target's policies (``_autoscaling``: the alarms,
  cooldowns and capacity arithmetic) and carries out what they decide;
* records each change as a scaling activity (``InProgress``, then ``Successful`` or
  ``Failed`` with the reason), with AWS's description and cause.

A change runs on its own thread (starting instances takes seconds): one at a time per
target, while the alarms go on counting periods. A request that reaches a variant at
zero instances calls :meth:`Autoscaler.wake` on the gateway's event loop; if a scalable
target allows an instance, one is started at once and the request is held for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kennel._errors import KennelError
from kennel._settings import Settings
from kennel.endpoints._autoscaling import AlarmStatus, Clock, Decision, ScalingTargetState
from kennel.endpoints._scaling import ScalingService, ScheduledActionInfo, TargetInfo
from kennel.endpoints._service import DeploymentError, EndpointService

log = logging.getLogger(__name__)


class Autoscaler:
    def __init__(
        self,
        endpoints: EndpointService,
        scaling: ScalingService,
        settings: Settings,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.endpoints = endpoints
        self.scaling = scaling
        self.period = settings.endpoint_metrics_period_seconds
        self.clock = clock
        self._targets: dict[str, TargetInfo] = {}
        self._generation: int | None = None
        self._states: dict[str, ScalingTargetState] = {}
        self._busy: dict[str, threading.Thread] = {}
        self._woken: set[str] = set()
        self._scheduled_since = datetime.now(UTC)
        self._scheduled: list[ScheduledActionInfo] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Listen to the endpoint service's metric periods and requests at zero."""
        self._refresh()
        self.endpoints.period_listeners.append(self.on_period)
        self.endpoints.on_empty = self.wake

    def stop(self) -> None:
        """Stop acting; a change under way ends with the endpoint service's shutdown."""
        if self.on_period in self.endpoints.period_listeners:
            self.endpoints.period_listeners.remove(self.on_period)
        self.endpoints.on_empty = None

    # Each period -------------------------------------------------------------------------

    def on_period(self, values: Mapping[str, Mapping[str, float]]) -> None:
        self._refresh()
        try:
            self._run_scheduled()
        except Exception:
            log.exception("running scheduled scaling actions failed")
        for target in list(self._targets.values()):
            try:
                self._evaluate(target, values.get(target.resource_id, {}))
            except Exception:
                log.exception("autoscaling %s failed", target.resource_id)

    def _evaluate(self, target: TargetInfo, values: Mapping[str, float]) -> None:
        capacity = self.endpoints.variant_capacity(target.endpoint, target.variant)
        if capacity is None:
            return
        desired, in_service = capacity
        busy = target.resource_id in self._busy
        low, high = target.min_capacity, target.max_capacity
        if not busy and not low <= desired <= high:
            bound = "minimum" if desired < low else "maximum"
            wanted = min(max(desired, low), high)
            self._carry_out(
                target,
                desired,
                wanted,
                f"the scalable target's {bound} capacity of {wanted} was applied",
            )
            return
        state = self._states.get(target.resource_id)
        if state is None:
            return
        decision = state.evaluate(
            values,
            measured_capacity=in_service,
            desired=desired,
            min_capacity=low,
            max_capacity=high,
        )
        if decision is None or busy:
            return
        if decision.direction == "out" and target.dynamic_scaling_out_suspended:
            return
        if decision.direction == "in" and target.dynamic_scaling_in_suspended:
            return
        self._carry_out(target, desired, decision.desired, decision.cause, decision)

    def _run_scheduled(self) -> None:
        """Apply the bounds of scheduled actions that came due since the last period."""
        since, now = self._scheduled_since, datetime.now(UTC)
        self._scheduled_since = now
        for action in self._scheduled:
            due = action.next_run(since)
            if due is None or due > now:
                continue
            target = self._targets.get(action.resource_id)
            if target is None or target.scheduled_scaling_suspended:
                continue
            request: dict[str, Any] = {
                "ServiceNamespace": "sagemaker",
                "ResourceId": action.resource_id,
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            }
            bounds = []
            if action.min_capacity is not None:
                request["MinCapacity"] = action.min_capacity
                bounds.append(f"min capacity to {action.min_capacity}")
            if action.max_capacity is not None:
                request["MaxCapacity"] = action.max_capacity
                bounds.append(f"max capacity to {action.max_capacity}")
            activity = self.scaling.start_activity(
                action.resource_id,
                description="Setting " + " and ".join(bounds) + ".",
                cause=f"scheduled action name {action.name} was triggered",
            )
            try:
                self.scaling.register_scalable_target(request)
            except KennelError as error:
                self.scaling.finish_activity(activity, "Failed", error.message)
            else:
                self.scaling.finish_activity(activity, "Successful")

    # Scale from zero ---------------------------------------------------------------------

    def wake(self, endpoint: str, variant: str) -> bool:
        """A request found no instance: start one if a target allows it (event loop: no
        database reads here, only what the last period cached)."""
        resource = f"endpoint/{endpoint}/variant/{variant}"
        target = self._targets.get(resource)
        if target is None or target.max_capacity < 1:
            return False
        with self._lock:
            if resource in self._busy:
                self._woken.add(resource)  # started when the running change ends
                return True
        capacity = self.endpoints.variant_capacity(endpoint, variant)
        if capacity is None:
            return False
        desired, _ = capacity
        if desired > 0:
            return True  # an instance is on its way (or the route is being rebuilt)
        self._carry_out(
            target,
            0,
            1,
            "a request arrived while the variant had no instances (scale from zero)",
        )
        return True

    # Carrying out ------------------------------------------------------------------------

    def _carry_out(
        self,
        target: TargetInfo,
        previous: int,
        desired: int,
        cause: str,
        decision: Decision | None = None,
    ) -> None:
        resource = target.resource_id
        with self._lock:
            if resource in self._busy:
                return
            worker = threading.Thread(
                target=self._change,
                args=(target, previous, desired, cause, decision),
                name=f"autoscaling-{resource}",
                daemon=True,
            )
            self._busy[resource] = worker
        worker.start()

    def _change(
        self,
        target: TargetInfo,
        previous: int,
        desired: int,
        cause: str,
        decision: Decision | None,
    ) -> None:
        resource = target.resource_id
        activity = ""
        try:
            activity = self.scaling.start_activity(
                resource,
                description=f"Setting desired instance count to {desired}.",
                # AWS's form: "At <time> a monitor alarm ... in state ALARM triggered
                # policy P changing the desired capacity from 1 to 3."
                cause=f"At {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {_article(cause)} "
                f"changing the desired capacity from {previous} to {desired}.",
            )
            self.endpoints.scale_variant(target.endpoint, target.variant, desired)
        except (KennelError, DeploymentError) as error:
            text = error.message if isinstance(error, KennelError) else str(error)
            log.warning("scaling %s to %d failed: %s", resource, desired, text)
            if activity:
                self.scaling.finish_activity(
                    activity, "Failed", f"Failed to set desired instance count to {desired}: {text}"
                )
        except Exception as error:
            log.exception("scaling %s to %d failed", resource, desired)
            if activity:
                self.scaling.finish_activity(activity, "Failed", f"{type(error).__name__}: {error}")
        else:
            state = self._states.get(resource)
            if decision is not None and state is not None:
                state.applied(decision)
            self.scaling.finish_activity(
                activity,
                "Successful",
                f"Successfully set desired instance count to {desired}. Change successfully "
                "fulfilled by sagemaker.",
            )
        finally:
            with self._lock:
                self._busy.pop(resource, None)
                woken = resource in self._woken
                self._woken.discard(resource)
        if woken:
            self.wake(target.endpoint, target.variant)

    # Targets and policies ----------------------------------------------------------------

    def _refresh(self) -> None:
        generation = self.scaling.generation
        if generation == self._generation:
            return
        targets = {t.resource_id: t for t in self.scaling.targets()}
        self._scheduled = self.scaling.scheduled_actions()
        for resource, target in targets.items():
            state = self._states.get(resource)
            if state is None:
                self._states[resource] = ScalingTargetState(
                    resource, list(target.policies), period_seconds=self.period, clock=self.clock
                )
            else:
                state.update_policies(list(target.policies))
        for resource in list(self._states):
            if resource not in targets:
                del self._states[resource]
        self._targets = targets
        self._generation = generation

    def alarms(self, resource_id: str) -> list[AlarmStatus]:
        """The alarms of a target's policies as they stand (for describe)."""
        state = self._states.get(resource_id)
        return state.alarms() if state is not None else []


def _article(cause: str) -> str:
    """``monitor alarm X ...`` reads "a monitor alarm X ..." in a sentence."""
    return cause if cause.startswith(("a ", "the ")) else f"a {cause}"
