"""What a running server is made of, built once and handed to the app (no globals)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kennel._settings import Settings
from kennel.cluster import RayCluster
from kennel.datasets._service import DatasetService
from kennel.endpoints._autoscaler import Autoscaler
from kennel.endpoints._capture import CaptureWriter
from kennel.endpoints._models import ModelService
from kennel.endpoints._scaling import ScalingService
from kennel.endpoints._service import EndpointService
from kennel.functions._dispatch import FunctionRuntime
from kennel.functions._service import FunctionService
from kennel.iam._authorizer import AccessLog, Authorizer
from kennel.iam._bootstrap import ADMIN_USER, BootstrapResult, bootstrap, write_aws_config
from kennel.iam._credentials import CredentialStore
from kennel.iam._keys import SecretBox
from kennel.iam._service import IamService
from kennel.monitoring._service import MonitoringService
from kennel.notebooks import NotebookService
from kennel.stack._record import StackService
from kennel.store import ArtifactStore, Database
from kennel.training import TrainingService
from kennel.tuning import TuningService


@dataclass
class ServerContext:
    settings: Settings
    db: Database
    artifacts: ArtifactStore
    credentials: CredentialStore
    account: BootstrapResult
    ray: RayCluster
    datasets: DatasetService
    training: TrainingService
    tuning: TuningService
    models: ModelService
    monitoring: MonitoringService
    endpoints: EndpointService
    scaling: ScalingService
    autoscaler: Autoscaler
    functions: FunctionService
    function_runtime: FunctionRuntime
    notebooks: NotebookService
    stacks: StackService
    iam: IamService
    authorizer: Authorizer
    access_log: AccessLog
    capture: CaptureWriter
    """Writes the data plane's sampled requests to the artifact store (data capture)."""
    started_at: float = field(default_factory=time.time)
    pid: int = field(default_factory=os.getpid)

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def region(self) -> str:
        return self.account.region


def build_context(settings: Settings) -> ServerContext:
    """Open the home folder: migrate the database, bootstrap the account, recover leftovers."""
    for folder in (settings.home, settings.tmp_dir, settings.log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    box = SecretBox.from_file_or_env(settings.home / "master.key", settings.master_key)
    account = bootstrap(db, box, settings)
    iam = IamService(
        db,
        box,
        account_id=account.account_id,
        region=account.region,
        min_session_seconds=settings.sts_min_session_seconds,
    )
    iam.ensure_builtins(ADMIN_USER)
    access_log = AccessLog(db)
    if settings.write_aws_profile:
        write_aws_config(settings)
    artifacts = ArtifactStore(settings.resolved_artifact_url)
    datasets = DatasetService(db, artifacts, settings)
    restarted_at = datetime.now(UTC)  # what a previous server left running ends now
    datasets.recover()
    ray = RayCluster(settings.ray_address)
    training = TrainingService(db, artifacts, settings, ray)
    training.recover(restarted_at)
    tuning = TuningService(db, settings, training)
    tuning.recover(restarted_at)
    monitoring = MonitoringService(db, artifacts, settings)
    monitoring.recover()
    models = ModelService(
        db,
        artifacts,
        settings,
        account_id=account.account_id,
        region=account.region,
        on_created=monitoring.on_model_created,
    )
    endpoints = EndpointService(
        db,
        artifacts,
        settings,
        ray,
        models,
        account_id=account.account_id,
        region=account.region,
    )
    endpoints.recover(restarted_at)
    scaling = ScalingService(
        db, endpoints, settings, account_id=account.account_id, region=account.region
    )
    functions = FunctionService(
        db, artifacts, iam, settings, account_id=account.account_id, region=account.region
    )
    scaling.recover(restarted_at)
    functions.recover()
    return ServerContext(
        settings=settings,
        db=db,
        artifacts=artifacts,
        credentials=CredentialStore(db, box, generation=lambda: iam.generation),
        account=account,
        ray=ray,
        datasets=datasets,
        training=training,
        tuning=tuning,
        models=models,
        monitoring=monitoring,
        endpoints=endpoints,
        scaling=scaling,
        autoscaler=Autoscaler(endpoints, scaling, settings),
        functions=functions,
        function_runtime=FunctionRuntime(
            functions,
            iam,
            ray,
            settings,
            db,
            account_id=account.account_id,
            region=account.region,
        ),
        notebooks=NotebookService(
            db, settings, account_id=account.account_id, region=account.region
        ),
        stacks=StackService(db, account_id=account.account_id, region=account.region),
        iam=iam,
        authorizer=Authorizer(iam, access_log),
        access_log=access_log,
        capture=CaptureWriter(artifacts),
    )
