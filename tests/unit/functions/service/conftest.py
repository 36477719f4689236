"""A FunctionService over a real migrated SQLite database, a local artifact store and IAM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from tests.unit.functions.service._helpers import ACCOUNT, REGION, Ticker, code

from kennel._settings import Settings
from kennel.functions._service import FunctionService
from kennel.functions._spec import CreateFunctionSpec
from kennel.iam._keys import SecretBox
from kennel.iam._service import IamService
from kennel.store import ArtifactStore, Database


@pytest.fixture
def iam(db: Database) -> IamService:
    return IamService(db, SecretBox(Fernet.generate_key()), account_id=ACCOUNT, region=REGION)


@pytest.fixture
def role(iam: IamService) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return str(iam.create_role("fn-role", trust)["Role"]["Arn"])


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def service(
    db: Database, iam: IamService, artifacts: ArtifactStore, tmp_path: Path, ticker: Ticker
) -> FunctionService:
    settings = Settings(
        home=tmp_path,
        function_concurrency_limit=100,
        function_unreserved_min=10,
        function_max_zip_bytes=2**20,
    )
    return FunctionService(
        db, artifacts, iam, settings, account_id=ACCOUNT, region=REGION, monotonic=ticker
    )


@pytest.fixture
def make(service: FunctionService, role: str) -> Any:
    """Create a function: ``make("fn", Timeout=5)``."""

    def create(name: str, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": "python3.11",
            "Role": role,
            "Handler": "app.handler",
            "Code": code(),
            **fields,
        }
        return service.create_function(CreateFunctionSpec.model_validate(body))

    return create
