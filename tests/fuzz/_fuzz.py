"""What the fuzz tests share: bounded, reproducible hypothesis settings, hostile inputs
and corpora to mutate, and requests signed like boto3 signs them.

Every property here has the same shape: whatever the input, the parser either returns
or raises the error it documents (a KennelError with a 4xx status, or the module's own
error class), never anything else, and it returns quickly.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from tests._server import SHARED

from kennel._errors import KennelError

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

CONFORMANCE = SHARED / "conformance"
SIGV4_SUITE = CONFORMANCE / "sigv4-testsuite"
POLICY_CORPUS = CONFORMANCE / "iam-policy-validation" / "moto_policy_validation.json"
REGION = "us-east-1"

QUICK_SECONDS = 2.0
"""How much CPU one parse of one hostile input may take (generous)."""


def fuzz_settings(max_examples: int) -> settings:
    """Reproducible (derandomized: the same examples every run, in CI too) and bounded."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


@contextmanager
def quick(what: str, seconds: float = QUICK_SECONDS) -> Iterator[None]:
    """Fail if the block uses more than ``seconds`` of this process's CPU: a blow-up
    (backtracking, a bomb) shows up as CPU first. CPU, not wall-clock time, so that a
    machine busy with other work (CI's two cores) cannot fail it; a block that hangs
    without spending CPU is ended by pytest's timeout."""
    started = time.process_time()
    yield
    used = time.process_time() - started
    assert used < seconds, f"{what} used {used:.2f} s of CPU (limit {seconds} s)"


def outcome(call: Callable[[], T], *allowed: type[E]) -> T | E:
    """``call()``'s result, or the exception it raised if that is one of ``allowed``.

    Any other exception propagates, which is the failure the fuzz tests look for.
    """
    try:
        return call()
    except allowed as error:
        return error


def assert_client_error(error: BaseException) -> None:
    """A KennelError a caller sees as a 4xx (its fault), never as a 500."""
    if isinstance(error, KennelError):
        assert 400 <= error.status < 500, f"{type(error).__name__} is a {error.status}: {error}"
        assert error.message, f"{type(error).__name__} without a message"


# --- hostile inputs ---------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=16,
)


def _nested(depth: int, opener: str, closer: str) -> str:
    return opener * depth + closer * depth


# Texts that break naive JSON handling: nesting past the interpreter's recursion limit,
# numbers past int()'s digit limit or a float's range, lone surrogates, NaN.
tricky_json_texts = st.one_of(
    st.integers(900, 20_000).map(lambda n: _nested(n, "[", "]")),
    st.integers(900, 20_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(900, 5_000).map(lambda n: '{"image":' * n + '"x"' + "}" * n),
    st.integers(4_000, 20_000).map(lambda n: "1" * n),
    st.sampled_from(
        [
            "1e999999",
            "-1e999999",
            "NaN",
            "Infinity",
            '"\\ud800"',
            '{"\\udfff": 1}',
            '{"a": 1, "a": 2}',
            "[" * 50,
            "",
            " ",
            "\ufeff{}",
            "null",
            "[]",
            '""',
        ]
    ),
)
json_texts = st.one_of(json_values.map(json.dumps), tricky_json_texts, st.text(max_size=200))
json_bodies = st.one_of(
    json_texts.map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=300)
)


header_text = st.text(
    alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=300
).map(str.strip)
"""What an HTTP/1.1 header value can carry: latin-1, no control characters."""


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """One of ``seeds`` with a few bytes flipped, inserted, deleted, repeated or cut off."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "insert", "delete", "repeat", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if operation == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif operation == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 32))] * draw(st.integers(1, 8))
        else:
            del data[at:]
    return bytes(data)


def mutated_text(seeds: Sequence[str]) -> st.SearchStrategy[str]:
    """:func:`mutated`, read back as text (invalid UTF-8 replaced)."""
    raw = [seed.encode() for seed in seeds]
    return mutated(raw).map(lambda data: data.decode("utf-8", "replace"))


def containers(node: Any) -> list[Any]:
    """Every non-empty dict and list in a JSON-like value, the value itself first."""
    found = [node] if isinstance(node, dict | list) and node else []
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found += containers(child)
    return found


def policy_corpus() -> list[Any]:
    """The conformance corpus' documents (valid and invalid), or [] without the corpus."""
    if not POLICY_CORPUS.is_file():
        return []
    return [case["document"] for case in json.loads(POLICY_CORPUS.read_text())]


# --- signed requests --------------------------------------------------------------------------


def sign(
    credentials: Credentials,
    method: str,
    url: str,
    body: bytes,
    *,
    service: str,
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers botocore adds to sign ``method url`` with ``body`` for ``service``."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    SigV4Auth(credentials, service, REGION).add_auth(request)
    return {key: value for key, value in request.headers.items() if key.lower() != "host"}


class SignedClient:
    """Raw requests signed with the bootstrap admin's key: any body, any header."""

    def __init__(self, base_url: str, credentials: Credentials, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.credentials = credentials
        self.http = httpx.Client(timeout=timeout)

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        service: str,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        url = self.base_url + path
        signed = sign(self.credentials, method, url, body, service=service, headers=headers)
        # As bytes: httpx would encode a str as ASCII, and the server reads latin-1.
        raw = {key.encode(): value.encode("latin-1") for key, value in signed.items()}
        return self.http.request(method, url, content=body, headers=raw)

    def close(self) -> None:
        self.http.close()


def server_log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.is_file() else "(no log)"
