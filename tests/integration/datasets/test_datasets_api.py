"""Data sets through the real API: create, list, describe, delete, and bad input."""

from __future__ import annotations

import http.server
import shutil
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._server import RunningServer
from tests._signing import assert_aws_error, send_signed

from kennel._client import KennelClient
from kennel._errors import KennelError
from kennel.datasets import make_demo


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "dogImages"
    make_demo(root, image_size=16, per_class=(4, 2, 2))
    return root


def zip_folder(folder: Path, target: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, prefix + file.relative_to(folder).as_posix())
    return target


def upload(api: KennelClient, name: str, archive: Path) -> dict[str, object]:
    response = api.request("PUT", f"/api/v1/datasets/{name}", upload=archive)
    assert response.status_code == 201
    return dict(response.json())


def assert_nothing_left(server: RunningServer, api: KennelClient, name: str) -> None:
    names = [d["name"] for d in api.get("/api/v1/datasets")["datasets"]]
    assert name not in names
    assert not (server.home / "artifacts" / "datasets" / name).exists()
    leftovers = [
        p for p in (server.home / "tmp").iterdir() if p.name.startswith(("dataset-", "upload-"))
    ]
    assert leftovers == []


def rejected(api: KennelClient, name: str, archive: Path) -> KennelError:
    with pytest.raises(KennelError) as caught:
        upload(api, name, archive)
    return caught.value


def test_demo_dataset_lifecycle(server: RunningServer, api: KennelClient) -> None:
    info = api.post("/api/v1/datasets", {"name": "digits", "demo": {"image_size": 32}})
    assert info["status"] == "Available"
    assert info["num_classes"] == 10
    assert info["classes"][0] == "001.zero"
    assert set(info["splits"]) == {"train", "valid", "test"}
    assert info["total_images"] == sum(
        sum(split["counts"].values()) for split in info["splits"].values()
    )
    stored = server.home / "artifacts" / "datasets" / "digits"
    assert len(list(stored.rglob("*.jpg"))) == info["total_images"]

    assert api.get("/api/v1/datasets/digits") == info
    assert "digits" in [d["name"] for d in api.get("/api/v1/datasets")["datasets"]]

    with pytest.raises(KennelError) as dup:
        api.post("/api/v1/datasets", {"name": "digits", "demo": {}})
    assert dup.value.status == 409 and dup.value.aws_code == "ResourceInUse"

    api.delete("/api/v1/datasets/digits")
    assert not stored.exists()
    with pytest.raises(KennelError) as gone:
        api.get("/api/v1/datasets/digits")
    assert gone.value.status == 404


def test_upload_zip_with_top_folder(
    server: RunningServer, api: KennelClient, demo_folder: Path, tmp_path: Path
) -> None:
    archive = zip_folder(demo_folder, tmp_path / "dogImages.zip", prefix="dogImages/")
    info = upload(api, "zipped", archive)
    assert info["status"] == "Available"
    assert info["splits"]["train"]["counts"]["003.two"] == 4
    assert info["splits"]["valid"]["counts"]["003.two"] == 2
    assert info["source"] == "upload"


def test_upload_tar_gz(api: KennelClient, demo_folder: Path, tmp_path: Path) -> None:
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(demo_folder, arcname=".")
    assert upload(api, "tarred", archive)["total_images"] == 80


def test_missing_split_is_rejected(
    server: RunningServer, api: KennelClient, demo_folder: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(demo_folder, bad)
    shutil.rmtree(bad / "valid")
    err = rejected(api, "nosplit", zip_folder(bad, tmp_path / "bad.zip"))
    assert err.status == 400 and "valid" in err.message
    assert_nothing_left(server, api, "nosplit")


def test_mismatched_classes_are_rejected(
    server: RunningServer, api: KennelClient, demo_folder: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(demo_folder, bad)
    shutil.rmtree(bad / "test" / "005.four")
    err = rejected(api, "mismatch", zip_folder(bad, tmp_path / "bad.zip"))
    assert err.status == 400 and "005.four" in err.message and "test" in err.message
    assert_nothing_left(server, api, "mismatch")


def test_corrupt_image_is_rejected(
    server: RunningServer, api: KennelClient, demo_folder: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(demo_folder, bad)
    victim = sorted((bad / "train" / "002.one").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:40])
    err = rejected(api, "corrupt", zip_folder(bad, tmp_path / "bad.zip"))
    assert err.status == 400 and victim.name in err.message
    assert_nothing_left(server, api, "corrupt")


def test_path_traversal_zip_is_rejected(
    server: RunningServer, api: KennelClient, demo_folder: Path, tmp_path: Path
) -> None:
    archive = zip_folder(demo_folder, tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("../../escaped.txt", "gotcha")
    err = rejected(api, "evil", archive)
    assert err.status == 400 and ".." in err.message
    assert not (server.home / "escaped.txt").exists()
    assert not list(server.home.rglob("escaped.txt"))
    assert_nothing_left(server, api, "evil")


def test_oversized_archive_is_rejected(
    server: RunningServer, api: KennelClient, demo_folder: Path, tmp_path: Path
) -> None:
    """The session server allows 64 MB unpacked; this zip inflates to 100 MB."""
    archive = zip_folder(demo_folder, tmp_path / "bomb.zip")
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/001.zero/zeros.jpg", b"\0" * (100 * 2**20))
    err = rejected(api, "bomb", archive)
    assert err.status == 413 and "KENNEL_DATASET_MAX" in (err.hint or "") + err.message
    assert_nothing_left(server, api, "bomb")


def test_not_an_archive_is_rejected(
    server: RunningServer, api: KennelClient, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"this is not an archive" * 10)
    err = rejected(api, "junk", junk)
    assert err.status == 400 and "archive" in err.message
    assert_nothing_left(server, api, "junk")


@pytest.mark.parametrize("name", ["has space", "-leading", "x" * 64, "under_score"])
def test_bad_names_are_rejected(api: KennelClient, name: str) -> None:
    with pytest.raises(KennelError) as caught:
        api.post("/api/v1/datasets", {"name": name, "demo": {}})
    assert caught.value.status == 400


def test_body_needs_exactly_one_source(api: KennelClient) -> None:
    with pytest.raises(KennelError) as caught:
        api.post("/api/v1/datasets", {"name": "x"})
    assert caught.value.status == 400 and "source_url" in caught.value.message


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP server on 127.0.0.1 serving a temporary folder."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_create_from_http_url(
    api: KennelClient, demo_folder: Path, http_folder: tuple[str, Path]
) -> None:
    base, root = http_folder
    zip_folder(demo_folder, root / "dogImages.zip", prefix="dogImages/")
    info = api.post("/api/v1/datasets", {"name": "fetched", "source_url": f"{base}/dogImages.zip"})
    assert info["status"] == "Available" and info["source"].endswith("/dogImages.zip")

    with pytest.raises(KennelError) as missing:
        api.post("/api/v1/datasets", {"name": "missing", "source_url": f"{base}/nope.zip"})
    assert missing.value.status == 400 and "404" in missing.value.message


def test_bad_json_and_empty_upload_are_clear_errors(
    server: RunningServer, api: KennelClient
) -> None:
    response = send_signed(server, "POST", "/api/v1/datasets", b'{"name": "x", ')
    message = assert_aws_error(response, 400, "ValidationException")
    assert "JSON" in message

    with pytest.raises(KennelError) as empty:
        api.request("PUT", "/api/v1/datasets/empty")
    assert empty.value.status == 400 and "empty" in empty.value.message
