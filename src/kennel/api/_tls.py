"""HTTPS for the gateway, and the rule that keeps plain HTTP on loopback.

Requests are signed, so no secret key crosses the wire, but everything else does: the
bodies (CreateAccessKey answers with a new secret key, AssumeRole with a session token,
InvokeEndpoint carries the user's data), and a captured signed request can be replayed
within the clock-skew window. So the gateway speaks plain HTTP on a loopback address
only. Bound anywhere else it needs a certificate, or the explicit ``allow_plaintext``
opt-out that says a TLS-terminating proxy in front is the only thing reaching the port.

The server's own callers (function environments, the AWS profile it writes, ``kennel``
on this machine) reach it at ``resolved_endpoint_url``, which is https:// with TLS on;
they trust the certificate through ``ca_bundle``, which a self-signed certificate fills
with itself. There is no plain-HTTP side door for them: a second, unencrypted listener
would be one more thing to keep off the network.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from kennel._errors import ValidationError
from kennel._settings import Settings

log = logging.getLogger(__name__)

TLS_HINT = (
    "Give the gateway a certificate: --tls-cert-file cert.pem --tls-key-file key.pem "
    "(or KENNEL_TLS_CERT_FILE / KENNEL_TLS_KEY_FILE). Only when a TLS-terminating proxy in "
    "front is the sole way in, opt out with --allow-plaintext (KENNEL_ALLOW_PLAINTEXT=1)."
)


def check_transport(settings: Settings) -> None:
    """Refuse a configuration that would serve plain HTTP to the network, or broken TLS.

    Raises:
        ValidationError: Plain HTTP on a non-loopback host without the opt-out; a key
            without a certificate; a certificate or key that cannot be loaded.
    """
    if settings.tls_cert_file is None:
        if settings.tls_key_file is not None:
            raise ValidationError(
                "A TLS key file is set (KENNEL_TLS_KEY_FILE / --tls-key-file) but no certificate.",
                hint="Set KENNEL_TLS_CERT_FILE (--tls-cert-file) to the key's certificate.",
            )
        if settings.binds_loopback or settings.allow_plaintext:
            return
        raise ValidationError(
            f"Refusing to serve plain HTTP on {settings.host}: it is not a loopback address, "
            "so anyone on the network could read every request and answer (new secret keys, "
            "session tokens, your data).",
            hint=TLS_HINT,
        )
    server_ssl_context(settings)


def server_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The certificate and key loaded as the gateway will serve them (a readable error,
    rather than uvicorn's traceback, when they are missing or do not match)."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    assert cert is not None
    for what, path in (("certificate", cert), ("key", key)):
        if path is not None and not path.is_file():
            raise ValidationError(
                f"The TLS {what} file {path} does not exist.", hint="Check the path."
            )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ValidationError(
            f"Cannot load the TLS certificate {cert}"
            + (f" with the key {key}" if key else "")
            + f": {exc}.",
            hint="Both must be PEM files, the key unencrypted and matching the certificate.",
        ) from exc
    return context


def with_client_trust(settings: Settings) -> Settings:
    """The server's settings with ``ca_bundle`` defaulted to a self-signed certificate.

    The server's own clients (function environments, the AWS profile it writes) then
    trust it with nothing more configured. A certificate a CA signed is left to
    ``ca_bundle`` or the usual trust store: its own file is no trust anchor.
    """
    if settings.tls_cert_file is None or settings.ca_bundle is not None:
        return settings
    if not _self_signed(_certificate(settings.tls_cert_file)):
        return settings
    return settings.model_copy(update={"ca_bundle": settings.tls_cert_file})


def warn_about_names(settings: Settings) -> None:
    """Log a warning when the certificate does not name the endpoint's host: clients that
    verify it (all of kennel's) would fail there."""
    if settings.tls_cert_file is None:
        return
    host = urlsplit(settings.resolved_endpoint_url).hostname or ""
    names = certificate_names(_certificate(settings.tls_cert_file))
    if not _names_match(host, names):
        log.warning(
            "the TLS certificate %s names %s but clients reach this server at %s; they "
            "will refuse it. Use a certificate for %s, or set KENNEL_ENDPOINT_URL to "
            "https://<a name the certificate holds>:%d",
            settings.tls_cert_file,
            ", ".join(names) or "no host",
            settings.resolved_endpoint_url,
            host,
            settings.port,
        )


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses of the certificate's subjectAltName (the only names
    TLS clients check)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *san.get_values_for_type(x509.DNSName),
        *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
    ]


def _names_match(host: str, names: list[str]) -> bool:
    """Whether a TLS client would accept ``names`` for ``host`` (an IP address must be
    listed as one; a ``*.`` wildcard covers one label)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        host = host.lower()
        parent = host.partition(".")[2]
        return any(n.lower() in (host, f"*.{parent}") for n in names)
    return any(_is_address(name, address) for name in names)


def _is_address(name: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(name) == address
    except ValueError:
        return False


def _certificate(path: Path) -> x509.Certificate:
    """The first (leaf) certificate of a PEM file."""
    return x509.load_pem_x509_certificate(path.read_bytes())


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject
