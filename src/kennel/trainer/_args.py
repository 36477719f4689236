"""Command line and SageMaker environment -> ``TrainerConfig``.

SageMaker passes every hyperparameter as a ``--name value`` string and every path as an
``SM_*`` variable, so paths default to their variables and each hyperparameter has a
parsing function that rejects bad values with a message naming the flag. Everything is
checked here, before a single tensor is allocated: a typo must cost seconds, not an
epoch. Unlike most SageMaker scripts this parser refuses unknown arguments, so a
misspelt hyperparameter fails the job instead of being silently ignored.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from kennel.trainer._failure import write_failure

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "small-cnn")
"""The same tuple as ``inference.ARCHITECTURES`` (a test keeps them equal): repeated
here so that parsing arguments does not import torch."""
OPTIMIZERS = ("sgd", "adam", "adamw")
AUGMENTATIONS = ("none", "flip", "standard")
FEATURE_CACHE_MODES = ("auto", "off")
"""``--feature-cache`` values that are not a location (anything else is a dir or URL)."""
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})

_PATHS: tuple[tuple[str, str, bool, str], ...] = (
    ("--model-dir", "SM_MODEL_DIR", True, "where model.pth, classes.json, ... are written"),
    ("--train", "SM_CHANNEL_TRAIN", True, "training images, one folder per class"),
    ("--valid", "SM_CHANNEL_VALID", True, "validation images, one folder per class"),
    ("--test", "SM_CHANNEL_TEST", False, "test images, evaluated once after training"),
    ("--output-data-dir", "SM_OUTPUT_DATA_DIR", False, "metrics.json is written here"),
    ("--checkpoint-dir", "SM_CHECKPOINT_DIR", False, "checkpoint.pt: saved each epoch, resumed"),
)


@dataclass(frozen=True)
class TrainerConfig:
    """One training run, fully validated."""

    model_dir: Path
    train: Path
    valid: Path
    test: Path | None = None
    output_data_dir: Path | None = None
    checkpoint_dir: Path | None = None
    package: Path | None = None
    arch: str = "resnet50"
    pretrained: bool = False
    weights: Path | None = None
    freeze_backbone: bool = False
    lr: float = 0.01
    batch_size: int = 32
    epochs: int = 5
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    image_size: int = 224
    augmentation: str = "standard"
    seed: int = 0
    workers: int = 0
    log_interval: int = 100
    feature_cache: str = "auto"

    @property
    def feature_cache_location(self) -> str | None:
        """The location ``--feature-cache`` names explicitly; None for auto or off."""
        return None if self.feature_cache in FEATURE_CACHE_MODES else self.feature_cache

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values (paths as strings), for the start line and metrics.json."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


class _Parser(argparse.ArgumentParser):
    """Also records usage errors as the SageMaker FailureReason before exiting with 2."""

    def __init__(self, environ: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.environ = environ

    def error(self, message: str) -> NoReturn:
        write_failure(f"Invalid arguments: {message}", self.environ)
        super().error(message)


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> TrainerConfig:
    """Parse ``argv`` with path defaults from ``environ``; exits 2 on any bad input."""
    parser = build_parser(environ)
    namespace = parser.parse_args(argv)
    values = vars(namespace)
    for flag, env, required, _ in _PATHS:
        if required and values[_dest(flag)] is None:
            parser.error(f"{flag} is required (or set the environment variable {env})")
    if values["pretrained"] and values["weights"] is not None:
        parser.error("--pretrained true and --weights are exclusive; pass one of them")
    if values["pretrained"] and values["arch"] == "small-cnn":
        parser.error("--arch small-cnn has no pretrained weights; use --pretrained false")
    config = TrainerConfig(**values)
    problem = feature_cache_problem(config)
    if config.feature_cache_location is not None and problem is not None:
        parser.error(
            f"--feature-cache {config.feature_cache} was asked for, but {problem}; "
            "use --feature-cache auto (or off) for this run"
        )
    return config


def feature_cache_problem(config: TrainerConfig) -> str | None:
    """Why backbone features of this run cannot be computed once and reused, or None.

    Cached features stand in for the backbone's output on every epoch, which is only
    true when neither the weights (a frozen backbone) nor the inputs (no augmentation)
    change between epochs. An explicit ``--feature-cache LOCATION`` with such a run is
    refused at once rather than silently ignored: whoever named a location expects
    head-only speed, and a trial running 1000x slower than planned is worse than an error.
    """
    if not config.freeze_backbone:
        return "the backbone trains (--freeze-backbone false), so its features change every step"
    if config.augmentation != "none":
        return (
            f"--augmentation {config.augmentation} changes the training images every epoch, "
            "so their features cannot be computed once"
        )
    return None


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The parser; separate so its ``--help`` can be inspected without parsing."""
    parser = _Parser(
        environ,
        prog="python -m kennel.trainer",
        description="Train an image classifier on class-folder images (SageMaker-compatible).",
        allow_abbrev=False,
    )
    paths = parser.add_argument_group("paths (default: the SageMaker environment variable)")
    for flag, env, _, help_text in _PATHS:
        paths.add_argument(
            flag, type=Path, default=_env_path(environ, env), help=f"{help_text} [{env}]"
        )
    paths.add_argument("--package", type=Path, help="also write model.tar.gz to this path")
    _add_hyperparameters(parser.add_argument_group("hyperparameters"))
    return parser


def _add_hyperparameters(group: argparse._ArgumentGroup) -> None:
    defaults = TrainerConfig(Path(), Path(), Path())
    add = _adder(group, defaults)
    boolean = "{true,false}"
    add("--arch", _choice(ARCHITECTURES), "network architecture", _braces(ARCHITECTURES))
    add("--pretrained", _bool, "start from torchvision's ImageNet weights (hub cache)", boolean)
    add("--weights", Path, "a local torchvision state_dict to start from (the head is replaced)")
    add("--freeze-backbone", _bool, "train only the classification head", boolean)
    add("--lr", _number(float, minimum=0.0, inclusive=False), "learning rate")
    add("--batch-size", _number(int, minimum=1), "images per step (per process under DDP)")
    add("--epochs", _number(int, minimum=1), "passes over the training set")
    add("--optimizer", _choice(OPTIMIZERS), "optimizer", _braces(OPTIMIZERS))
    add("--momentum", _number(float, minimum=0.0), "SGD momentum")
    add("--weight-decay", _number(float, minimum=0.0), "L2 weight decay")
    add("--image-size", _number(int, minimum=8, maximum=1024), "square input size in pixels")
    add("--augmentation", _choice(AUGMENTATIONS), "training augmentation", _braces(AUGMENTATIONS))
    add("--seed", _number(int, minimum=0), "seed for torch, numpy and random")
    add("--workers", _number(int, minimum=0), "DataLoader worker processes")
    add("--log-interval", _number(int, minimum=0), "print a step line every N steps (0: never)")
    add(
        "--feature-cache",
        _feature_cache,
        "frozen backbone + --augmentation none: compute backbone features once and train "
        "only the head on them; auto uses $KENNEL_FEATURE_CACHE_URL when set, off never, "
        "or a local dir / fsspec URL",
        "{auto,off,LOCATION}",
    )


def _adder(group: argparse._ArgumentGroup, defaults: TrainerConfig) -> Callable[..., None]:
    def add(
        flag: str, parse: Callable[[str], Any], help_text: str, metavar: str | None = None
    ) -> None:
        default = getattr(defaults, _dest(flag))
        help_text = f"{help_text} (default: {default})"
        group.add_argument(flag, type=parse, default=default, metavar=metavar, help=help_text)

    return add


def _braces(options: Sequence[str]) -> str:
    return "{" + ",".join(options) + "}"


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _env_path(environ: Mapping[str, str], name: str) -> Path | None:
    value = environ.get(name, "")
    return Path(value) if value else None


# Value parsers: argparse turns ArgumentTypeError into "argument --x: <message>", exit 2.


def _bool(text: str) -> bool:
    """true/false, 1/0 or yes/no in any case: what people and tuners write."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false (or 1/0, yes/no), got {text!r}")


def _feature_cache(text: str) -> str:
    """auto/off in any case, else a location kept verbatim (URLs and paths are case-sensitive)."""
    value = text.strip()
    if not value:
        raise argparse.ArgumentTypeError("expected auto, off or a cache location, got ''")
    return value.lower() if value.lower() in FEATURE_CACHE_MODES else value


def _choice(options: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() in options:
            return text.strip().lower()
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(options)}; got {text!r}")

    return parse


def _number(
    kind: type[int] | type[float],
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    inclusive: bool = True,
) -> Callable[[str], Any]:
    """A parser for ``kind`` within bounds; the message says which bound was missed."""
    name = "an integer" if kind is int else "a number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        too_low = minimum is not None and (value < minimum or (not inclusive and value == minimum))
        if too_low:
            bound = f">= {minimum}" if inclusive else f"> {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {text!r}")
        return value

    return parse
