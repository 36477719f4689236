"""Fetch an image a client names by URL, without letting the client reach inside the network.

A model server may be sent ``{"url": "https://..."}``; :func:`fetch_url` downloads it. The
URL comes from whoever can call the endpoint, so the fetch is guarded against server-side
request forgery and against resource exhaustion:

* **Schemes**: ``http`` and ``https`` only. URLs with a user name or password
  (``http://user:pass@host/``) are refused too: a model server has no business holding
  credentials for someone else's server, and they would leak into logs and redirects.
* **Addresses**: the host is resolved once (``socket.getaddrinfo``, within the deadline)
  and the fetch is refused if *any* resolved address is loopback, private, link-local
  (169.254.169.254, the cloud metadata service, lives there), multicast, reserved,
  unspecified or otherwise not globally routable, including IPv4-mapped (``::ffff:a.b.c.d``)
  and NAT64 / 6to4 forms of such addresses. An address inside one of
  :attr:`FetchPolicy.allow_networks` (``KENNEL_FETCH_ALLOW_NETWORKS``) is allowed anyway.
* **Pinning**: the connection goes to the address that was checked, not to the name, so a
  DNS answer that changes between the check and the connection (DNS rebinding) cannot
  redirect it. The request carries the original ``Host`` header and, for https, the
  original name as SNI, against which the certificate is verified. Connections are not
  kept alive, so one is never reused for a different name.
* **Redirects** are followed by hand, at most :attr:`FetchPolicy.max_redirects` of them,
  and every hop is checked again (scheme, userinfo, addresses).
* **Time**: every network operation has a timeout, and the whole fetch (resolution,
  redirects, body) has a deadline of :attr:`FetchPolicy.timeout_seconds`, checked as the
  body arrives, so a server that trickles bytes cannot hold the worker. (A single
  operation is capped at the time left when its hop began, so the worst case is a little
  under twice the deadline.)
* **Size**: the body is streamed and the fetch stops as soon as it exceeds
  :attr:`FetchPolicy.max_bytes`; a larger ``Content-Length`` is refused before reading.
  Only an identity-encoded body is accepted (kennel asks for it), so a small gzip body
  cannot inflate past the limit.
* Any non-2xx answer is an error that names the status.

Every refusal is a :class:`FetchError`, a ``ValueError`` with ``status_code = 400``, which
the model server answers with (see :func:`kennel.endpoints._errors.status_for`); its
message says what was wrong and what to do about it.

:func:`open_image_checked` is the matching guard for decoding: it refuses images whose
declared dimensions are too large before any pixel is decoded (decompression bombs).
"""

from __future__ import annotations

import io
import ipaddress
import math
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Final

import httpx
from PIL import Image, UnidentifiedImageError

from kennel.endpoints._media import media_type

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_NETWORKS_ENV: Final = "KENNEL_FETCH_ALLOW_NETWORKS"
TIMEOUT_ENV: Final = "KENNEL_FETCH_TIMEOUT_SECONDS"
MAX_BYTES_ENV: Final = "KENNEL_FETCH_MAX_BYTES"

_SCHEMES: Final = frozenset({"http", "https"})
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_METADATA_ADDRESSES: Final = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64_PREFIX: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SHOWN_URL_CHARS: Final = 200
_HEADERS: Final = {
    "User-Agent": "kennel-model-server",
    "Accept": "image/*, */*;q=0.5",
    "Accept-Encoding": "identity",
}


class FetchError(ValueError):
    """The URL could not or must not be fetched; the model server answers 400."""

    status_code = 400


class ImageDecodeError(ValueError):
    """The bytes are not an image kennel will decode; the model server answers 400."""

    status_code = 400


@dataclass(frozen=True)
class FetchPolicy:
    """What :func:`fetch_url` may fetch, and how much time and memory it may spend."""

    allow_networks: tuple[IPNetwork, ...] = ()
    """Networks that are fetched from even though they are not public (e.g. 127.0.0.0/8)."""
    timeout_seconds: float = 10.0
    """Timeout of each connect/read, and the deadline of the whole fetch incl. redirects."""
    max_bytes: int = 6 * 2**20
    """The largest body accepted; the download stops as soon as it is exceeded."""
    max_redirects: int = 5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0):
            raise ValueError(f"timeout_seconds must be > 0, not {self.timeout_seconds!r}")
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, not {self.max_bytes!r}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, not {self.max_redirects!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FetchPolicy:
        """The policy set by ``KENNEL_FETCH_*`` variables (``os.environ`` by default).

        * ``KENNEL_FETCH_ALLOW_NETWORKS``: comma-separated CIDRs or single addresses,
          e.g. ``127.0.0.0/8,::1``;
        * ``KENNEL_FETCH_TIMEOUT_SECONDS``: a positive number of seconds;
        * ``KENNEL_FETCH_MAX_BYTES``: a positive whole number of bytes.

        A malformed value raises ``ValueError`` naming the variable.
        """
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            allow_networks=parse_networks(env.get(ALLOW_NETWORKS_ENV, "")),
            timeout_seconds=_env_timeout(env.get(TIMEOUT_ENV), default.timeout_seconds),
            max_bytes=_env_max_bytes(env.get(MAX_BYTES_ENV), default.max_bytes),
        )


def parse_networks(text: str, variable: str = ALLOW_NETWORKS_ENV) -> tuple[IPNetwork, ...]:
    """``"127.0.0.0/8, ::1"`` -> the networks; a single address is a /32 (or /128)."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"{variable}: {item!r} is not an IP network or address; write "
                "comma-separated CIDRs or addresses, e.g. 127.0.0.0/8,::1"
            ) from None
    return tuple(networks)


def _env_timeout(raw: str | None, default: float) -> float:
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{TIMEOUT_ENV}: {raw!r} is not a positive number of seconds, e.g. 10")
    return value


def _env_max_bytes(raw: str | None, default: int) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(
            f"{MAX_BYTES_ENV}: {raw!r} is not a positive whole number of bytes, e.g. 6291456"
        )
    return value


# Fetching --------------------------------------------------------------------------------


def fetch_url(url: str, policy: FetchPolicy) -> tuple[bytes, str | None]:
    """GET ``url``; returns (body, content type header's media type or None).

    Raises :class:`FetchError` when the URL is refused by ``policy``, cannot be fetched in
    time, answers other than 2xx or its body is too large.
    """
    deadline = time.monotonic() + policy.timeout_seconds
    current = _checked_url(url, origin=None)
    for hop in range(policy.max_redirects + 1):
        response = _open(current, url if hop else None, policy, deadline)
        try:
            status = response.status_code
            if status in _REDIRECT_STATUSES:
                current = _redirect_target(response, current, url)
                continue
            if not 200 <= status < 300:
                raise FetchError(
                    f"fetching {_show(current)} answered {status} {response.reason_phrase}; "
                    "send a URL that answers the image to an anonymous GET"
                )
            body = _read_body(response, current, policy, deadline)
            return body, media_type(response.headers.get("content-type")) or None
        finally:
            response.close()
    raise FetchError(
        f"refusing to fetch {_show(httpx.URL(url))}: it redirects more than "
        f"{policy.max_redirects} times; send the image's final URL"
    )


def _checked_url(raw: str | httpx.URL, origin: str | None) -> httpx.URL:
    """Parse ``raw`` and refuse what is not a plain http(s) URL."""
    try:
        url = raw if isinstance(raw, httpx.URL) else httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, UnicodeError) as exc:
        raise FetchError(
            f"{_truncate(str(raw))!r} is not a URL ({exc}); send an http(s) URL"
        ) from None
    hop = _redirected_from(origin)
    if url.scheme not in _SCHEMES:
        scheme = f"the scheme {url.scheme!r}" if url.scheme else "a URL without a scheme"
        raise FetchError(
            f"refusing to fetch {_show(url)}{hop}: {scheme} is not fetched; "
            "only http:// and https:// URLs are"
        )
    if url.userinfo:
        raise FetchError(
            f"refusing to fetch {_show(url)}{hop}: URLs with a user name or password are "
            "not fetched; make the image readable without credentials"
        )
    if not url.host:
        raise FetchError(f"refusing to fetch {_show(url)}{hop}: the URL has no host")
    return url


def _redirect_target(response: httpx.Response, current: httpx.URL, original: str) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise FetchError(
            f"fetching {_show(current)} answered {response.status_code} "
            f"{response.reason_phrase} without a Location; send the image's final URL"
        )
    try:
        target = current.join(location)
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise FetchError(
            f"fetching {_show(current)} redirected to an invalid URL "
            f"{_truncate(location)!r} ({exc}); send the image's final URL"
        ) from None
    return _checked_url(target.copy_with(fragment=None), origin=original)


def _open(
    url: httpx.URL, origin: str | None, policy: FetchPolicy, deadline: float
) -> httpx.Response:
    """Send the GET to a checked address of ``url``'s host; return the unread response."""
    addresses = _checked_addresses(url, origin, policy, deadline)
    host = url.raw_host.decode("ascii")
    headers = {**_HEADERS, "Host": url.netloc.decode("ascii")}
    failures: list[str] = []
    for address in addresses:
        extensions: dict[str, object] = {
            "timeout": httpx.Timeout(_remaining(url, policy, deadline)).as_dict()
        }
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        request = httpx.Request(
            "GET", url.copy_with(host=str(address)), headers=headers, extensions=extensions
        )
        try:
            return _transport().handle_request(request)
        except httpx.ConnectError as exc:
            failures.append(f"{address}: {exc}")
        except httpx.TimeoutException:
            raise _timeout_error(url, policy) from None
        except httpx.HTTPError as exc:
            raise FetchError(
                f"fetching {_show(url)} failed ({exc}); check that the URL is reachable"
            ) from None
    raise FetchError(
        f"could not connect to {_show(url)} ({'; '.join(failures)}); "
        "check that the URL is reachable from the model server"
    )


def _read_body(
    response: httpx.Response, url: httpx.URL, policy: FetchPolicy, deadline: float
) -> bytes:
    too_large = FetchError(
        f"refusing to fetch {_show(url)}: the body is larger than {policy.max_bytes} bytes "
        f"({MAX_BYTES_ENV}); send a smaller image"
    )
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchError(
            f"refusing to fetch {_show(url)}: the server sent a {encoding!r}-encoded body "
            "although only 'identity' was accepted; serve the image unencoded"
        )
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > policy.max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_raw():
            size += len(chunk)
            if size > policy.max_bytes:
                raise too_large
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _timeout_error(url, policy)
    except httpx.TimeoutException:
        raise _timeout_error(url, policy) from None
    except httpx.HTTPError as exc:
        raise FetchError(
            f"fetching {_show(url)} broke off while reading the body ({exc}); try again"
        ) from None
    return b"".join(chunks)


def _checked_addresses(
    url: httpx.URL, origin: str | None, policy: FetchPolicy, deadline: float
) -> list[IPAddress]:
    """Every address ``url``'s host resolves to, or FetchError if any one is refused."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)]
        literal = True
    except ValueError:
        addresses = _resolve(url, host, port, policy, deadline)
        literal = False
    for address in addresses:
        if _allowed(address, policy.allow_networks):
            continue
        reason = _refusal_reason(address)
        if reason is None:
            continue
        subject = host if literal else f"{host} resolves to {address},"
        raise FetchError(
            f"refusing to fetch {_show(url)}{_redirected_from(origin)}: {subject} is {reason}; "
            f"allow-list it with {ALLOW_NETWORKS_ENV} (e.g. {ALLOW_NETWORKS_ENV}={address}) "
            "if the model server should fetch from there"
        )
    return addresses


def _resolve(
    url: httpx.URL, host: str, port: int, policy: FetchPolicy, deadline: float
) -> list[IPAddress]:
    """``getaddrinfo`` in a worker thread, so a hanging resolver cannot outlast the deadline."""
    future = _resolver().submit(
        socket.getaddrinfo, host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    try:
        infos = future.result(timeout=_remaining(url, policy, deadline))
    except FutureTimeoutError:
        future.cancel()
        raise _timeout_error(url, policy) from None
    except (OSError, UnicodeError) as exc:
        raise FetchError(
            f"cannot fetch {_show(url)}: the host {host!r} does not resolve ({exc}); "
            "check the host name"
        ) from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(f"cannot fetch {_show(url)}: the host {host!r} has no address")
    return addresses


def _allowed(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(candidate in network for candidate in candidates for network in networks)


def _refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be fetched from (as "a ... address"), or None if public."""
    reason = _category(address)
    if reason is not None and address in _METADATA_ADDRESSES:
        return f"{reason} (the cloud metadata service)"
    return reason


def _category(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = _refusal_reason(embedded)
            if inner is not None:
                return f"a form of {embedded}, {inner}"
            if address.ipv4_mapped is not None or address in _NAT64_PREFIX:
                return None  # reaches exactly the (public) IPv4 address
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _remaining(url: httpx.URL, policy: FetchPolicy, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timeout_error(url, policy)
    return left


def _timeout_error(url: httpx.URL, policy: FetchPolicy) -> FetchError:
    return FetchError(
        f"fetching {_show(url)} took longer than {policy.timeout_seconds:g} s "
        f"({TIMEOUT_ENV}); serve the image from a faster server or raise the limit"
    )


def _show(url: httpx.URL) -> str:
    """``url`` for a message: without user name or password, and not too long."""
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    return _truncate(str(url))


def _redirected_from(origin: str | None) -> str:
    return f" (redirected from {_show(httpx.URL(origin))})" if origin else ""


def _truncate(text: str) -> str:
    return text if len(text) <= _SHOWN_URL_CHARS else text[: _SHOWN_URL_CHARS - 3] + "..."


_lock = threading.Lock()
_shared_transport: httpx.HTTPTransport | None = None
_shared_resolver: ThreadPoolExecutor | None = None


def _transport() -> httpx.HTTPTransport:
    """One transport for all threads: no cookies, no auth, no proxies, no keep-alive.

    The transport, unlike ``httpx.Client``, keeps no cookie jar across fetches and never
    consults proxy variables (a proxy would resolve the name itself, undoing the pinning).
    Keep-alive is off so that a connection opened for one name (its SNI and certificate)
    is never reused for another name at the same address.
    """
    global _shared_transport
    with _lock:
        if _shared_transport is None:
            _shared_transport = httpx.HTTPTransport(
                verify=True,
                http1=True,
                http2=False,
                retries=0,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=0),
            )
        return _shared_transport


def _resolver() -> ThreadPoolExecutor:
    global _shared_resolver
    with _lock:
        if _shared_resolver is None:
            _shared_resolver = ThreadPoolExecutor(
                max_workers=8, thread_name_prefix="kennel-fetch-resolve"
            )
        return _shared_resolver


# Decoding --------------------------------------------------------------------------------


def open_image_checked(
    data: bytes, max_pixels: int = 40_000_000, draft_size: tuple[int, int] | None = None
) -> Image.Image:
    """Decode ``data`` into an RGB image, refusing decompression bombs before decoding.

    The dimensions in the image's header are checked against ``max_pixels`` right after
    ``Image.open`` (which reads only the header), so a small file claiming a huge size is
    refused without allocating its pixels. With ``draft_size``, a JPEG is decoded with DCT
    scaling to the smallest size at least that large (much faster for a big photo that is
    resized anyway); other formats ignore it. Raises :class:`ImageDecodeError` (400).
    """
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            f"refusing to decode the image: {exc}; the limit is {max_pixels} pixels, "
            "send a smaller image"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error) as exc:
        raise ImageDecodeError(
            f"the body is not an image kennel can read ({exc}); send a JPEG, PNG, GIF, "
            "BMP, TIFF or WebP file"
        ) from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageDecodeError(
                f"refusing to decode a {width}x{height} image ({width * height} pixels): "
                f"the limit is {max_pixels} pixels; send a smaller image"
            )
        try:
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", draft_size)
            return image.convert("RGB")
        except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error) as exc:
            raise ImageDecodeError(
                f"the {image.format or 'image'} body could not be decoded ({exc}); "
                "send a complete, valid image file"
            ) from None
