"""Shared by the FunctionService tests: the account, a test clock, deployment packages."""

from __future__ import annotations

import base64
import io
import zipfile

ACCOUNT = "123456789012"
REGION = "us-east-1"
HANDLER = "def handler(event, context):\n    return {'echo': event}\n"


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def code(text: str = HANDLER, module: str = "app") -> dict[str, str]:
    return {"ZipFile": base64.b64encode(zip_of({f"{module}.py": text})).decode()}
