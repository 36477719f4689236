from pathlib import Path

import pytest

from kennel._settings import DEFAULT_PORT, load_settings


def test_defaults_derive_from_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("KENNEL_PORT", "KENNEL_DATABASE_URL", "KENNEL_ARTIFACT_URL", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KENNEL_HOME", str(tmp_path))
    settings = load_settings()
    assert settings.home == tmp_path
    assert settings.port == DEFAULT_PORT
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'kennel.db'}"
    assert settings.resolved_artifact_url == str(tmp_path / "artifacts")
    assert settings.resolved_endpoint_url == f"http://127.0.0.1:{DEFAULT_PORT}"
    assert settings.ray_address is None


def test_env_and_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KENNEL_HOME", str(tmp_path))
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    monkeypatch.delenv("KENNEL_PORT", raising=False)
    (tmp_path / "config.toml").write_text('port = 9001\nregion = "eu-west-1"\n')
    settings = load_settings()
    assert (settings.port, settings.region) == (9001, "eu-west-1")
    assert settings.ray_address == "10.0.0.1:6379"
    monkeypatch.setenv("KENNEL_PORT", "9002")
    assert load_settings().port == 9002  # the environment wins over the file
    assert load_settings(port=9003).port == 9003  # and an explicit option over both


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KENNEL_HOME", str(tmp_path))
    monkeypatch.setenv("KENNEL_PORT", "99999")
    with pytest.raises(ValueError, match="port"):
        load_settings()
