import configparser
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from kennel._errors import InternalError
from kennel._settings import Settings
from kennel.iam._bootstrap import bootstrap
from kennel.iam._credentials import CredentialStore
from kennel.iam._keys import SecretBox, new_access_key_id, new_account_id
from kennel.store import AccessKey, Database


def test_key_shapes() -> None:
    key = new_access_key_id()
    assert key.startswith("AKIA") and len(key) == 20 and key.isupper()
    assert new_access_key_id("ASIA").startswith("ASIA")
    account = new_account_id()
    assert len(account) == 12 and account.isdigit() and account[0] != "0"


def test_secret_box_round_trip_and_wrong_key(tmp_path: Path) -> None:
    box = SecretBox.from_file_or_env(tmp_path / "master.key", None)
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600
    token = box.encrypt("s3cret")
    assert b"s3cret" not in token
    assert SecretBox.from_file_or_env(tmp_path / "master.key", None).decrypt(token) == "s3cret"
    other = SecretBox.from_file_or_env(tmp_path / "other.key", None)
    with pytest.raises(InternalError, match="master key"):
        other.decrypt(token)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Database, SecretBox, Settings]:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws" / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws" / "config"))
    db = Database(f"sqlite:///{tmp_path / 'k.db'}")
    db.upgrade()
    box = SecretBox.from_file_or_env(tmp_path / "master.key", None)
    return db, box, Settings(home=tmp_path, port=9999)


def test_bootstrap_once_and_profile_keeps_other_sections(
    env: tuple[Database, SecretBox, Settings], tmp_path: Path
) -> None:
    db, box, settings = env
    creds_path = tmp_path / "aws" / "credentials"
    creds_path.parent.mkdir()
    creds_path.write_text("[default]\naws_access_key_id = MINE\naws_secret_access_key = KEEP\n")
    first = bootstrap(db, box, settings)
    assert first.created and len(first.account_id) == 12
    second = bootstrap(db, box, settings)
    assert not second.created
    assert (second.account_id, second.admin_access_key_id) == (
        first.account_id,
        first.admin_access_key_id,
    )
    parsed = configparser.RawConfigParser()
    parsed.read(creds_path)
    assert parsed["default"]["aws_access_key_id"] == "MINE"
    assert parsed["kennel"]["aws_access_key_id"] == first.admin_access_key_id
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    config = configparser.RawConfigParser()
    config.read(tmp_path / "aws" / "config")
    assert config["profile kennel"]["endpoint_url"] == "http://127.0.0.1:9999"


def test_credential_store_caches_and_sees_deactivation(
    env: tuple[Database, SecretBox, Settings], tmp_path: Path
) -> None:
    db, box, settings = env
    result = bootstrap(db, box, settings)
    now = [0.0]
    store = CredentialStore(db, box, ttl=2.0, clock=lambda: now[0])
    cred = store.lookup(result.admin_access_key_id)
    assert cred is not None and cred.principal.endswith(":user/admin")
    parsed = configparser.RawConfigParser()
    parsed.read(tmp_path / "aws" / "credentials")
    assert cred.secret_access_key == parsed["kennel"]["aws_secret_access_key"]
    assert store.lookup("AKIANOTAKEY000000000") is None

    with db.session() as session:
        key = session.scalars(select(AccessKey)).one()
        key.status = "Inactive"
    now[0] = 1.0
    assert store.lookup(result.admin_access_key_id) is not None  # still cached
    now[0] = 3.0
    assert store.lookup(result.admin_access_key_id) is None  # the cache expired

    store.touch(result.admin_access_key_id)
    with db.session() as session:
        assert session.scalars(select(AccessKey)).one().last_used_at is not None
