"""The default handler functions, as the SageMaker PyTorch toolkit defines them.

A model dir whose ``code/inference.py`` lacks a function (or that has no code at all) is
served with these: a TorchScript ``model.pt``/``model.pth``; JSON, CSV and NPY bodies in;
JSON, NPY or CSV out by Accept. torch and numpy are imported inside the functions, so a
model whose own code does not use torch never pays for importing it (seconds).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kennel.endpoints._errors import (
    ModelLoadError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)
from kennel.endpoints._media import CSV, JSON, NPY, media_type


def default_model_fn(model_dir: str) -> Any:
    """Load ``model.pt``/``model.pth`` if it is TorchScript; other models need a model_fn."""
    import torch

    path = _model_file(Path(model_dir))
    try:
        with warnings.catch_warnings():
            # torch deprecates TorchScript, but it is what the default model_fn loads; the
            # warning is not something a model's user can act on.
            warnings.simplefilter("ignore", FutureWarning)
            model = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call, unused-ignore]
    except RuntimeError as error:
        raise ModelLoadError(
            f"{path.name} in {model_dir} is not a TorchScript model, so it needs a model_fn",
            hint=(
                "Add code/inference.py with model_fn(model_dir) that builds the network and "
                "loads the weights, or save the model with torch.jit.script(model).save(...)."
            ),
        ) from error
    return model.eval()


def _model_file(model_dir: Path) -> Path:
    for name in ("model.pt", "model.pth"):
        if (model_dir / name).is_file():
            return model_dir / name
    found = sorted(p for p in model_dir.iterdir() if p.suffix in (".pt", ".pth") and p.is_file())
    if len(found) != 1:
        raise ModelLoadError(
            f"the default model_fn needs exactly one .pt or .pth file in {model_dir}, "
            f"found {[p.name for p in found]}",
            hint="Add code/inference.py with a model_fn(model_dir), or keep one model file.",
        )
    return found[0]


def default_input_fn(body: bytes | str, content_type: str) -> Any:
    """JSON (nested lists) or CSV -> float32 tensor; NPY -> tensor of the array's dtype."""
    import numpy as np
    import torch

    kind = media_type(content_type)
    if kind == JSON:
        array = np.asarray(json.loads(body), dtype=np.float32)
    elif kind == CSV:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        array = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2)
    elif kind == NPY:
        raw = body.encode("utf-8") if isinstance(body, str) else body
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    else:
        raise UnsupportedContentTypeError(
            f"content type {content_type!r} is not supported by the default input_fn "
            f"(supported: {JSON}, {NPY}, {CSV}); add input_fn(body, content_type) to "
            "code/inference.py to decode it"
        )
    return torch.from_numpy(array)


def default_predict_fn(data: Any, model: Any) -> Any:
    """``model(data)`` without autograd bookkeeping."""
    import torch

    with torch.no_grad():
        return model(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """The prediction as JSON (nested lists), NPY or CSV: the first Accept type supported."""
    for part in accept.split(","):
        kind = media_type(part)
        if kind in (JSON, NPY, CSV):
            return _ENCODERS[kind](_as_numpy(prediction)), kind
    raise UnsupportedAcceptError(
        f"accept type {accept!r} is not supported by the default output_fn "
        f"(supported: {JSON}, {NPY}, {CSV}); add output_fn(prediction, accept) to "
        "code/inference.py to encode it"
    )


def _as_numpy(prediction: Any) -> Any:
    """A tensor (or anything array-like) as a numpy array."""
    import numpy as np

    if hasattr(prediction, "detach"):
        return prediction.detach().cpu().numpy()
    return np.asarray(prediction)


def _encode_json(array: Any) -> bytes:
    return json.dumps(array.tolist()).encode("utf-8")


def _encode_npy(array: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _encode_csv(array: Any) -> bytes:
    import numpy as np

    buffer = io.StringIO()
    np.savetxt(buffer, np.atleast_2d(array), delimiter=",", fmt="%.9g")
    return buffer.getvalue().encode("utf-8")


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    JSON: _encode_json,
    NPY: _encode_npy,
    CSV: _encode_csv,
}
