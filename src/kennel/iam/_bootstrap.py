"""First start: an account, an admin user with an access key, and an AWS profile for them."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from kennel._settings import Settings
from kennel.iam._keys import SecretBox, new_access_key_id, new_account_id, new_secret_access_key
from kennel.store import AccessKey, Account, Database, User

ADMIN_USER = "admin"


@dataclass(frozen=True)
class BootstrapResult:
    account_id: str
    region: str
    admin_access_key_id: str
    created: bool
    """True on the very first start, when the account and admin key were made."""


def bootstrap(db: Database, box: SecretBox, settings: Settings) -> BootstrapResult:
    """Make the account and admin key once; later starts find them and change nothing."""
    with db.session() as session:
        account = session.scalars(select(Account)).first()
        if account is not None:
            key = session.scalars(
                select(AccessKey).where(AccessKey.user_name == ADMIN_USER)
            ).first()
            return BootstrapResult(
                account.account_id, account.region, key.access_key_id if key else "", False
            )
        account = Account(account_id=new_account_id(), region=settings.region)
        session.add(account)
        session.add(
            User(
                name=ADMIN_USER,
                arn=f"arn:aws:iam::{account.account_id}:user/{ADMIN_USER}",
                is_admin=True,
            )
        )
        key_id, secret = new_access_key_id(), new_secret_access_key()
        session.flush()
        session.add(
            AccessKey(
                access_key_id=key_id,
                user_name=ADMIN_USER,
                secret_encrypted=box.encrypt(secret),
                status="Active",
            )
        )
    if settings.write_aws_profile:
        write_aws_profile(settings, key_id, secret)
    return BootstrapResult(account.account_id, account.region, key_id, True)


def aws_credentials_file() -> Path:
    raw = os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
    return Path(raw).expanduser() if raw else Path("~/.aws/credentials").expanduser()


def aws_config_file() -> Path:
    raw = os.environ.get("AWS_CONFIG_FILE")
    return Path(raw).expanduser() if raw else Path("~/.aws/config").expanduser()


def write_aws_profile(settings: Settings, key_id: str, secret: str) -> None:
    """Put the admin key into the AWS shared files as profile ``kennel`` (0600).

    Only that profile's section is touched, so a user's other AWS profiles stay as they were.
    boto3 (``Session(profile_name="kennel")``), the AWS CLI and kennel's own CLI read it.
    """
    _update_ini(
        aws_credentials_file(),
        settings.profile,
        {"aws_access_key_id": key_id, "aws_secret_access_key": secret},
    )
    write_aws_config(settings)


def write_aws_config(settings: Settings) -> None:
    """Point profile ``kennel`` at this server (done at every start: the port may change).

    With a ``ca_bundle`` (an https endpoint whose certificate the usual trust store does
    not know) the profile names it too, so boto3 and the AWS CLI verify the server.
    """
    values = {"region": settings.region, "endpoint_url": settings.resolved_endpoint_url}
    if settings.ca_bundle is not None:
        values["ca_bundle"] = str(settings.ca_bundle)
    _update_ini(aws_config_file(), f"profile {settings.profile}", values)


def _update_ini(path: Path, section: str, values: dict[str, str]) -> None:
    parser = configparser.RawConfigParser()
    if path.exists():
        parser.read(path)
    if parser.has_section(section):
        parser.remove_section(section)
    parser.add_section(section)
    for key, value in values.items():
        parser.set(section, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".kennel-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        parser.write(out)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
