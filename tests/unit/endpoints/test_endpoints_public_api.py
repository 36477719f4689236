"""The model server's public surface is deliberate: this list changes only on purpose."""

import subprocess
import sys

import kennel.endpoints


def test_public_names() -> None:
    assert sorted(kennel.endpoints.__all__) == sorted(
        [
            "MAX_BODY_BYTES",
            "HandlerError",
            "HandlerFunctions",
            "Handlers",
            "InferenceRunner",
            "Invocation",
            "ModelLoadError",
            "ModelNotReadyError",
            "ModelServerApp",
            "ModelStatus",
            "Prediction",
            "RequestContext",
            "Runner",
            "ServerOptions",
            "UnsupportedAcceptError",
            "UnsupportedContentTypeError",
            "create_app",
            "load_handlers",
            "serve_model",
        ]
    )
    for name in kennel.endpoints.__all__:
        assert hasattr(kennel.endpoints, name)


def test_importing_the_model_server_does_not_import_torch() -> None:
    """A model whose code does not use torch starts in well under a second."""
    code = "import sys, kennel.endpoints._cli_support; print('torch' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert found.stdout.strip() == "False"
