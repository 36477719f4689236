"""How much the server pays to verify a SigV4 request, against what the client pays to sign it.

The baseline is botocore signing the same request (body hashing included); the candidate
is kennel's verification of it (body hashing included, as the gateway hashes while it
reads). Interleaved: each candidate batch is paired with a baseline probe right before
and right after, and its ratio is taken to the mean of the two.

    RESULT sigv4_verify_vs_botocore_sign <ratio> goal<=1.5
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kennel.iam.sigv4 import Credential, SignedRequest, verify

KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
URL = "http://127.0.0.1:7733/endpoints/dog-breeds/invocations"
BODY = bytes(range(256)) * 400  # ~100 KB, an image-sized payload
ROUNDS, BATCH = 15, 200


def new_request() -> AWSRequest:
    return AWSRequest(
        method="POST",
        url=URL,
        data=BODY,
        headers={"Content-Type": "application/x-image", "Accept": "application/json"},
    )


def sign() -> AWSRequest:
    request = new_request()
    SigV4Auth(Credentials(KEY, SECRET), "sagemaker", "us-east-1").add_auth(request)
    return request


def make_verifier() -> Callable[[], None]:
    signed = sign()
    parts = urlsplit(signed.url)
    headers = [(k, v) for k, v in signed.headers.items()]
    headers.append(("host", parts.netloc))
    credential = Credential(KEY, SECRET, principal="arn:aws:iam::123456789012:user/admin")

    def run() -> None:
        request = SignedRequest(
            method="POST",
            raw_path=parts.path,
            raw_query=parts.query,
            headers=headers,
            payload_sha256=hashlib.sha256(BODY).hexdigest(),
        )
        verify(
            request,
            lookup=lambda _k: credential,
            region="us-east-1",
            services={"sagemaker"},
            now=datetime.now(UTC),
        )

    run()  # fails loudly here if the pair does not agree
    return run


def per_call_us(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(BATCH):
        fn()
    return (time.perf_counter() - start) / BATCH * 1e6


def main() -> None:
    verifier = make_verifier()
    for _ in range(3):  # warm-up
        per_call_us(sign)
        per_call_us(verifier)
    ratios, signs, verifies = [], [], []
    for _ in range(ROUNDS):
        before = per_call_us(sign)
        candidate = per_call_us(verifier)
        after = per_call_us(sign)
        ratios.append(candidate / ((before + after) / 2))
        signs.extend([before, after])
        verifies.append(candidate)
    print(f"{'what':<32}{'median µs/request':>20}")
    print(f"{'botocore SigV4Auth.add_auth':<32}{statistics.median(signs):>20.1f}")
    print(f"{'kennel sigv4.verify':<32}{statistics.median(verifies):>20.1f}")
    print(
        f"body {len(BODY)} bytes, {ROUNDS} rounds x {BATCH} calls, ratio per round to the "
        "mean of the probes before and after"
    )
    print(f"RESULT sigv4_verify_vs_botocore_sign {statistics.median(ratios):.2f} goal<=1.5")


if __name__ == "__main__":
    main()
