"""The transport rule (plain HTTP on loopback only), TLS settings and the client's trust."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from tests._certs import self_signed, signed_by

from kennel._client import KennelClient, tls_verify
from kennel._errors import ValidationError
from kennel._settings import Settings, load_settings
from kennel.api._tls import (
    certificate_names,
    check_transport,
    warn_about_names,
    with_client_trust,
)
from kennel.iam._bootstrap import write_aws_config
from kennel.notebooks._workspace import Connection, kennel_variables


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "KENNEL_HOST",
        "KENNEL_PORT",
        "KENNEL_ENDPOINT_URL",
        "KENNEL_TLS_CERT_FILE",
        "KENNEL_TLS_KEY_FILE",
        "KENNEL_ALLOW_PLAINTEXT",
        "KENNEL_CA_BUNDLE",
        "AWS_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KENNEL_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_plain_http_on_loopback_is_fine(host: str) -> None:
    settings = load_settings(host=host)
    assert settings.binds_loopback
    check_transport(settings)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "kennel.example.com"])
def test_plain_http_elsewhere_is_refused_with_both_ways_out(host: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_transport(load_settings(host=host))
    assert f"Refusing to serve plain HTTP on {host}" in refused.value.message
    hint = refused.value.hint or ""
    for way_out in ("--tls-cert-file", "KENNEL_TLS_CERT_FILE", "--allow-plaintext"):
        assert way_out in hint
    assert "KENNEL_ALLOW_PLAINTEXT=1" in hint


def test_the_opt_out_comes_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KENNEL_ALLOW_PLAINTEXT", "1")
    monkeypatch.setenv("KENNEL_HOST", "0.0.0.0")
    settings = load_settings()
    assert settings.allow_plaintext
    check_transport(settings)
    assert settings.resolved_endpoint_url.startswith("http://127.0.0.1:")


def test_tls_makes_the_endpoint_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = self_signed(tmp_path / "tls")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        host="0.0.0.0", port=9443, tls_cert_file="tls/server.pem", tls_key_file="tls/server.key"
    )
    assert settings.tls_cert_file == issued.cert  # made absolute: a child or a profile reads it
    assert settings.resolved_endpoint_url == "https://127.0.0.1:9443"
    check_transport(settings)
    assert load_settings(host="::", port=1).resolved_endpoint_url == "http://[::1]:1"


def test_broken_tls_files_are_refused_in_words(tmp_path: Path) -> None:
    issued = self_signed(tmp_path / "a")
    other = self_signed(tmp_path / "b")
    with pytest.raises(ValidationError, match="no certificate"):
        check_transport(load_settings(tls_key_file=issued.key))
    with pytest.raises(ValidationError, match="does not exist"):
        check_transport(load_settings(tls_cert_file=tmp_path / "missing.pem"))
    with pytest.raises(ValidationError, match="Cannot load the TLS certificate"):
        check_transport(load_settings(tls_cert_file=issued.cert, tls_key_file=other.key))
    with pytest.raises(ValidationError, match="Cannot load the TLS certificate"):
        check_transport(load_settings(tls_cert_file=issued.cert))  # the key is not in it
    combined = tmp_path / "combined.pem"
    combined.write_bytes(issued.cert.read_bytes() + issued.key.read_bytes())
    check_transport(load_settings(tls_cert_file=combined))


def test_a_self_signed_certificate_is_its_own_ca_bundle(tmp_path: Path) -> None:
    ca = self_signed(tmp_path / "ca", stem="ca")
    own = self_signed(tmp_path / "own")
    leaf = signed_by(ca, tmp_path / "leaf", ("127.0.0.1",))
    assert with_client_trust(load_settings()).ca_bundle is None  # no TLS: nothing to trust
    trusted = with_client_trust(load_settings(tls_cert_file=own.cert, tls_key_file=own.key))
    assert trusted.ca_bundle == own.cert
    by_ca = load_settings(tls_cert_file=leaf.cert, tls_key_file=leaf.key)
    assert with_client_trust(by_ca).ca_bundle is None  # a leaf is no trust anchor
    given = load_settings(tls_cert_file=own.cert, tls_key_file=own.key, ca_bundle=ca.cert)
    assert with_client_trust(given).ca_bundle == ca.cert  # an explicit bundle wins


def test_a_certificate_that_does_not_name_the_endpoint_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    named = self_signed(tmp_path / "named", ("kennel.example.com", "*.dogs.example", "::1"))
    assert certificate_names(named.certificate) == ["kennel.example.com", "*.dogs.example", "::1"]
    for endpoint, warned in (
        ("https://kennel.example.com:7733", False),
        ("https://KENNEL.example.com:7733", False),
        ("https://a.dogs.example:7733", False),
        ("https://a.b.dogs.example:7733", True),
        ("https://[::1]:7733", False),
        ("https://127.0.0.1:7733", True),
    ):
        caplog.clear()
        warn_about_names(load_settings(tls_cert_file=named.cert, endpoint_url=endpoint))
        assert bool(caplog.records) == warned, endpoint
    warn_about_names(load_settings(tls_cert_file=named.cert, host="0.0.0.0"))
    assert "KENNEL_ENDPOINT_URL" in caplog.text


def test_the_profile_names_the_ca_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "aws" / "config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    own = self_signed(tmp_path / "tls")
    write_aws_config(with_client_trust(load_settings(port=9443, tls_cert_file=own.cert)))
    parser = configparser.RawConfigParser()
    parser.read(config)
    section = parser["profile kennel"]
    assert section["endpoint_url"] == "https://127.0.0.1:9443"
    assert section["ca_bundle"] == str(own.cert)
    write_aws_config(load_settings(port=9443))  # TLS off again: the bundle goes with it
    parser = configparser.RawConfigParser()
    parser.read(config)
    assert "ca_bundle" not in parser["profile kennel"]


def test_clients_find_the_bundle_where_botocore_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = self_signed(tmp_path / "tls")
    config, creds = tmp_path / "aws" / "config", tmp_path / "aws" / "credentials"
    config.parent.mkdir()
    config.write_text(
        f"[profile kennel]\nendpoint_url = https://127.0.0.1:9443\nca_bundle = {own.cert}\n"
    )
    creds.write_text("[kennel]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    with KennelClient.from_settings(Settings()) as client:
        assert client.ca_bundle == str(own.cert)  # the profile's
        assert client.endpoint_url == "https://127.0.0.1:9443"
    other = tmp_path / "other.pem"
    other.write_bytes(own.cert.read_bytes())
    monkeypatch.setenv("AWS_CA_BUNDLE", str(other))
    with KennelClient.from_settings(Settings()) as client:
        assert client.ca_bundle == str(other)  # the environment's, as botocore does
    monkeypatch.setenv("KENNEL_CA_BUNDLE", str(own.cert))
    with KennelClient.from_settings(Settings()) as client:
        assert client.ca_bundle == str(own.cert)  # kennel's own setting first
    with pytest.raises(ValidationError, match="Cannot read the CA bundle"):
        tls_verify(str(tmp_path / "missing.pem"))


def test_notebook_kernels_get_the_ca_bundle(tmp_path: Path) -> None:
    files = (tmp_path / "credentials", tmp_path / "config")
    plain = Connection("http://127.0.0.1:7733", "us-east-1", "kennel", *files)
    assert "AWS_CA_BUNDLE" not in kennel_variables(plain, "nb")
    tls = Connection("https://127.0.0.1:7733", "us-east-1", "kennel", *files, ca_bundle="/ca.pem")
    variables = kennel_variables(tls, "nb")
    assert variables["AWS_CA_BUNDLE"] == variables["KENNEL_CA_BUNDLE"] == "/ca.pem"
