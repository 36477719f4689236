"""``PUT /api/v1/uploads/{filename}``: a file into the artifact store (source folders, models)."""

from __future__ import annotations

import re
import shutil
import uuid
from typing import Any

from fastapi import APIRouter

from kennel._errors import ValidationError
from kennel.api._authz import authorize
from kennel.api._deps import Context, RawBody

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])

_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@router.put(
    "/{filename}", status_code=201, dependencies=[authorize("kennel:PutUpload", path="filename")]
)
def upload(filename: str, body: RawBody, ctx: Context) -> dict[str, Any]:
    if not _FILENAME.match(filename):
        raise ValidationError(
            f"Upload name {filename!r} is not valid.",
            hint="Use letters, digits, '.', '-' and '_' (e.g. sourcedir.tar.gz).",
        )
    if body.size == 0:
        raise ValidationError("The upload is empty.", hint="Send the file as the body.")
    key = f"uploads/{uuid.uuid4().hex}/{filename}"
    with ctx.artifacts.open(key, "wb") as out:
        shutil.copyfileobj(body.file, out, 2**20)
    return {"uri": ctx.artifacts.uri(key), "size": body.size}
