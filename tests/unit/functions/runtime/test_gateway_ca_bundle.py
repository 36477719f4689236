"""A function environment trusts an https gateway through the PEM its spec carries."""

from __future__ import annotations

from pathlib import Path

from kennel.functions._environment import build_environ, ensure_ca_bundle

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _spec() -> dict[str, object]:
    return {
        "function_name": "f",
        "handler": "app.handler",
        "memory_mb": 128,
        "gateway_url": "https://127.0.0.1:7733",
    }


def test_the_pem_is_written_once_per_node_and_becomes_aws_ca_bundle(tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = ensure_ca_bundle(PEM, root)
    assert path is not None
    assert Path(path).read_text() == PEM
    assert Path(path).parent == root / "ca"
    assert ensure_ca_bundle(PEM, root) == path  # content-addressed: found, not rewritten
    assert [p.name for p in (root / "ca").iterdir()] == [Path(path).name]
    env = build_environ(_spec(), str(root / "code" / "x"), base={}, ca_bundle=path)
    assert env["AWS_CA_BUNDLE"] == path
    assert env["AWS_ENDPOINT_URL"] == "https://127.0.0.1:7733"


def test_no_pem_no_bundle(tmp_path: Path) -> None:
    assert ensure_ca_bundle(None, tmp_path) is None
    assert ensure_ca_bundle("", tmp_path) is None
    spec = {**_spec(), "environment": {"AWS_CA_BUNDLE": "/users/own.pem"}}
    env = build_environ(spec, str(tmp_path / "code"), base={})
    assert env["AWS_CA_BUNDLE"] == "/users/own.pem"  # the function's own, untouched
    assert "AWS_CA_BUNDLE" not in build_environ(_spec(), str(tmp_path / "code"), base={})
