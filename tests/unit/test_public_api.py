"""The public surface is deliberate: these lists change only on purpose."""

import importlib
import inspect
import subprocess
import sys

import pytest

import kennel

TOP_LEVEL = [
    "DEFAULT_PORT",
    "AccessDeniedError",
    "AuthError",
    "ConflictError",
    "InternalError",
    "InvalidSignatureError",
    "KennelError",
    "MissingAuthenticationTokenError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "Settings",
    "UnexpectedStatusError",
    "UnrecognizedClientError",
    "ValidationError",
    "__version__",
    "CategoricalParameter",
    "ContinuousParameter",
    "DatasetInput",
    "Estimator",
    "HyperparameterTuner",
    "IntegerParameter",
    "Predictor",
    "PyTorch",
    "Session",
    "TrainingInput",
]

# The SDK's modules, named as the SageMaker Python SDK names them.
SDK_MODULES = {
    "kennel.session": ["Session"],
    "kennel.estimator": ["Estimator", "TrainingJob"],
    "kennel.pytorch": ["PyTorch"],
    "kennel.inputs": ["DatasetInput", "TrainingInput"],
    "kennel.predictor": ["Predictor"],
    "kennel.serializers": [
        "BaseSerializer",
        "CSVSerializer",
        "DataSerializer",
        "IdentitySerializer",
        "JSONSerializer",
        "NumpySerializer",
        "SimpleBaseSerializer",
    ],
    "kennel.deserializers": [
        "BaseDeserializer",
        "BytesDeserializer",
        "CSVDeserializer",
        "JSONDeserializer",
        "NumpyDeserializer",
        "SimpleBaseDeserializer",
        "StreamDeserializer",
        "StringDeserializer",
    ],
    "kennel.tuner": [
        "CategoricalParameter",
        "ContinuousParameter",
        "HyperbandStrategyConfig",
        "HyperparameterTuner",
        "HyperparameterTuningJobAnalytics",
        "IntegerParameter",
        "ParameterRange",
        "StrategyConfig",
        "TuningJobCompletionCriteriaConfig",
        "WarmStartConfig",
        "WarmStartTypes",
    ],
    "kennel.debugger": [
        "CollectionConfig",
        "DebuggerHookConfig",
        "Hook",
        "HookConfig",
        "ProfilerConfig",
        "ProfilerRule",
        "Rule",
        "Trial",
        "get_hook",
        "modes",
        "read_trial",
        "rule_configs",
    ],
}


def test_public_names() -> None:
    assert sorted(kennel.__all__) == sorted(TOP_LEVEL)
    for name in kennel.__all__:
        assert getattr(kennel, name) is not None


@pytest.mark.parametrize("module", sorted(SDK_MODULES))
def test_sdk_module_names(module: str) -> None:
    loaded = importlib.import_module(module)
    assert sorted(loaded.__all__) == sorted(SDK_MODULES[module])
    for name in loaded.__all__:
        assert getattr(loaded, name) is not None


def test_top_level_sdk_names_are_the_modules_own() -> None:
    from kennel.predictor import Predictor
    from kennel.pytorch import PyTorch
    from kennel.tuner import HyperparameterTuner

    assert kennel.PyTorch is PyTorch
    assert kennel.Predictor is Predictor
    assert kennel.HyperparameterTuner is HyperparameterTuner
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = kennel.Nope  # type: ignore[attr-defined]


def test_import_kennel_does_not_load_the_sdk_or_torch() -> None:
    code = (
        "import sys, kennel\n"
        "loaded = [m for m in ('kennel.sdk._estimator', 'torch', 'pandas') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_sdk_classes_have_docstrings() -> None:
    """The SDK's docstrings are what an IDE shows; every public class and method has one."""
    missing = []
    for module, names in SDK_MODULES.items():
        loaded = importlib.import_module(module)
        for name in names:
            value = getattr(loaded, name)
            if not isinstance(value, type):
                continue
            if not (value.__doc__ or "").strip():
                missing.append(f"{module}.{name}")
            for attr, member in vars(value).items():
                if attr.startswith("_") or not callable(member):
                    continue
                # inspect.getdoc finds an overridden method's docstring on its base class
                if not (inspect.getdoc(getattr(value, attr)) or "").strip():
                    missing.append(f"{module}.{name}.{attr}")
    assert missing == []
