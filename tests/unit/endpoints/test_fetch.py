"""The model server's URL fetcher: SSRF guards, limits, redirects, and the image guard.

A real HTTP server on 127.0.0.1 (free port) plays the image host; the refusals of literal
non-public addresses must happen before any connection, which the ``no_connect`` fixture
enforces by replacing the transport.
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import random
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from kennel.endpoints import _fetch
from kennel.endpoints._errors import status_for
from kennel.endpoints._fetch import (
    FetchError,
    FetchPolicy,
    ImageDecodeError,
    fetch_url,
    open_image_checked,
)

pytestmark = pytest.mark.timeout(30)

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1"))
ALLOW_LOOPBACK = FetchPolicy(allow_networks=LOOPBACK, timeout_seconds=2.0)
STREAM_TOTAL = 32 * 2**20
"""How much /endless would send if nobody stopped reading."""


def _jpeg_noise() -> bytes:
    """A JPEG whose entropy-coded data is long enough to cut in the middle."""
    noise = random.Random(0).randbytes(128 * 128 * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (128, 128), noise).save(out, format="JPEG")
    return out.getvalue()


def _jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(out, format="JPEG", quality=90)
    return out.getvalue()


JPEG = _jpeg()
NOISE_JPEG = _jpeg_noise()


@dataclass
class Observed:
    """What the test server saw, for the tests to check."""

    hosts: list[str] = field(default_factory=list)
    endless_sent: list[int] = field(default_factory=list)
    endless_done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    observed: Observed  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.observed.hosts.append(self.headers.get("Host", ""))
        route: Callable[[dict[str, str]], None] | None = getattr(
            self, "route_" + parts.path.strip("/").split("/")[0].replace("-", "_"), None
        )
        if route is None:
            self.send_error(404)
            return
        route(query)

    def _answer(self, body: bytes, content_type: str = "image/jpeg", status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_image(self, query: dict[str, str]) -> None:
        self._answer(JPEG, "image/jpeg; charset=binary")

    def route_host(self, query: dict[str, str]) -> None:
        self._answer(self.headers.get("Host", "").encode(), "text/plain")

    def route_redirect(self, query: dict[str, str]) -> None:
        self.send_response(int(query.get("status", "302")))
        self.send_header("Location", query["to"])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_chain(self, query: dict[str, str]) -> None:
        left = int(query["n"])
        if left == 0:
            self.route_image(query)
            return
        self.send_response(301)
        self.send_header("Location", f"/chain?n={left - 1}")  # relative, as servers do
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_declared_big(self, query: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(10**9))
        self.end_headers()
        self.wfile.write(b"x" * 1024)

    def route_endless(self, query: dict[str, str]) -> None:
        """A body without Content-Length that goes on (up to STREAM_TOTAL) until cut off."""
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < STREAM_TOTAL and not self.observed.stop.is_set():
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the client hung up, which is what the test wants
        finally:
            self.observed.endless_sent.append(sent)
            self.observed.endless_done.set()

    def route_trickle(self, query: dict[str, str]) -> None:
        """1000 bytes, one every 20 ms: 20 s in all, far past any test deadline."""
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                if self.observed.stop.wait(0.02):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            return

    def route_stall(self, query: dict[str, str]) -> None:
        """Never answers (until the server stops)."""
        self.observed.stop.wait(10)

    def route_gzip(self, query: dict[str, str]) -> None:
        body = zlib.compress(b"\0" * 100_000)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Server:
    port: int
    observed: Observed

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    observed = Observed()
    handler = type("BoundHandler", (Handler,), {"observed": observed})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Server(port=httpd.server_address[1], observed=observed)
    finally:
        observed.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _self_signed(name: str) -> tuple[bytes, bytes]:
    """A certificate for ``name`` (PEM) and its key (PEM), valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass
class TlsServer:
    port: int
    cert_pem: bytes
    server_names: list[str | None]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """An https server for ``images.test`` on 127.0.0.1 that records the SNI it is sent."""
    cert_pem, key_pem = _self_signed("images.test")
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(key_pem)
    server_names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    handler = type("TlsHandler", (Handler,), {"observed": Observed()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield TlsServer(httpd.server_address[1], cert_pem, server_names)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the fetcher opens any connection."""

    def refuse() -> None:
        raise AssertionError("the fetcher connected; the refusal must come first")

    monkeypatch.setattr(_fetch, "_transport", refuse)


# Fetching --------------------------------------------------------------------------------


def test_fetches_from_allow_listed_loopback(server: Server) -> None:
    body, content_type = fetch_url(server.url("/image"), ALLOW_LOOPBACK)
    assert body == JPEG
    assert content_type == "image/jpeg"
    assert Image.open(io.BytesIO(body)).size == (64, 48)


def test_loopback_is_refused_without_allow_list(server: Server) -> None:
    url = server.url("/image")
    with pytest.raises(FetchError) as caught:
        fetch_url(url, FetchPolicy())
    message = str(caught.value)
    assert message.startswith(f"refusing to fetch {url}: 127.0.0.1 is a loopback address")
    assert "KENNEL_FETCH_ALLOW_NETWORKS" in message
    assert caught.value.status_code == 400
    assert status_for("input_fn", caught.value) == 400


@pytest.mark.parametrize(
    ("url", "named", "reason"),
    [
        ("http://10.0.0.5/x.jpg", "10.0.0.5", "a private address"),
        ("http://192.168.1.1/x.jpg", "192.168.1.1", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "metadata"),
        ("http://[::1]/x.jpg", "::1", "a loopback address"),
        ("http://0.0.0.0:8080/x.jpg", "0.0.0.0", "the unspecified address"),
        ("http://[::]/x.jpg", "::", "the unspecified address"),
        ("http://[::ffff:127.0.0.1]/x.jpg", "::ffff:127.0.0.1 is a form of 127.0.0.1", "loop"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254", "metadata"),
        ("http://[64:ff9b::10.0.0.5]/x.jpg", "a form of 10.0.0.5", "a private address"),
        ("http://[fe80::1]/x.jpg", "fe80::1", "a link-local address"),
        ("http://[fd00::1]/x.jpg", "fd00::1", "a private address"),
        ("http://224.0.0.1/x.jpg", "224.0.0.1", "a multicast address"),
        ("http://100.64.0.1/x.jpg", "100.64.0.1", "not a public address"),
        ("http://240.0.0.1/x.jpg", "240.0.0.1", "240.0.0.1 is a"),
        ("http://2130706433/x.jpg", "127.0.0.1", "a loopback address"),  # decimal 127.0.0.1
    ],
)
@pytest.mark.usefixtures("no_connect")
def test_non_public_literal_addresses_are_refused_before_connecting(
    url: str, named: str, reason: str
) -> None:
    with pytest.raises(FetchError, match="KENNEL_FETCH_ALLOW_NETWORKS") as caught:
        fetch_url(url, FetchPolicy())
    message = str(caught.value)
    assert message.startswith("refusing to fetch http://")
    assert named in message
    assert reason in message


@pytest.mark.usefixtures("no_connect")
def test_allow_list_covers_only_its_networks() -> None:
    policy = FetchPolicy(allow_networks=(ipaddress.ip_network("10.0.0.0/24"),))
    with pytest.raises(FetchError, match=r"10\.0\.1\.5 is a private address"):
        fetch_url("http://10.0.1.5/x.jpg", policy)


def test_a_name_resolving_to_loopback_is_refused(server: Server) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_url(server.url("/image", host="localhost"), FetchPolicy())
    message = str(caught.value)
    assert "localhost resolves to" in message
    assert "a loopback address" in message
    assert "KENNEL_FETCH_ALLOW_NETWORKS" in message


def test_any_refused_address_of_a_name_refuses_it(
    monkeypatch: pytest.MonkeyPatch, no_connect: None
) -> None:
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "mixed.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(FetchError, match=r"mixed\.test resolves to 10\.1\.2\.3, is a private"):
        fetch_url("http://mixed.test/x.jpg", FetchPolicy())


def test_connects_to_the_checked_address_with_the_original_host(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once; a second answer would be private."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "10.9.9.9"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    body, content_type = fetch_url(server.url("/host", host="rebind.test"), ALLOW_LOOPBACK)
    assert body == f"rebind.test:{server.port}".encode()
    assert content_type == "text/plain"
    assert lookups == ["rebind.test"]


def test_https_is_pinned_with_the_name_as_sni(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection goes to the checked IP; SNI and certificate check use the name."""
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("images.test", "other.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    trusting = httpx.HTTPTransport(
        verify=ssl.create_default_context(cadata=tls_server.cert_pem.decode()),
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    monkeypatch.setattr(_fetch, "_transport", lambda: trusting)
    body, _ = fetch_url(f"https://images.test:{tls_server.port}/host", ALLOW_LOOPBACK)
    assert body == f"images.test:{tls_server.port}".encode()
    assert tls_server.server_names[-1] == "images.test"
    # the certificate is checked against the name asked for, not against the address
    with pytest.raises(FetchError, match="other.test"):
        fetch_url(f"https://other.test:{tls_server.port}/host", ALLOW_LOOPBACK)
    trusting.close()


def test_localhost_falls_back_across_its_addresses(server: Server) -> None:
    """``localhost`` may resolve to ::1 first; the server listens on 127.0.0.1 only."""
    resolved = {info[4][0] for info in socket.getaddrinfo("localhost", server.port)}
    if "127.0.0.1" not in resolved:
        pytest.skip(f"localhost resolves to {sorted(resolved)} here, not 127.0.0.1")
    body, _ = fetch_url(server.url("/host", host="localhost"), ALLOW_LOOPBACK)
    assert body == f"localhost:{server.port}".encode()


def test_concurrent_fetches_share_the_transport(server: Server) -> None:
    results: list[bytes] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(fetch_url(server.url("/chain?n=2"), ALLOW_LOOPBACK)[0])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors
    assert results == [JPEG] * 8


def test_follows_redirects_within_the_limit(server: Server) -> None:
    policy = FetchPolicy(allow_networks=LOOPBACK, max_redirects=3, timeout_seconds=2.0)
    assert fetch_url(server.url("/chain?n=3"), policy) == (JPEG, "image/jpeg")
    target = server.url("/image")
    for status in (301, 302, 303, 307, 308):
        url = server.url(f"/redirect?status={status}&to={target}")
        assert fetch_url(url, policy)[0] == JPEG


def test_too_many_redirects_are_refused(server: Server) -> None:
    policy = FetchPolicy(allow_networks=LOOPBACK, max_redirects=3, timeout_seconds=2.0)
    url = server.url("/chain?n=4")
    with pytest.raises(FetchError, match="redirects more than 3 times") as caught:
        fetch_url(url, policy)
    assert url in str(caught.value)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://169.254.169.254/latest/meta-data/", r"169\.254\.169\.254 is a link-local"),
        ("http://10.0.0.5/x.jpg", r"10\.0\.0\.5 is a private address"),
        ("file:///etc/passwd", "the scheme 'file' is not fetched"),
        ("http://user:secret@127.0.0.1/x.jpg", "user name or password"),
    ],
)
def test_redirects_are_checked_again(server: Server, target: str, expected: str) -> None:
    url = server.url(f"/redirect?to={target}")
    with pytest.raises(FetchError, match=expected) as caught:
        fetch_url(url, ALLOW_LOOPBACK)
    refusal, origin = str(caught.value).split(" (redirected from ", 1)
    assert origin.startswith(f"{url})")
    assert "secret" not in refusal


def test_upstream_error_status_is_reported(server: Server) -> None:
    with pytest.raises(FetchError, match="answered 404 Not Found") as caught:
        fetch_url(server.url("/missing.jpg"), ALLOW_LOOPBACK)
    assert caught.value.status_code == 400


def test_declared_oversized_body_is_refused_before_reading(server: Server) -> None:
    with pytest.raises(FetchError, match=r"larger than 6291456 bytes \(KENNEL_FETCH_MAX_BYTES\)"):
        fetch_url(server.url("/declared-big"), ALLOW_LOOPBACK)


def test_oversized_stream_is_cut_off(server: Server) -> None:
    policy = FetchPolicy(allow_networks=LOOPBACK, max_bytes=100_000, timeout_seconds=2.0)
    server.observed.endless_done.clear()
    started = time.monotonic()
    with pytest.raises(FetchError, match="larger than 100000 bytes"):
        fetch_url(server.url("/endless"), policy)
    assert time.monotonic() - started < 1.5
    assert server.observed.endless_done.wait(5), "the server kept sending"
    # the server's writes fail once the client hangs up: far less than all was sent
    assert server.observed.endless_sent[-1] < STREAM_TOTAL // 2


def test_trickling_server_hits_the_deadline(server: Server) -> None:
    policy = FetchPolicy(allow_networks=LOOPBACK, timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"took longer than 0\.5 s"):
        fetch_url(server.url("/trickle"), policy)
    assert time.monotonic() - started < 1.2


def test_silent_server_hits_the_timeout(server: Server) -> None:
    policy = FetchPolicy(allow_networks=LOOPBACK, timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(FetchError, match="KENNEL_FETCH_TIMEOUT_SECONDS"):
        fetch_url(server.url("/stall"), policy)
    assert time.monotonic() - started < 1.0


def test_encoded_body_is_refused(server: Server) -> None:
    with pytest.raises(FetchError, match="'gzip'-encoded body"):
        fetch_url(server.url("/gzip"), ALLOW_LOOPBACK)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///etc/passwd", "the scheme 'file'"),
        ("ftp://example.com/x.jpg", "the scheme 'ftp'"),
        ("data:image/png;base64,iVBORw0KGgo=", "the scheme 'data'"),
        ("gopher://example.com/", "the scheme 'gopher'"),
        ("example.com/x.jpg", "without a scheme"),
        ("//example.com/x.jpg", "without a scheme"),
        ("", "without a scheme"),
        ("http:///x.jpg", "has no host"),
        ("http://user:secret@example.com/x.jpg", "user name or password"),
        ("http://[::1/x.jpg", "is not a URL"),
    ],
)
@pytest.mark.usefixtures("no_connect")
def test_only_plain_http_urls_are_fetched(url: str, expected: str) -> None:
    with pytest.raises(FetchError, match=expected) as caught:
        fetch_url(url, FetchPolicy())
    assert "secret" not in str(caught.value)


@pytest.mark.usefixtures("no_connect")
def test_long_urls_are_shortened_in_messages() -> None:
    url = "ftp://example.com/" + "a" * 10_000
    with pytest.raises(FetchError) as caught:
        fetch_url(url, FetchPolicy())
    assert len(str(caught.value)) < 400


# Policy ----------------------------------------------------------------------------------


def test_policy_from_env() -> None:
    assert FetchPolicy.from_env({}) == FetchPolicy()
    policy = FetchPolicy.from_env(
        {
            "KENNEL_FETCH_ALLOW_NETWORKS": " 127.0.0.0/8, ::1,10.0.0.5,,192.168.1.7/24 ",
            "KENNEL_FETCH_TIMEOUT_SECONDS": "2.5",
            "KENNEL_FETCH_MAX_BYTES": "1024",
        }
    )
    assert policy.allow_networks == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("192.168.1.0/24"),
    )
    assert policy.timeout_seconds == 2.5
    assert policy.max_bytes == 1024
    assert policy.max_redirects == 5


def test_policy_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KENNEL_FETCH_ALLOW_NETWORKS", "127.0.0.1")
    monkeypatch.delenv("KENNEL_FETCH_TIMEOUT_SECONDS", raising=False)
    monkeypatch.delenv("KENNEL_FETCH_MAX_BYTES", raising=False)
    assert FetchPolicy.from_env().allow_networks == (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KENNEL_FETCH_ALLOW_NETWORKS", "127.0.0.0/8,localhost"),
        ("KENNEL_FETCH_ALLOW_NETWORKS", "10.0.0.0/33"),
        ("KENNEL_FETCH_TIMEOUT_SECONDS", "soon"),
        ("KENNEL_FETCH_TIMEOUT_SECONDS", "0"),
        ("KENNEL_FETCH_TIMEOUT_SECONDS", "inf"),
        ("KENNEL_FETCH_MAX_BYTES", "1.5"),
        ("KENNEL_FETCH_MAX_BYTES", "-1"),
    ],
)
def test_policy_from_env_names_a_bad_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable) as caught:
        FetchPolicy.from_env({variable: value})
    assert repr(value.split(",")[-1]) in str(caught.value)


def test_policy_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        FetchPolicy(timeout_seconds=0)
    with pytest.raises(ValueError, match="max_bytes"):
        FetchPolicy(max_bytes=0)
    with pytest.raises(ValueError, match="max_redirects"):
        FetchPolicy(max_redirects=-1)


# Decoding --------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` 1-bit pixels; the data is junk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"junk that is not zlib")
        + chunk(b"IEND", b"")
    )


def test_open_image_checked_decodes_to_rgb() -> None:
    image = open_image_checked(JPEG)
    assert (image.mode, image.size) == ("RGB", (64, 48))
    out = io.BytesIO()
    Image.new("RGBA", (5, 7), (1, 2, 3, 4)).save(out, format="PNG")
    image = open_image_checked(out.getvalue())
    assert (image.mode, image.size) == ("RGB", (5, 7))


def test_open_image_checked_drafts_jpegs() -> None:
    image = open_image_checked(_jpeg((800, 600)), draft_size=(100, 100))
    assert image.mode == "RGB"
    assert image.size == (200, 150)  # 1/4 scale: the smallest DCT scale at least 100x100


@pytest.mark.parametrize(("width", "height"), [(8000, 8000), (20000, 20000), (2**31 - 1, 1)])
def test_open_image_checked_refuses_bombs_before_decoding(width: int, height: int) -> None:
    # the pixel data is junk, so anything but the size check would fail differently
    with pytest.raises(ImageDecodeError, match="40000000 pixels") as caught:
        open_image_checked(_png_header(width, height))
    assert caught.value.status_code == 400
    assert "send a smaller image" in str(caught.value)


def test_open_image_checked_honours_max_pixels() -> None:
    with pytest.raises(ImageDecodeError, match=r"64x48 image \(3072 pixels\)"):
        open_image_checked(JPEG, max_pixels=3000)
    assert open_image_checked(JPEG, max_pixels=3072).size == (64, 48)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "not an image"),
        (b"<html>hello</html>", "not an image"),
        (JPEG[:100], "not an image"),
        (NOISE_JPEG[: len(NOISE_JPEG) // 2], "JPEG body could not be decoded"),
        (_png_header(10, 10), "could not be decoded"),
    ],
    ids=["empty", "html", "jpeg-header-cut", "jpeg-data-cut", "png-junk-data"],
)
def test_open_image_checked_refuses_unreadable_bytes(data: bytes, expected: str) -> None:
    with pytest.raises(ImageDecodeError, match=expected) as caught:
        open_image_checked(data)
    assert status_for("input_fn", caught.value) == 400
