"""SageMaker Runtime's InvokeEndpoint route, wire-compatible with boto3's sagemaker-runtime.

Endpoints arrive with the endpoints issue; until then no endpoint exists, and the answer is
exactly AWS's for an unknown endpoint.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from kennel._errors import ValidationError
from kennel.api._deps import Context

router = APIRouter(tags=["sagemaker-runtime"])


@router.post("/endpoints/{name}/invocations")
def invoke_endpoint(name: str, ctx: Context) -> Response:
    raise ValidationError(
        f"Endpoint {name} of account {ctx.account_id} not found.",
        aws_code="ValidationError",
        hint="List endpoints with: kennel endpoints list",
    )
