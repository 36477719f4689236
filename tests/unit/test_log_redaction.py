"""The log's safety net (secrets masked in both formats) and the environment user code gets."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from kennel._logging import TEXT_FORMAT, JsonFormatter, TextFormatter, redact
from kennel._settings import without_server_secrets

SIGNATURE = "a1" * 32


@pytest.mark.parametrize(
    ("text", "kept", "hidden"),
    [
        (
            f"GET /?X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token=FwoG%2Bz&X-Amz-Date=1",
            "X-Amz-Date=1",
            [SIGNATURE, "FwoG%2Bz"],
        ),
        (
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20250101/us-east-1/sts/"
            f"aws4_request, SignedHeaders=host;x-amz-date, Signature={SIGNATURE}",
            "Credential=AKIAEXAMPLE",
            [SIGNATURE],
        ),
        ("X-Amz-Security-Token: IQoJb3Jp+/x==", "X-Amz-Security-Token", ["IQoJb3Jp+/x=="]),
        (
            "{'AccessKeyId': 'ASIAEXAMPLE', 'SecretAccessKey': 'wJal+/K7MDENG', "
            "'SessionToken': 'IQoJ/tok=='}",
            "ASIAEXAMPLE",
            ["wJal+/K7MDENG", "IQoJ/tok=="],
        ),
        ('{"SecretAccessKey": "wJal+/K7MDENG"}', "SecretAccessKey", ["wJal+/K7MDENG"]),
        (
            "aws_secret_access_key = wJal+/K7MDENG\naws_session_token=IQoJ/tok",
            "aws_secret_access_key",
            ["wJal+/K7MDENG", "IQoJ/tok"],
        ),
        (
            "<SecretAccessKey>wJal+/K7</SecretAccessKey><SessionToken>IQoJ</SessionToken>",
            "</SessionToken>",
            ["wJal+/K7", "IQoJ"],
        ),
    ],
)
def test_redact_masks_every_form(text: str, kept: str, hidden: list[str]) -> None:
    masked = redact(text)
    assert kept in masked
    for secret in hidden:
        assert secret not in masked
    assert "***" in masked


def test_redact_leaves_ordinary_lines_alone() -> None:
    for line in (
        "POST /2015-03-31/functions/classify/invocations 200",
        "bootstrapped account 123456789012; admin access key AKIAEXAMPLE written",
        "ExpiredTokenException: the security token included in the request is expired",
    ):
        assert redact(line) == line


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("kennel.test", logging.ERROR, __file__, 1, message, args, None)


def test_both_formats_mask_messages_and_tracebacks() -> None:
    try:
        raise ValueError(f"fetching https://x/?X-Amz-Signature={SIGNATURE} failed")
    except ValueError:
        record = _record("answer was %s", {"SecretAccessKey": "wJal+/K7MDENG"})
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    text = TextFormatter(TEXT_FORMAT).format(record)
    for line in (json.dumps(entry), text):
        assert SIGNATURE not in line
        assert "wJal+/K7MDENG" not in line
    assert "ValueError" in entry["exc_info"]
    assert entry["message"] == "answer was {'SecretAccessKey': '***'}"


def test_user_code_does_not_get_the_servers_secrets() -> None:
    environ = {
        "PATH": "/usr/bin",
        "KENNEL_HOME": "/srv/kennel",
        "KENNEL_MASTER_KEY": "a-fernet-key",
        "KENNEL_DATABASE_URL": "postgresql://kennel:password@db/kennel",
    }
    assert without_server_secrets(environ) == {"PATH": "/usr/bin", "KENNEL_HOME": "/srv/kennel"}


def test_passwords_and_the_console_cookie_are_masked() -> None:
    for line, secret in [
        ("Action=CreateLoginProfile&UserName=ann&Password=Hunter2hunter2", "Hunter2hunter2"),
        ('{"user_name": "ann", "password": "Hunter2hunter2"}', "Hunter2hunter2"),
        ("NewPassword=Corr3ctHorse&OldPassword=Hunter2hunter2", "Corr3ctHorse"),
        ("cookie: kennel-console=ASIAEXAMPLE.c2VjcmV0; theme=dark", "c2VjcmV0"),
    ]:
        assert secret not in redact(line), line
