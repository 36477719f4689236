"""Predictor without a server: the InvokeEndpoint request it builds, what it refuses, how
it reads answers and errors, and how deploy waits. A fake API records the calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kennel import UnexpectedStatusError
from kennel._errors import KennelError, ServiceUnavailableError, ValidationError
from kennel.sdk._predictor import Predictor, wait_for_endpoint
from kennel.sdk._serializers import IdentitySerializer, JSONDeserializer, JSONSerializer


class FakeApi:
    def __init__(self, answer: Callable[..., httpx.Response] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer = answer or (
            lambda **_: httpx.Response(
                200, content=b"[[0.1, 0.9]]", headers={"content-type": "application/json"}
            )
        )
        self.gets: list[dict[str, Any]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.requests.append({"method": method, "path": path, **kwargs})
        return self.answer(**kwargs)

    def get(self, path: str, **_: Any) -> Any:
        return self.gets.pop(0)


class FakeSession:
    def __init__(self, api: FakeApi) -> None:
        self.api = api


def predictor(api: FakeApi | None = None, **kwargs: Any) -> tuple[Predictor, FakeApi]:
    api = api or FakeApi()
    made = Predictor("dogs", sagemaker_session=FakeSession(api), **kwargs)  # type: ignore[arg-type]
    return made, api


def test_sagemakers_defaults_send_bytes_and_return_bytes() -> None:
    made, api = predictor()
    assert made.predict(b"\xff\xd8") == b"[[0.1, 0.9]]"
    sent = api.requests[0]
    assert sent["method"] == "POST" and sent["path"] == "/endpoints/dogs/invocations"
    assert sent["data"] == b"\xff\xd8"
    assert sent["headers"] == {"Content-Type": "application/octet-stream", "Accept": "*/*"}


def test_serializer_deserializer_and_invoke_arguments_make_the_request() -> None:
    made, api = predictor(serializer=JSONSerializer(), deserializer=JSONDeserializer())
    answer = made.predict(
        {"image": "aGk="},
        initial_args={"Accept": "application/json, */*", "CustomAttributes": "top_k=1"},
        target_variant="Blue",
        inference_id="req-1",
        custom_attributes="top_k=3",
    )
    assert answer == [[0.1, 0.9]]
    sent = api.requests[0]
    assert json.loads(sent["data"]) == {"image": "aGk="}
    assert sent["headers"] == {
        "Content-Type": "application/json",
        "Accept": "application/json, */*",  # initial_args win over the deserializer
        "X-Amzn-SageMaker-Custom-Attributes": "top_k=3",  # the argument over initial_args
        "X-Amzn-SageMaker-Target-Variant": "Blue",
        "X-Amzn-SageMaker-Inference-Id": "req-1",
    }
    assert made.accept == ("application/json",)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda p: p.predict(b"x", target_model="m.tar.gz"), "target_model"),
        (lambda p: p.predict(b"x", component_name="c"), "component_name"),
        (lambda p: p.predict(b"x", initial_args={"TargetModel": "m"}), "TargetModel"),
        (lambda p: p.predict(b"x", initial_args={"EndpointName": "cats"}), "EndpointName"),
        (lambda p: p.predict(b"x", initial_args={"Body": b"y"}), "Body"),
        (lambda p: p.predict(object()), "a request body is bytes or a str"),
    ],
)
def test_what_cannot_be_honoured_is_refused_before_sending(
    call: Callable[[Predictor], Any], named: str
) -> None:
    made, api = predictor()
    with pytest.raises(ValidationError, match=named):
        call(made)
    assert api.requests == []


def test_constructor_refusals_name_the_argument() -> None:
    with pytest.raises(ValidationError, match="component_name"):
        predictor(component_name="c")
    with pytest.raises(ValidationError, match="serializer"):
        predictor(serializer="application/json")
    with pytest.raises(ValidationError, match="endpoint_name"):
        Predictor("", sagemaker_session=FakeSession(FakeApi()))  # type: ignore[arg-type]


def test_a_model_error_gets_a_hint_naming_the_types_sent() -> None:
    def refuse(**_: Any) -> httpx.Response:
        raise KennelError(
            'Received client error (415) from primary with message "unsupported content type"',
            status=424,
            aws_code="ModelError",
        )

    made, _ = predictor(FakeApi(refuse), serializer=IdentitySerializer("text/plain"))
    with pytest.raises(KennelError, match="unsupported content type") as caught:
        made.predict("hello")
    assert caught.value.hint is not None
    assert "Content-Type text/plain" in caught.value.hint and "dogs" in caught.value.hint


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waiting_ends_in_service_or_says_why_not() -> None:
    clock = Clock()
    api = FakeApi()
    api.gets = [{"status": "Creating"}, {"status": "InService"}]
    session: Any = FakeSession(api)
    info = wait_for_endpoint(session, "dogs", sleep=clock.sleep, clock=clock)
    assert info["status"] == "InService" and clock.now == 0.5
    api.gets = [{"status": "Failed", "failure_reason": "model_fn raised KeyError"}]
    with pytest.raises(UnexpectedStatusError, match="model_fn raised KeyError") as caught:
        wait_for_endpoint(session, "dogs", sleep=clock.sleep, clock=clock)
    assert caught.value.actual_status == "Failed"
    api.gets = [{"status": "Creating"}] * 5
    with pytest.raises(ServiceUnavailableError, match="still Creating after 1 s"):
        wait_for_endpoint(session, "dogs", timeout_seconds=1, sleep=clock.sleep, clock=clock)
