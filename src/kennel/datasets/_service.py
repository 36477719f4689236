"""Data sets as resources: create (upload, URL, demo), list, describe, delete.

Creation is a transaction: the name is reserved with a ``Creating`` row, the files are
extracted and validated in a private staging folder, copied to the artifact store, and
only then is the row marked ``Available``. Any failure removes the row and the copied
files, so nothing half-written is left (a crash mid-way is cleaned up by ``recover``).
"""

from __future__ import annotations

import logging
import mimetypes
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from kennel._errors import (
    ConflictError,
    InternalError,
    KennelError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
)
from kennel._names import check_name
from kennel._settings import Settings
from kennel.datasets._archive import ExtractLimits, archive_kind, safe_extract
from kennel.datasets._demo import make_demo
from kennel.datasets._layout import (
    IMAGE_SUFFIXES,
    SPLITS,
    DatasetSummary,
    find_dataset_root,
    validate_layout,
)
from kennel.store import ArtifactStore, Database, Dataset

log = logging.getLogger(__name__)

CREATING, AVAILABLE = "Creating", "Available"
SAMPLE_MAX_BYTES = 8 * 2**20
"""A sample image is shown in a page: anything bigger is not a photo worth sending."""


def dataset_to_dict(row: Dataset) -> dict[str, Any]:
    return {
        "name": row.name,
        "status": row.status,
        "source": row.source,
        "artifact_uri": row.artifact_uri,
        "classes": list(row.classes),
        "num_classes": len(row.classes),
        "splits": row.splits,
        "total_images": row.total_images,
        "total_bytes": row.total_bytes,
        "created_at": row.created_at.isoformat(),
    }


class DatasetService:
    def __init__(self, db: Database, artifacts: ArtifactStore, settings: Settings) -> None:
        self.db = db
        self.artifacts = artifacts
        self.settings = settings
        self.limits = ExtractLimits(
            max_total_bytes=settings.dataset_max_bytes, max_files=settings.dataset_max_files
        )

    # Reads ------------------------------------------------------------------

    def list_all(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(Dataset).order_by(Dataset.name)).all()
            return [dataset_to_dict(r) for r in rows]

    def describe(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(Dataset, name)
            if row is None:
                raise _not_found(name)
            return dataset_to_dict(row)

    def sample(self, name: str, split: str, class_name: str, index: int) -> tuple[bytes, str]:
        """The ``index``-th image (in name order) of a class in a split, and its media type:
        what the console shows as a data set's sample images."""
        row = self.describe(name)
        if split not in SPLITS or class_name not in row["classes"]:
            raise NotFoundError(
                f"Data set {name!r} has no class {class_name!r} in a split {split!r}.",
                hint=f"Its splits are {', '.join(SPLITS)}; its classes: kennel datasets describe "
                f"{name}",
            )
        keys = [
            key
            for key in self.artifacts.list(f"datasets/{name}/{split}/{class_name}")
            if Path(key).suffix.lower() in IMAGE_SUFFIXES
        ]
        if index >= len(keys):
            raise NotFoundError(
                f"Class {class_name!r} of {name!r} has {len(keys)} images in {split}; "
                f"there is no image {index}.",
                hint="Images are numbered from 0.",
            )
        with self.artifacts.open(keys[index]) as f:
            data = f.read(SAMPLE_MAX_BYTES + 1)
        if len(data) > SAMPLE_MAX_BYTES:
            raise PayloadTooLargeError(
                f"{Path(keys[index]).name} is larger than {SAMPLE_MAX_BYTES} bytes; "
                "it is not sent as a sample."
            )
        media = mimetypes.guess_type(keys[index])[0] or "application/octet-stream"
        return data, media

    # Creation -----------------------------------------------------------------

    def create_from_archive(self, name: str, archive: Path, *, source: str) -> dict[str, Any]:
        """An uploaded (or downloaded) .zip / .tar[.gz] in the train/valid/test layout."""

        def fill(staging: Path) -> Path:
            if archive_kind(archive) is None:
                raise ValidationError(
                    f"{source} is not a .zip or .tar(.gz/.bz2/.xz) archive.",
                    hint="Pack the folder that holds train/ valid/ test/ into a zip or tar.gz.",
                )
            out = staging / "extracted"
            out.mkdir()
            safe_extract(archive, out, limits=self.limits)
            return find_dataset_root(out)

        return self._create(name, source, fill)

    def create_from_url(self, name: str, url: str) -> dict[str, Any]:
        """An archive (or, for fsspec URLs such as s3://, a folder) fetched by the server."""
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https", "s3", "gs", "gcs", "az", "abfs"):
            raise ValidationError(
                f"Cannot fetch {url!r}: the server fetches http(s):// and s3:// URLs.",
                hint="For a file on your machine use `kennel datasets create NAME --from PATH`, "
                "which uploads it.",
            )
        check_name("Data set", name)

        def fill(staging: Path) -> Path:
            if scheme in ("http", "https"):
                archive = self._download_http(url, staging)
            else:
                fetched = self._download_fsspec(url, staging)
                if fetched.is_dir():
                    return find_dataset_root(fetched)
                archive = fetched
            out = staging / "extracted"
            out.mkdir()
            safe_extract(archive, out, limits=self.limits)
            return find_dataset_root(out)

        return self._create(name, url, fill)

    def create_demo(self, name: str, *, image_size: int = 64, seed: int = 0) -> dict[str, Any]:
        """The demo set: scikit-learn's digits rendered as RGB images, 10 classes."""
        if not 8 <= image_size <= 512:
            raise ValidationError(
                f"image_size {image_size} is out of range.", hint="Use 8 to 512 pixels."
            )

        def fill(staging: Path) -> Path:
            root = staging / "demo"
            make_demo(root, image_size=image_size, seed=seed)
            return root

        return self._create(name, f"demo:digits?image_size={image_size}&seed={seed}", fill)

    def _create(self, name: str, source: str, fill: Callable[[Path], Path]) -> dict[str, Any]:
        check_name("Data set", name)
        self._reserve(name, source)
        key = f"datasets/{name}"
        staging = Path(tempfile.mkdtemp(prefix="dataset-", dir=self.settings.tmp_dir))
        try:
            summary = validate_layout(fill(staging))
            self.artifacts.delete(key)
            self.artifacts.put_dir(summary.root, key)
            return self._mark_available(name, key, summary)
        except BaseException as exc:
            self._undo(name, key)
            if isinstance(exc, KennelError | KeyboardInterrupt | SystemExit):
                raise
            log.exception("creating data set %s failed", name)
            raise InternalError(
                f"Creating data set {name!r} failed: {type(exc).__name__}: {exc}",
                hint="Nothing was kept; fix the cause and run the command again.",
            ) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _reserve(self, name: str, source: str) -> None:
        try:
            with self.db.session() as session:
                session.add(Dataset(name=name, status=CREATING, source=source))
        except IntegrityError as exc:
            raise ConflictError(
                f"Data set {name!r} already exists.",
                hint=f"Pick another name, or delete it first: kennel datasets delete {name}",
            ) from exc

    def _mark_available(self, name: str, key: str, summary: DatasetSummary) -> dict[str, Any]:
        info = summary.to_dict()
        with self.db.session() as session:
            row = session.get(Dataset, name)
            assert row is not None
            row.status = AVAILABLE
            row.artifact_uri = self.artifacts.uri(key)
            row.classes = list(summary.classes)
            row.splits = info["splits"]
            row.total_images = summary.total_images
            row.total_bytes = summary.total_bytes
            session.flush()
            return dataset_to_dict(row)

    def _undo(self, name: str, key: str) -> None:
        self.artifacts.delete(key)
        with self.db.session() as session:
            session.execute(delete(Dataset).where(Dataset.name == name))

    def recover(self) -> list[str]:
        """Remove data sets a crashed server left half-created; returns their names."""
        with self.db.session() as session:
            names = list(session.scalars(select(Dataset.name).where(Dataset.status == CREATING)))
        for name in names:
            log.warning("removing data set %s left half-created by an earlier run", name)
            self._undo(name, f"datasets/{name}")
        return names

    # Downloads ----------------------------------------------------------------

    def _download_http(self, url: str, staging: Path) -> Path:
        target = staging / "download"
        limit = self.settings.dataset_max_bytes
        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
                if response.status_code != 200:
                    raise ValidationError(
                        f"Fetching {url} answered HTTP {response.status_code}.",
                        hint="Check the URL is reachable from the server.",
                    )
                size = 0
                with target.open("wb") as out:
                    for chunk in response.iter_bytes(2**20):
                        size += len(chunk)
                        if size > limit:
                            raise _archive_too_large(url, limit)
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise ValidationError(
                f"Could not fetch {url}: {exc}", hint="Check the URL is reachable from the server."
            ) from exc
        return target

    def _download_fsspec(self, url: str, staging: Path) -> Path:
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(url)
            target = staging / "download"
            if fs.isdir(path):
                fs.get(path.rstrip("/") + "/", str(target), recursive=True)
            else:
                if fs.size(path) > self.settings.dataset_max_bytes:
                    raise _archive_too_large(url, self.settings.dataset_max_bytes)
                fs.get(path, str(target))
        except (ImportError, FileNotFoundError, OSError) as exc:
            raise ValidationError(
                f"Could not fetch {url}: {exc}",
                hint="For s3:// install kennel[s3] and give the server credentials for the bucket.",
            ) from exc
        return target

    # Deletion -----------------------------------------------------------------

    def delete(self, name: str) -> None:
        with self.db.session() as session:
            row = session.get(Dataset, name)
            if row is None:
                raise _not_found(name)
            if row.status == CREATING:
                raise ConflictError(
                    f"Data set {name!r} is still being created.", hint="Wait for it, then delete."
                )
            session.delete(row)
        self.artifacts.delete(f"datasets/{name}")


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"Data set {name!r} does not exist.", hint="See the names with: kennel datasets list"
    )


def _archive_too_large(url: str, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{url} is larger than the data set limit of {limit} bytes.",
        hint="Raise KENNEL_DATASET_MAX_BYTES on the server if this is expected.",
    )
