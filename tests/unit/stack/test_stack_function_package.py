"""A stack function's code folder is zipped reproducibly: same folder, same bytes."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import os
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from kennel._errors import ValidationError
from kennel.functions._package import ZIP_EPOCH, code_sha256, package, zip_folder

REPO = Path(__file__).resolve().parents[3]


def _folder(root: Path) -> Path:
    (root / "lib").mkdir(parents=True)
    (root / "lambda_function.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    (root / "lib" / "words.py").write_text("WORDS = ['a']\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "lambda_function.cpython-311.pyc").write_bytes(b"compiled")
    (root / "lib" / "__pycache__").mkdir()
    (root / "lib" / "__pycache__" / "words.cpython-311.pyc").write_bytes(b"compiled")
    (root / "stray.pyc").write_bytes(b"compiled")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def test_the_same_folder_gives_the_same_bytes_and_hash(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "code")
    first = zip_folder(folder)
    os.utime(folder / "lambda_function.py", (1, 1))  # a touched file is not a changed one
    (folder / "lib" / "words.py").chmod(0o600)  # nor is another umask
    second = package(folder)
    assert first == second
    assert code_sha256(first) == code_sha256(second)

    # A copy elsewhere, written in another order, is the same package too.
    other = tmp_path / "copy"
    (other / "lib").mkdir(parents=True)
    (other / "lib" / "words.py").write_text("WORDS = ['a']\n")
    (other / "lambda_function.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    assert zip_folder(other) == first


def test_entries_are_sorted_with_fixed_times_and_no_caches(tmp_path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(zip_folder(_folder(tmp_path / "code")))) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["lambda_function.py", "lib/words.py"]
    assert {i.date_time for i in infos} == {ZIP_EPOCH}
    assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}


def test_a_changed_or_added_file_changes_the_hash(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "code")
    before = code_sha256(zip_folder(folder))
    (folder / "lib" / "words.py").write_text("WORDS = ['b']\n")
    changed = code_sha256(zip_folder(folder))
    (folder / "lib" / "more.py").write_text("")
    added = code_sha256(zip_folder(folder))
    (folder / "lambda_function.py").chmod(0o755)
    executable = code_sha256(zip_folder(folder))
    assert len({before, changed, added, executable}) == 4


def test_code_sha256_is_lambdas_base64_digest() -> None:
    data = b"PK\x05\x06" + b"\0" * 18
    assert code_sha256(data) == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_missing_and_empty_folders_are_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"functions\.fn\.code .*missing does not exist"):
        package(tmp_path / "missing", what="functions.fn.code")
    (tmp_path / "empty" / "__pycache__").mkdir(parents=True)
    (tmp_path / "empty" / "__pycache__" / "x.pyc").write_bytes(b"")
    with pytest.raises(ValidationError, match="has no files"):
        package(tmp_path / "empty")


@pytest.fixture
def dog_breed(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    path = REPO / "examples" / "functions" / "dog_breed" / "lambda_function.py"
    spec = importlib.util.spec_from_file_location("dog_breed_lambda_function", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dog_breed_function_reads_a_direct_event_or_a_function_url_request(
    dog_breed: ModuleType,
) -> None:
    request = {"url": "https://example.com/dog.jpg"}
    assert dog_breed.image_request(request) == request
    url_event = {
        "version": "2.0",
        "rawPath": "/",
        "requestContext": {"http": {"method": "POST"}},
        "body": json.dumps(request),
        "isBase64Encoded": False,
    }
    assert dog_breed.image_request(url_event) == request
    encoded = {
        **url_event,
        "body": base64.b64encode(json.dumps(request).encode()).decode(),
        "isBase64Encoded": True,
    }
    assert dog_breed.image_request(encoded) == request
