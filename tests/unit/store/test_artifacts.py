from pathlib import Path

import fsspec
import pytest

from kennel.store import ArtifactStore


def test_put_list_open_delete(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "x.txt").write_text("hello")
    (src / "top.bin").write_bytes(b"\0" * 10)
    store = ArtifactStore(str(tmp_path / "store"))
    seen: list[tuple[int, int]] = []
    copied = store.put_dir(src, "sets/one", progress=lambda d, t: seen.append((d, t)))
    assert copied == 15 and seen[-1] == (2, 2)
    assert store.list("sets/one") == ["sets/one/a/b/x.txt", "sets/one/top.bin"]
    with store.open("sets/one/a/b/x.txt") as f:
        assert f.read() == b"hello"
    assert store.uri("sets/one") == str(tmp_path / "store" / "sets" / "one")
    store.delete("sets/one")
    assert store.list("sets/one") == [] and not store.exists("sets/one")
    store.delete("sets/one")  # missing is fine


def test_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with pytest.raises(ValueError):
        store.open("../outside", "wb")


def test_fsspec_urls_work(tmp_path: Path) -> None:
    store = ArtifactStore("memory://kennel-test")
    with store.open("x/y.txt", "wb") as f:
        f.write(b"in memory")
    assert store.list("x") == ["x/y.txt"]
    with fsspec.open(store.uri("x/y.txt"), "rb") as f:  # the URI is what other nodes open
        assert f.read() == b"in memory"
    assert not store.is_local
