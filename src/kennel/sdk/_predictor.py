"""``Predictor``: calls a real-time endpoint (SageMaker's ``sagemaker.predictor.Predictor``).

``predict`` is a signed InvokeEndpoint (``POST /endpoints/{name}/invocations``, the route
boto3's ``sagemaker-runtime`` client uses); the serializer makes the body and names its
``Content-Type``, the deserializer names ``Accept`` and reads the answer. The control-plane
calls (delete the endpoint, its config, its models; autoscaling) go to kennel's HTTP API
and, for autoscaling, to Application Auto Scaling's own API on the same server, so what a
predictor does a boto3 script can see.

:func:`deploy_training_job` is what ``Estimator.deploy`` and ``HyperparameterTuner.deploy``
do: model, endpoint config and endpoint from a completed training job, like
``kennel deploy JOB --name ENDPOINT``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from typing import Any

import botocore.exceptions
import pydantic

from kennel._client import path_segment
from kennel._errors import (
    ConflictError,
    KennelError,
    NotFoundError,
    ServiceUnavailableError,
    UnexpectedStatusError,
    ValidationError,
    error_from_response,
)
from kennel.endpoints._scaling_spec import (
    DEFAULT_COOLDOWN,
    NAMESPACE,
    PolicySpec,
    ScalingSpec,
    target_key,
)
from kennel.sdk._serializers import (
    IMAGE,
    OCTET_STREAM,
    BaseDeserializer,
    BaseSerializer,
    BytesDeserializer,
    IdentitySerializer,
    JSONDeserializer,
)
from kennel.sdk._session import Session

__all__ = ["Predictor", "deploy_training_job"]

MODELS = "/api/v1/models"
CONFIGS = "/api/v1/endpoint-configs"
ENDPOINTS = "/api/v1/endpoints"
BUSY = ("Creating", "Updating", "RollingBack", "SystemUpdating", "Deleting")
BUILTIN_MODEL_KIND = "builtin-image-classifier"
"""The ``kind`` kennel gives a model made by the built-in trainer."""
POLL_SECONDS = 0.5
DEPLOY_WAIT_SECONDS = 900.0
"""How long ``deploy(wait=True)`` waits for InService before giving up (with an error)."""
DELETE_WAIT_SECONDS = 300.0
"""How long ``delete_endpoint`` waits for the endpoint to be gone before deleting its config."""

INVOKE_ARGUMENTS = {
    "ContentType": "Content-Type",
    "Accept": "Accept",
    "CustomAttributes": "X-Amzn-SageMaker-Custom-Attributes",
    "TargetVariant": "X-Amzn-SageMaker-Target-Variant",
    "InferenceId": "X-Amzn-SageMaker-Inference-Id",
}
"""InvokeEndpoint's members kennel honours in ``initial_args``, and their headers."""

SCALING_FIELDS = {
    "variant": "variant_name",
    "policies.0.name": "policy_name",
    "policies.0.target_value": "target_value",
    "policies.0.metric": "metric",
    "policies.0.scale_in_cooldown": "scale_in_cooldown",
    "policies.0.scale_out_cooldown": "scale_out_cooldown",
    "policies.0.disable_scale_in": "disable_scale_in",
}
"""ScalingSpec's fields as ``enable_autoscaling``'s arguments, for its error messages."""


Serializer = BaseSerializer | Any
Deserializer = BaseDeserializer | Any


class Predictor:
    """Makes predictions with a kennel endpoint (SageMaker's ``Predictor``).

    Attach to an endpoint that exists with ``Predictor("my-endpoint")``; ``deploy()`` on an
    estimator or a tuner returns one too.

    Args:
        endpoint_name: The endpoint to call.
        sagemaker_session: Where the calls go and who signs them (default: ``Session()``).
        serializer: Turns ``predict``'s data into the request body and names its
            ``Content-Type`` (default: ``IdentitySerializer()``: bytes as they are, as
            ``application/octet-stream``, SageMaker's default). For the built-in trainer's
            models use ``IdentitySerializer("image/jpeg")`` or ``DataSerializer()``.
        deserializer: Names ``Accept`` and reads the answer (default:
            ``BytesDeserializer()``: the body's bytes, SageMaker's default).
        component_name: Not supported: kennel endpoints have no inference components.

    Raises:
        ValidationError: An argument kennel cannot honour was given.
    """

    def __init__(
        self,
        endpoint_name: str,
        sagemaker_session: Session | None = None,
        serializer: Serializer = IdentitySerializer(),
        deserializer: Deserializer = BytesDeserializer(),
        component_name: str | None = None,
    ) -> None:
        if not isinstance(endpoint_name, str) or not endpoint_name:
            raise ValidationError(
                f"endpoint_name must be an endpoint's name, got {endpoint_name!r}."
            )
        _refuse("component_name", component_name, "kennel endpoints have no inference components")
        _check_codec("serializer", serializer, "CONTENT_TYPE", "serialize")
        _check_codec("deserializer", deserializer, "ACCEPT", "deserialize")
        self.endpoint_name = endpoint_name
        self.sagemaker_session = sagemaker_session or Session()
        self.serializer = serializer
        self.deserializer = deserializer
        self._endpoint_config_name: str | None = None
        self._model_names: list[str] | None = None
        self._autoscaling: Any = None

    # Invocation ---------------------------------------------------------------------------

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` the serializer sends."""
        return str(self.serializer.CONTENT_TYPE)

    @property
    def accept(self) -> tuple[str, ...]:
        """The media types the deserializer asks for."""
        accept = self.deserializer.ACCEPT
        return (accept,) if isinstance(accept, str) else tuple(accept)

    def predict(
        self,
        data: Any,
        initial_args: Mapping[str, Any] | None = None,
        target_model: str | None = None,
        target_variant: str | None = None,
        inference_id: str | None = None,
        custom_attributes: str | None = None,
        component_name: str | None = None,
    ) -> Any:
        """Send ``data`` to the endpoint and return its answer (InvokeEndpoint).

        Args:
            data: What the serializer turns into the request body (for the built-in
                trainer's models deployed by ``deploy()``: an image's bytes).
            initial_args: InvokeEndpoint members: ``ContentType`` and ``Accept`` (they win
                over the serializer's and deserializer's), ``CustomAttributes``,
                ``TargetVariant`` and ``InferenceId`` (the arguments below win over them).
                Others are refused by name.
            target_model: Not supported: kennel has no multi-model endpoints.
            target_variant: The production variant to send the request to (default: by
                the variants' weights).
            inference_id: An id for the request (up to 64 characters).
            custom_attributes: Passed to the model as ``X-Amzn-SageMaker-Custom-Attributes``
                (the built-in models answer the top classes with their labels for
                ``"top_k=3"``).
            component_name: Not supported: kennel endpoints have no inference components.

        Returns:
            The deserializer's reading of the answer.

        Raises:
            ValidationError: An argument kennel cannot honour, or a request the endpoint
                refused (unknown endpoint or variant, not InService).
            KennelError: The model failed or refused the request (``aws_code``
                ``ModelError``, its message the model server's), or the endpoint is not
                ready (``ModelNotReadyException``).
        """
        _refuse("target_model", target_model, "kennel has no multi-model endpoints")
        _refuse("component_name", component_name, "kennel endpoints have no inference components")
        headers = self._headers(initial_args, target_variant, inference_id, custom_attributes)
        body = _body(self.serializer.serialize(data), self.serializer)
        try:
            response = self.sagemaker_session.api.request(
                "POST",
                f"/endpoints/{path_segment(self.endpoint_name)}/invocations",
                data=body,
                headers=headers,
            )
        except KennelError as error:
            raise self._invoke_error(error, headers) from error
        content_type = response.headers.get("content-type", "")
        return self.deserializer.deserialize(io.BytesIO(response.content), content_type)

    def _headers(
        self,
        initial_args: Mapping[str, Any] | None,
        target_variant: str | None,
        inference_id: str | None,
        custom_attributes: str | None,
    ) -> dict[str, str]:
        args = dict(initial_args or {})
        unknown = sorted(
            key
            for key in args
            if key not in INVOKE_ARGUMENTS
            and not (key == "EndpointName" and args[key] == self.endpoint_name)
            and key != "Body"
        )
        if unknown:
            raise ValidationError(
                f"initial_args {unknown} cannot be honoured: kennel's InvokeEndpoint takes "
                f"{', '.join(INVOKE_ARGUMENTS)}.",
                hint="Drop them (EndpointName is the predictor's, Body is predict's data).",
            )
        if "Body" in args:
            raise ValidationError(
                "initial_args['Body'] cannot be given: the body is predict's data, serialized."
            )
        # As SageMaker: initial_args over the serializer's and deserializer's types, the
        # explicit arguments over initial_args.
        wanted: dict[str, Any] = {
            "ContentType": self.content_type,
            "Accept": ", ".join(self.accept),
        }
        wanted.update({k: v for k, v in args.items() if k in INVOKE_ARGUMENTS})
        explicit = {
            "CustomAttributes": custom_attributes,
            "TargetVariant": target_variant,
            "InferenceId": inference_id,
        }
        wanted.update({k: v for k, v in explicit.items() if v is not None})
        return {INVOKE_ARGUMENTS[k]: str(v) for k, v in wanted.items() if v is not None}

    def _invoke_error(self, error: KennelError, headers: Mapping[str, str]) -> KennelError:
        if error.aws_code != "ModelError" or error.hint:
            return error
        sent = f"Content-Type {headers.get('Content-Type')}, Accept {headers.get('Accept')}"
        error.hint = (
            f"The model behind endpoint {self.endpoint_name} refused or failed the request "
            f"({sent}); check that the serializer and deserializer match what it takes and "
            "gives."
        )
        return error

    # Description and deletion --------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The endpoint as kennel describes it: status, config, variants, last deployment.

        Returns:
            ``GET /api/v1/endpoints/{name}``'s answer.
        """
        info: dict[str, Any] = self.sagemaker_session.api.get(self._endpoint_path())
        self._endpoint_config_name = info.get("config_name") or self._endpoint_config_name
        return info

    def _endpoint_path(self) -> str:
        return f"{ENDPOINTS}/{path_segment(self.endpoint_name)}"

    def _refresh(self) -> tuple[str, list[str]]:
        """The endpoint's config and models now (kept, for ``delete_model`` after
        ``delete_endpoint``)."""
        config = str(self.describe()["config_name"])
        answer = self.sagemaker_session.api.get(f"{CONFIGS}/{path_segment(config)}")
        self._model_names = list(dict.fromkeys(v["model_name"] for v in answer["variants"]))
        return config, self._model_names

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Delete the endpoint (its instances stop) and, by default, its endpoint config.

        With ``delete_endpoint_config`` this waits (up to 5 minutes) until the endpoint is
        gone, because kennel keeps a config while an endpoint uses it. The models stay:
        ``delete_model()`` deletes them, also after this. So does a scalable target that
        ``enable_autoscaling`` registered (as on AWS): ``disable_autoscaling()`` first.

        Args:
            delete_endpoint_config: Also delete the endpoint's config (default: True).

        Raises:
            NotFoundError: There is no such endpoint.
            ConflictError: The endpoint is still being created or updated.
        """
        config, _ = self._refresh()
        api = self.sagemaker_session.api
        api.delete(self._endpoint_path())
        if not delete_endpoint_config:
            return
        deadline = time.monotonic() + DELETE_WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                api.get(self._endpoint_path())
            except NotFoundError:
                break
            time.sleep(POLL_SECONDS)
        else:
            raise ServiceUnavailableError(
                f"Endpoint {self.endpoint_name} is still being deleted after "
                f"{DELETE_WAIT_SECONDS:g} s, so its config {config} was kept.",
                hint=f"Delete the config later: kennel endpoint-configs delete {config}",
            )
        api.delete(f"{CONFIGS}/{path_segment(config)}")

    def delete_model(self) -> None:
        """Delete the models the endpoint's config serves.

        Raises:
            ConflictError: A model is still used by an endpoint (delete the endpoint first).
            KennelError: Some models could not be deleted; the message names them.
        """
        try:
            _, models = self._refresh()
        except NotFoundError:
            if self._model_names is None:
                raise NotFoundError(
                    f"Endpoint {self.endpoint_name} does not exist, so the models it served "
                    "are not known.",
                    hint="Delete a model by its name: kennel models delete NAME",
                ) from None
            models = self._model_names  # the endpoint was deleted: the models it had
        failed: list[str] = []
        last: KennelError | None = None
        for name in models:
            try:
                self.sagemaker_session.api.delete(f"{MODELS}/{path_segment(name)}")
            except NotFoundError:
                continue
            except KennelError as error:
                failed.append(name)
                last = error
        if last is not None:
            if len(failed) == 1:
                raise last
            raise KennelError(
                f"Models {', '.join(failed)} could not be deleted: {last.message}",
                hint=last.hint,
                status=last.status,
                aws_code=last.aws_code,
            )

    # Autoscaling ---------------------------------------------------------------------------

    def enable_autoscaling(
        self,
        min_capacity: int,
        max_capacity: int,
        target_value: float,
        metric: str = "SageMakerVariantInvocationsPerInstance",
        scale_in_cooldown: int = DEFAULT_COOLDOWN,
        scale_out_cooldown: int = DEFAULT_COOLDOWN,
        variant_name: str | None = None,
        policy_name: str | None = None,
        disable_scale_in: bool = False,
    ) -> dict[str, Any]:
        """Scale a variant between bounds to keep a metric near a target (target tracking).

        Registers the variant as a scalable target of Application Auto Scaling and puts
        one target-tracking policy on it, as ``aws application-autoscaling
        register-scalable-target`` and ``put-scaling-policy`` do. Everything is checked
        against the endpoint first, so a bad argument changes nothing. Calling it again
        changes the bounds and replaces the policy of the same name.

        Args:
            min_capacity: Fewest instances (0 lets an idle variant scale to zero).
            max_capacity: Most instances (up to 20).
            target_value: The metric value to keep (for the default metric: invocations
                per instance per minute).
            metric: ``SageMakerVariantInvocationsPerInstance`` (default), or a variant
                metric: ``ModelLatency``, ``CPUUtilization``, ``MemoryUtilization``, ...
            scale_in_cooldown: Seconds after a scale-in before another (default: 300).
            scale_out_cooldown: Seconds after a scale-out before another (default: 300).
            variant_name: The production variant (default: the endpoint's only one).
            policy_name: The policy's name (default: ``target-tracking-<metric>``).
            disable_scale_in: Only ever add instances.

        Returns:
            ``{"ResourceId", "MinCapacity", "MaxCapacity", "PolicyName", "PolicyARN"}``.

        Raises:
            ValidationError: An argument is out of range, or the endpoint, variant or
                metric does not fit (the message names which).
        """
        variant = variant_name or self._only_variant()
        try:
            spec = ScalingSpec(
                variant=variant,
                min_capacity=min_capacity,
                max_capacity=max_capacity,
                policies=[
                    PolicySpec(
                        name=policy_name or f"target-tracking-{metric}",
                        target_value=target_value,
                        metric=metric,
                        scale_in_cooldown=scale_in_cooldown,
                        scale_out_cooldown=scale_out_cooldown,
                        disable_scale_in=disable_scale_in,
                    )
                ],
            )
        except pydantic.ValidationError as error:
            raise _arguments_error(error, "enable_autoscaling") from None
        self.sagemaker_session.api.post(
            f"{self._endpoint_path()}/scaling/check", spec.model_dump(mode="json")
        )
        policy = spec.policies[0]
        client = self._scaling_client()
        _aws_call(client.register_scalable_target, **spec.register_request(self.endpoint_name))
        put = _aws_call(
            client.put_scaling_policy, **policy.put_request(self.endpoint_name, variant)
        )
        return {
            "ResourceId": spec.resource_id(self.endpoint_name),
            "MinCapacity": spec.min_capacity,
            "MaxCapacity": spec.max_capacity,
            "PolicyName": policy.name,
            "PolicyARN": put["PolicyARN"],
        }

    def disable_autoscaling(self, variant_name: str | None = None) -> list[str]:
        """Stop autoscaling the endpoint's variants: deregister them (their policies go too).

        The instance counts stay where autoscaling left them.

        Args:
            variant_name: Only this variant (default: every variant of the endpoint).

        Returns:
            The resource IDs deregistered (empty when none was registered).
        """
        client = self._scaling_client()
        if variant_name is not None:
            variants = [variant_name]
        else:
            variants = [v["variant_name"] for v in self.describe()["production_variants"]]
        keys = [target_key(self.endpoint_name, v) for v in variants]
        registered = {
            t["ResourceId"]
            for t in _aws_call(
                client.describe_scalable_targets,
                ServiceNamespace=NAMESPACE,
                ResourceIds=[k["ResourceId"] for k in keys],
            )["ScalableTargets"]
        }
        done: list[str] = []
        for key in keys:
            if key["ResourceId"] in registered:
                _aws_call(client.deregister_scalable_target, **key)
                done.append(key["ResourceId"])
        return done

    def _only_variant(self) -> str:
        variants = [v["variant_name"] for v in self.describe()["production_variants"]]
        if len(variants) != 1:
            raise ValidationError(
                f"Endpoint {self.endpoint_name} has {len(variants)} production variants "
                f"({', '.join(variants) or 'none running'}); give variant_name.",
            )
        return str(variants[0])

    def _scaling_client(self) -> Any:
        """A boto3 ``application-autoscaling`` client, signed like the session."""
        if self._autoscaling is None:
            import boto3
            from botocore.config import Config

            api = self.sagemaker_session.api
            creds = api.credentials
            self._autoscaling = boto3.client(
                "application-autoscaling",
                endpoint_url=api.endpoint_url,
                region_name=api.region,
                aws_access_key_id=creds.access_key,
                aws_secret_access_key=creds.secret_key,
                aws_session_token=creds.token,
                config=Config(
                    connect_timeout=5, read_timeout=60, retries={"total_max_attempts": 1}
                ),
                verify=api.ca_bundle,
            )
        return self._autoscaling

    def __repr__(self) -> str:
        return (
            f"Predictor(endpoint_name={self.endpoint_name!r}, serializer={self.serializer!r}, "
            f"deserializer={self.deserializer!r})"
        )


# deploy ------------------------------------------------------------------------------------


def deploy_training_job(
    session: Session | None,
    training_job_name: str,
    *,
    initial_instance_count: int,
    instance_type: str,
    endpoint_name: str | None = None,
    serializer: Serializer | None = None,
    deserializer: Deserializer | None = None,
    wait: bool = True,
    model_name: str | None = None,
    wait_timeout_seconds: float = DEPLOY_WAIT_SECONDS,
) -> Predictor:
    """Serve a completed training job's model on a new endpoint and return its predictor.

    Makes what ``kennel deploy JOB --name ENDPOINT`` makes: a model from the job (kept if
    one of that name was made from the same job already), an endpoint config with one
    variant (``AllTraffic``) and the endpoint.

    The predictor's defaults depend on the model: for the built-in trainer's image
    classifiers they are ``IdentitySerializer("application/x-image")`` and
    ``JSONDeserializer()``, so ``predictor.predict(image_bytes)`` (JPEG, PNG, ...) returns
    the scores ``[[score, ...]]``; for other models SageMaker's defaults,
    ``IdentitySerializer()`` and ``BytesDeserializer()``.

    Args:
        session: Where the calls go (default: ``Session()``).
        training_job_name: A Completed training job.
        initial_instance_count: Instances to start (1-20).
        instance_type: e.g. ``ml.m5.large`` (see ``kennel instance-types``).
        endpoint_name: The endpoint's name (default: the training job's, as in SageMaker).
        serializer: The predictor's serializer (default: see above).
        deserializer: The predictor's deserializer (default: see above).
        wait: Wait until the endpoint is InService (default: True).
        model_name: The model's name (default: the training job's).
        wait_timeout_seconds: How long to wait for InService before raising.

    Returns:
        A predictor for the endpoint.

    Raises:
        ConflictError: An endpoint of that name exists already.
        ValidationError: The training job does not exist or has no model.
        UnexpectedStatusError: The endpoint failed to start (the message says why).
        ServiceUnavailableError: It was not InService within ``wait_timeout_seconds``.
    """
    session = session or Session()
    api = session.api
    endpoint = endpoint_name or training_job_name
    try:
        api.get(f"{ENDPOINTS}/{path_segment(endpoint)}")
    except NotFoundError:
        pass
    else:
        raise ConflictError(
            f"Endpoint {endpoint} exists already.",
            hint="Give another endpoint_name, or delete it first: "
            f"Predictor({endpoint!r}).delete_endpoint().",
        )
    model = _model_from_job(session, training_job_name, model_name or training_job_name)
    config = _config_name(endpoint)
    variant = {
        "model_name": model["name"],
        "instance_type": instance_type,
        "initial_instance_count": initial_instance_count,
    }
    api.post(CONFIGS, {"name": config, "variants": [variant]})
    api.post(ENDPOINTS, {"name": endpoint, "config_name": config})
    builtin = model.get("kind") == BUILTIN_MODEL_KIND
    predictor = Predictor(
        endpoint,
        sagemaker_session=session,
        serializer=_default(serializer, IdentitySerializer(IMAGE if builtin else OCTET_STREAM)),
        deserializer=_default(deserializer, JSONDeserializer() if builtin else BytesDeserializer()),
    )
    predictor._endpoint_config_name = config
    predictor._model_names = [model["name"]]
    if wait:
        wait_for_endpoint(session, endpoint, timeout_seconds=wait_timeout_seconds)
    return predictor


def _model_from_job(session: Session, job: str, name: str) -> dict[str, Any]:
    api = session.api
    try:
        model: dict[str, Any] = api.get(f"{MODELS}/{path_segment(name)}")
    except NotFoundError:
        created: dict[str, Any] = api.post(MODELS, {"name": name, "training_job": job})
        return created
    if model.get("source") != f"training-job/{job}":
        raise ConflictError(
            f"Model {name} exists already and was not made from training job {job} "
            f"(its source: {model.get('source')}).",
            hint="Give another model_name.",
        )
    return model


def _config_name(endpoint: str) -> str:
    """A new config name per deployment: the endpoint's, stamped to the millisecond."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    return f"{endpoint[:40]}-{stamp}"


def wait_for_endpoint(
    session: Session,
    endpoint_name: str,
    *,
    timeout_seconds: float = DEPLOY_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait until the endpoint is no longer busy; its description when InService.

    Args:
        session: Where the calls go.
        endpoint_name: The endpoint.
        timeout_seconds: How long to wait.
        sleep: Waits between polls (injectable for tests).
        clock: Seconds, monotonic (injectable for tests).

    Returns:
        The endpoint's description.

    Raises:
        UnexpectedStatusError: It ended Failed (the message has the failure reason).
        ServiceUnavailableError: It was still busy after ``timeout_seconds``.
    """
    path = f"{ENDPOINTS}/{path_segment(endpoint_name)}"
    deadline = clock() + timeout_seconds
    info: dict[str, Any] = session.api.get(path)
    while info["status"] in BUSY:
        if clock() >= deadline:
            raise ServiceUnavailableError(
                f"Endpoint {endpoint_name} is still {info['status']} after {timeout_seconds:g} s.",
                hint=f"See why: kennel endpoints describe {endpoint_name}",
            )
        sleep(POLL_SECONDS)
        info = session.api.get(path)
    if info["status"] != "InService":
        reason = info.get("failure_reason") or "no reason recorded"
        raise UnexpectedStatusError(
            f"Error hosting endpoint {endpoint_name}: {info['status']}. Reason: {reason}",
            allowed_statuses=("InService",),
            actual_status=str(info["status"]),
            hint=f"kennel endpoints describe {endpoint_name}; the server log has the model "
            "server's output.",
        )
    return info


# Helpers -----------------------------------------------------------------------------------


def _default(given: Any, default: Any) -> Any:
    return default if given is None else given


def _refuse(argument: str, value: Any, why: str) -> None:
    if value is not None:
        raise ValidationError(f"{argument} is not supported: {why}.", hint=f"Drop {argument}.")


def _check_codec(argument: str, codec: Any, attribute: str, method: str) -> None:
    if not hasattr(codec, attribute) or not callable(getattr(codec, method, None)):
        raise ValidationError(
            f"{argument} must have {attribute} and {method}() (a kennel or SageMaker "
            f"{argument}), got {codec!r}."
        )


def _body(serialized: Any, serializer: Any) -> bytes:
    if isinstance(serialized, str):
        return serialized.encode("utf-8")
    if isinstance(serialized, bytes | bytearray | memoryview):
        return bytes(serialized)
    raise ValidationError(
        f"The serializer {serializer!r} made a {type(serialized).__name__}; a request body "
        "is bytes or a str.",
        hint="Give data the serializer takes (IdentitySerializer sends bytes as they are).",
    )


def _arguments_error(error: pydantic.ValidationError, method: str) -> ValidationError:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"])
        name = SCALING_FIELDS.get(where, where) or "arguments"
        problems.append(f"{name}: {item['msg']}")
    return ValidationError(f"{method}: {'; '.join(problems)}.")


def _aws_call(method: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """A boto3 call whose errors come out as kennel's (same code, message, status)."""
    try:
        return method(**kwargs)
    except botocore.exceptions.ClientError as exc:
        response: dict[str, Any] = dict(exc.response)
        error = response.get("Error") or {}
        status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 500)
        body = {"__type": error.get("Code") or "InternalFailure", "message": error.get("Message")}
        raise error_from_response(status, body) from exc
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.HTTPClientError,
    ) as exc:
        raise ServiceUnavailableError(f"The autoscaling request failed: {exc}") from exc
