"""Models as resources: a model.tar.gz kept in the artifact store, checked on the way in.

Creating a model copies the archive under ``models/<name>/`` (so deleting a job's output
cannot break an endpoint), unpacks it once into a private folder to check that a model
server could load it, and for the built-in trainer's image models exports ONNX and checks
its outputs against PyTorch's. Any failure leaves nothing behind.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kennel._errors import ConflictError, KennelError, NotFoundError, ValidationError
from kennel._names import check_name
from kennel._settings import Settings
from kennel.endpoints._spec import ModelSpec
from kennel.store import ArtifactStore, Database, Endpoint, EndpointConfig, Model, TrainingJob

log = logging.getLogger(__name__)

BUILTIN, CUSTOM = "builtin-image-classifier", "custom"


def arn(region: str, account: str, kind: str, name: str) -> str:
    """SageMaker's ARN form; SageMaker lower-cases names in ARNs."""
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def model_to_dict(row: Model) -> dict[str, Any]:
    return {
        "name": row.name,
        "arn": row.arn,
        "kind": row.kind,
        "artifact_uri": row.artifact_uri,
        "onnx_uri": row.onnx_uri,
        "source": row.source,
        "environment": dict(row.environment),
        "details": dict(row.details),
        "created_at": row.created_at.isoformat(),
    }


class ModelService:
    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        settings: Settings,
        *,
        account_id: str,
        region: str,
        on_created: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.settings = settings
        self.account_id = account_id
        self.region = region
        self.on_created = on_created
        """Called with a new model's name once its row exists (the server computes its
        monitoring baseline there); its failures are logged, never the create's."""

    # Reads ------------------------------------------------------------------

    def list_all(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(Model).order_by(Model.created_at)).all()
            return [model_to_dict(r) for r in rows]

    def describe(self, name: str) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(Model, name)
            if row is None:
                raise not_found(name)
            return model_to_dict(row)

    def exists(self, name: str) -> bool:
        with self.db.session() as session:
            return session.get(Model, name) is not None

    # Create / delete ---------------------------------------------------------

    def create(self, spec: ModelSpec) -> dict[str, Any]:
        check_name("Model", spec.name)
        source_uri, source = self._source(spec)
        prefix = f"models/{spec.name}"
        with self.db.session() as session:
            if session.get(Model, spec.name) is not None:
                raise _exists(spec.name)
        if self.artifacts.exists(prefix):
            self.artifacts.delete(prefix)  # left by a crash mid-create: no row owns it
        try:
            row = self._build(spec, source_uri, source, prefix)
            with self.db.session() as session:
                session.add(row)
        except IntegrityError:
            self.artifacts.delete(prefix)
            raise _exists(spec.name) from None
        except BaseException:
            self.artifacts.delete(prefix)
            raise
        if self.on_created is not None:
            try:
                self.on_created(spec.name)
            except Exception:
                log.exception("the hook after creating model %s failed", spec.name)
        return self.describe(spec.name)

    def delete(self, name: str) -> None:
        with self.db.session() as session:
            row = session.get(Model, name)
            if row is None:
                raise not_found(name)
            users = _endpoints_using(session, name)
            if users:
                raise ConflictError(
                    f"Model {name} is in use by endpoint(s) {', '.join(users)}.",
                    hint="Delete those endpoints or update them to another config first.",
                )
            session.delete(row)
        self.artifacts.delete(f"models/{name}")

    # Helpers ------------------------------------------------------------------

    def _source(self, spec: ModelSpec) -> tuple[str, str]:
        if spec.training_job is not None:
            with self.db.session() as session:
                job = session.get(TrainingJob, spec.training_job)
                if job is None:
                    raise ValidationError(
                        f"Training job {spec.training_job} does not exist.",
                        hint="See `kennel jobs list` for the jobs there are.",
                    )
                if job.status != "Completed" or not job.model_artifact_uri:
                    raise ValidationError(
                        f"Training job {job.name} is {job.status} and has no model to serve.",
                        hint="Create the model from a Completed job.",
                    )
                return job.model_artifact_uri, f"training-job/{job.name}"
        uri = str(spec.artifact_uri)
        if not _readable(uri):
            raise ValidationError(
                f"Model artifact {uri} does not exist or cannot be read.",
                hint="Upload the model.tar.gz first (`kennel models create --artifact FILE` "
                "does this), or give a training job.",
            )
        return uri, uri

    def _build(self, spec: ModelSpec, source_uri: str, source: str, prefix: str) -> Model:
        import fsspec

        from kennel.datasets import safe_extract

        key = f"{prefix}/model.tar.gz"
        details: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(dir=self.settings.tmp_dir) as tmp:
            archive = Path(tmp) / "model.tar.gz"
            with fsspec.open(source_uri, "rb") as src, archive.open("wb") as dst:
                _copy_stream(src, dst)
            model_dir = Path(tmp) / "model"
            model_dir.mkdir()
            try:
                safe_extract(archive, model_dir)
            except KennelError as error:
                raise ValidationError(
                    f"The model artifact is not a usable model.tar.gz: {error.message}",
                    hint="Pack the model dir's contents at the archive root (tar czf "
                    "model.tar.gz -C model_dir .).",
                ) from error
            details["size_bytes"] = archive.stat().st_size
            kind = _check_loadable(model_dir)
            onnx_uri = None
            if kind == BUILTIN:
                details.update(_describe_builtin(model_dir))
                onnx_uri, details["onnx"] = self._export_onnx(model_dir, prefix)
            with archive.open("rb") as src, self.artifacts.open(key, "wb") as dst:
                _copy_stream(src, dst)
        return Model(
            name=spec.name,
            arn=arn(self.region, self.account_id, "model", spec.name),
            artifact_uri=self.artifacts.uri(key),
            source=source,
            kind=kind,
            onnx_uri=onnx_uri,
            details=details,
            environment=dict(spec.environment),
        )

    def _export_onnx(self, model_dir: Path, prefix: str) -> tuple[str | None, dict[str, Any]]:
        """Export and check ONNX; a model whose export fails is served with PyTorch."""
        from kennel.endpoints._onnx import export_onnx

        try:
            exported = export_onnx(model_dir)
        except Exception as error:  # noqa: BLE001 - reported in the model's details
            log.warning("ONNX export of %s failed: %s", model_dir, error)
            return None, {"used": False, "error": f"{type(error).__name__}: {error}"}
        key = f"{prefix}/model.onnx"
        with Path(exported.path).open("rb") as src, self.artifacts.open(key, "wb") as dst:
            _copy_stream(src, dst)
        return self.artifacts.uri(key), {
            "used": True,
            "max_abs_diff": exported.max_abs_diff,
            "export_seconds": round(exported.seconds, 2),
        }


def _check_loadable(model_dir: Path) -> str:
    from kennel.endpoints._onnx import is_builtin_model

    if is_builtin_model(model_dir):
        return BUILTIN
    if (model_dir / "code" / "inference.py").is_file():
        return CUSTOM
    if any(p.suffix in (".pt", ".pth") for p in model_dir.iterdir() if p.is_file()):
        return CUSTOM  # the default model_fn loads a TorchScript file
    raise ValidationError(
        "The model artifact has neither code/inference.py nor a .pt/.pth model file, so "
        "no model server could load it.",
        hint="Add code/inference.py with model_fn(model_dir) (kennel models create "
        "--entry-point inference.py does this), or save a TorchScript model.pt.",
    )


def _describe_builtin(model_dir: Path) -> dict[str, Any]:
    import json

    config = json.loads((model_dir / "model-config.json").read_text())
    classes = json.loads((model_dir / "classes.json").read_text())
    return {
        "arch": config.get("arch"),
        "num_classes": len(classes),
        "image_size": config.get("image_size"),
        "classes_preview": classes[:10],
    }


def _endpoints_using(session: Any, model: str) -> list[str]:
    users: list[str] = []
    for endpoint in session.scalars(select(Endpoint)).all():
        for config_name in (endpoint.config_name, endpoint.pending_config_name):
            config = session.get(EndpointConfig, config_name) if config_name else None
            if config and any(v["model_name"] == model for v in config.variants):
                users.append(endpoint.name)
                break
    return users


def _readable(uri: str) -> bool:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri)
        return bool(fs.isfile(path))
    except (OSError, ValueError):
        return False
    except (ImportError, TypeError) as error:
        # fsspec knows the protocol but cannot use it here: its package is not installed
        # (gcs://, abfs://) or it needs options a URL cannot give (reference://, dbfs://).
        raise ValidationError(
            f"Model artifact {uri} cannot be read: {error}",
            hint="Give a local path or a URL of the server's artifact store (s3:// needs "
            "kennel[s3]).",
        ) from None


def _copy_stream(src: Any, dst: Any) -> None:
    while True:
        chunk = src.read(2**20)
        if not chunk:
            return
        dst.write(chunk)


def not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"Could not find model {name}.",
        hint="See `kennel models list`.",
    )


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"Model {name} already exists.",
        hint="Pick another name, or delete the model first.",
    )
