"""Running the gateway in this process until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from kennel._logging import configure_logging
from kennel._settings import Settings
from kennel.api import _server_file as server_file
from kennel.api._app import create_app
from kennel.api._context import build_context
from kennel.api._tls import check_transport, warn_about_names, with_client_trust

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Build the server and run it; uvicorn turns SIGTERM into a clean shutdown.

    Raises:
        ValidationError: Plain HTTP on a non-loopback host, or a TLS file that will not load
            (see :mod:`kennel.api._tls`); nothing has started then.
    """
    check_transport(settings)
    configure_logging(settings.log_format)
    settings = with_client_trust(settings)
    warn_about_names(settings)
    run = server_file.begin_run(settings)
    ctx = build_context(settings)
    if ctx.account.created:
        log.info(
            "bootstrapped account %s (%s); admin access key %s written to AWS profile %r",
            ctx.account_id,
            ctx.region,
            ctx.account.admin_access_key_id,
            settings.profile,
        )
    app = create_app(ctx)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        # JSON: uvicorn's loggers go through the root handler (its own config would give
        # them plain-text handlers); text: its default config, as before.
        log_config=None if settings.log_format == "json" else LOGGING_CONFIG,
        proxy_headers=False,  # no proxy in front: the client's own address is the truth
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully, with
    # the handlers it found at start; these make that re-raise a logged no-op, so the
    # cleanup below runs and a SIGTERM'd server exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _log_stop_signal)
    server_file.write(settings, run)
    try:
        server.run()
    finally:
        server_file.remove(settings.server_file)
    log.info("kennel server stopped")


def _log_stop_signal(signum: int, _frame: FrameType | None) -> None:
    log.info("shut down on %s", signal.Signals(signum).name)
