"""The storage suite's artifact part: the same behaviour from a local folder, an fsspec
memory store and S3 (a local S3 endpoint: moto's server, since AWS itself is not here)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest

from kennel.store import ArtifactStore


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A local S3 API on a free port of 127.0.0.1, with fake credentials for s3fs."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_CONFIG_FILE": "/nonexistent",
        }.items():
            patch.setenv(key, value)
        yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["local", "memory", "s3"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], ArtifactStore]:
    """Stores of one kind, by root name."""
    kind = request.param
    if kind == "local":
        return lambda name: ArtifactStore(str(tmp_path / name))
    if kind == "memory":
        run = uuid.uuid4().hex[:8]
        return lambda name: ArtifactStore(f"memory://kennel-{run}/{name}")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"kennel-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir(bucket)
    fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = endpoint
    request.addfinalizer(lambda: fsspec.config.conf.pop("s3", None))
    return lambda name: ArtifactStore(f"s3://{bucket}/{name}")


def test_put_list_open_delete(new_store: Callable[[str], ArtifactStore], tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "x.txt").write_text("hello")
    (src / "top.bin").write_bytes(b"\0" * 10)
    store = new_store("store")
    seen: list[tuple[int, int]] = []
    copied = store.put_dir(src, "sets/one", progress=lambda d, t: seen.append((d, t)))
    assert copied == 15 and seen[-1] == (2, 2)
    assert store.list("sets/one") == ["sets/one/a/b/x.txt", "sets/one/top.bin"]
    with store.open("sets/one/a/b/x.txt") as f:
        assert f.read() == b"hello"
    assert store.exists("sets/one/top.bin") and not store.exists("sets/two")
    store.delete("sets/one")
    assert store.list("sets/one") == [] and not store.exists("sets/one/top.bin")
    store.delete("sets/one")  # missing is fine


def test_the_uri_is_what_another_process_opens(new_store: Callable[[str], ArtifactStore]) -> None:
    store = new_store("shared")
    with store.open("x/y.txt", "wb") as f:
        f.write(b"every node reads this")
    with fsspec.open(store.uri("x/y.txt"), "rb") as f:
        assert f.read() == b"every node reads this"
    assert store.list("x") == ["x/y.txt"]
    assert store.list("nothing/here") == []


def test_keys_cannot_escape_the_root(new_store: Callable[[str], ArtifactStore]) -> None:
    store = new_store("store")
    for key in ("../outside", "a/../../b", "./x"):
        with pytest.raises(ValueError, match="must not contain"):
            store.open(key, "wb")


def test_stores_under_one_bucket_do_not_see_each_other(
    new_store: Callable[[str], ArtifactStore],
) -> None:
    one, two = new_store("one"), new_store("two")
    with one.open("k", "wb") as f:
        f.write(b"1")
    assert one.exists("k") and not two.exists("k") and two.list("") == []


def test_local_uris_are_paths(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    assert store.is_local and store.uri("sets/one") == str(tmp_path / "store" / "sets" / "one")
    assert not ArtifactStore("memory://kennel-x").is_local
