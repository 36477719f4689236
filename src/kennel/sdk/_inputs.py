"""Training inputs: SageMaker's ``TrainingInput``, and kennel's data sets as inputs.

A channel is a URI kennel's artifact store can read: a folder or file path on the
server's machine, ``file://``, ``s3://`` (with kennel's ``s3`` extra), or an artifact URI
that kennel gave back (a data set split, an upload). Every instance of a job gets every
channel whole, as SageMaker's default ``FullyReplicated`` distribution does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kennel._errors import ValidationError

DEFAULT_CHANNEL = "training"
"""The channel a single input goes to (SageMaker's name)."""


class TrainingInput:
    """One input channel of a training job (SageMaker's ``sagemaker.inputs.TrainingInput``).

    kennel copies (or links) the whole of ``s3_data`` into every instance's channel folder
    (``SM_CHANNEL_<NAME>``) before the script starts: SageMaker's File mode with
    ``FullyReplicated`` distribution. What needs another mode is refused by name.

    Args:
        s3_data: Where the data is: a path on the server's machine, ``file://``, ``s3://``
            or a kennel artifact URI (e.g. a data set split).
        distribution: ``"FullyReplicated"`` (the default: every instance gets all the
            data). ``"ShardedByS3Key"`` is refused: kennel does not split a channel between
            instances; shard in the script by ``RANK`` instead.
        compression: Only ``None``: compressed records are a Pipe-mode feature.
        content_type: Only ``None``: kennel hands the script the channel's files, with no
            ``SM_INPUT_DATA_CONFIG`` to read a content type from.
        record_wrapping: Only ``None`` (``"RecordIO"`` is a Pipe-mode feature).
        s3_data_type: Only ``"S3Prefix"`` (everything under the URI); manifest files are
            refused.
        input_mode: ``None``, ``"File"`` or ``"FastFile"`` (the script sees the same files
            in its channel folder); ``"Pipe"`` is refused.
        **unsupported: SageMaker's other arguments (``shuffle_config``,
            ``attribute_names``, ``target_attribute_name``, ``instance_groups``, ...): each is
            refused by name unless it is left at ``None``.

    Raises:
        ValidationError: An argument kennel cannot honour, named in the message.
    """

    def __init__(
        self,
        s3_data: str | Path,
        distribution: str | None = None,
        compression: str | None = None,
        content_type: str | None = None,
        record_wrapping: str | None = None,
        s3_data_type: str = "S3Prefix",
        input_mode: str | None = None,
        **unsupported: Any,
    ) -> None:
        if not str(s3_data):
            raise ValidationError("TrainingInput(s3_data=...) is empty.", hint="Give a URI.")
        self.s3_data = str(s3_data)
        if distribution not in (None, "FullyReplicated"):
            raise ValidationError(
                f"TrainingInput(distribution={distribution!r}) is not supported: kennel gives "
                "every instance the whole channel (FullyReplicated).",
                hint="Leave distribution out and shard in the script by RANK and WORLD_SIZE.",
            )
        if compression is not None:
            raise ValidationError(
                f"TrainingInput(compression={compression!r}) is not supported: compressed "
                "records are a Pipe-mode feature and kennel reads channels as files.",
                hint="Leave compression out; a channel may hold .gz files the script opens.",
            )
        if content_type is not None:
            raise ValidationError(
                f"TrainingInput(content_type={content_type!r}) is not supported: kennel "
                "hands the script the channel's files and no content type "
                "(there is no SM_INPUT_DATA_CONFIG).",
                hint="Leave content_type out, or pass it as a hyperparameter.",
            )
        if record_wrapping is not None:
            raise ValidationError(
                f"TrainingInput(record_wrapping={record_wrapping!r}) is not supported "
                "(RecordIO is a Pipe-mode feature).",
                hint="Leave record_wrapping out.",
            )
        if s3_data_type != "S3Prefix":
            raise ValidationError(
                f"TrainingInput(s3_data_type={s3_data_type!r}) is not supported: kennel reads "
                "everything under s3_data (S3Prefix); manifest files are not read.",
                hint="Point s3_data at the folder that holds the files.",
            )
        if input_mode not in (None, "File", "FastFile"):
            raise ValidationError(
                f"TrainingInput(input_mode={input_mode!r}) is not supported: kennel puts a "
                "channel's files in a folder before the script starts (File mode).",
                hint="Leave input_mode out and read the files from SM_CHANNEL_<NAME>.",
            )
        for name, value in unsupported.items():
            if value is not None:
                raise ValidationError(
                    f"TrainingInput({name}=...) is not supported by kennel.",
                    hint="kennel's channels are plain files (File mode, FullyReplicated); "
                    f"leave {name} out.",
                )

    def uri(self) -> str:
        """The channel's URI as the server takes it (an existing relative path is made
        absolute: the server does not share the caller's working folder)."""
        return channel_uri(self.s3_data)

    def __repr__(self) -> str:
        return f"TrainingInput(s3_data={self.s3_data!r})"


class DatasetInput:
    """A kennel data set as a training job's input: its splits (``train``, ``valid``,
    ``test``) become the channels of the same names.

    ``estimator.fit(DatasetInput("flowers"))`` is what ``kennel train --dataset flowers``
    does. It stands alone: to add channels beside a data set's, name the split URIs in a
    dict instead.

    Args:
        name: The data set's name (see ``kennel datasets list``).
    """

    def __init__(self, name: str) -> None:
        if not name:
            raise ValidationError("DatasetInput(name=...) is empty.", hint="Name a data set.")
        self.name = name

    def __repr__(self) -> str:
        return f"DatasetInput({self.name!r})"


Inputs = str | Path | TrainingInput | DatasetInput | dict[str, str | Path | TrainingInput]
"""What ``fit(inputs=...)`` takes."""


def channel_uri(value: str | Path) -> str:
    """A channel URI as the server takes it; a local relative path that exists here is
    resolved, since the server's working folder is not the caller's."""
    text = str(value)
    if "://" not in text and not Path(text).is_absolute() and Path(text).exists():
        return str(Path(text).resolve())
    return text


def inputs_to_spec(inputs: Inputs | None) -> dict[str, Any]:
    """The ``dataset``/``channels`` fields of a training job body for ``fit(inputs)``.

    Raises:
        ValidationError: ``inputs`` is of a kind ``fit`` does not take, or a channel of
            a dict is.
    """
    if inputs is None:
        return {}
    if isinstance(inputs, DatasetInput):
        return {"dataset": inputs.name}
    if isinstance(inputs, str | Path | TrainingInput):
        return {"channels": {DEFAULT_CHANNEL: _one_channel(DEFAULT_CHANNEL, inputs)}}
    if isinstance(inputs, dict):
        channels: dict[str, str] = {}
        for name, value in inputs.items():
            if not isinstance(name, str):
                raise ValidationError(f"fit(inputs=...): channel name {name!r} is not a string.")
            channels[name] = _one_channel(name, value)
        return {"channels": channels}
    raise ValidationError(
        f"fit(inputs=...) takes a URI, a TrainingInput, a DatasetInput or a dict of channel "
        f"name to URI/TrainingInput, not {type(inputs).__name__}.",
        hint="e.g. fit({'train': 's3://bucket/train', 'valid': TrainingInput('s3://...')})",
    )


def _one_channel(name: str, value: object) -> str:
    if isinstance(value, TrainingInput):
        return value.uri()
    if isinstance(value, str | Path):
        if not str(value):
            raise ValidationError(f"fit(inputs=...): channel {name!r} has an empty URI.")
        return channel_uri(value)
    if isinstance(value, DatasetInput):
        raise ValidationError(
            f"fit(inputs=...): channel {name!r} is a DatasetInput; a data set gives all the "
            "channels at once.",
            hint=f"Pass it alone: fit(DatasetInput({value.name!r})).",
        )
    raise ValidationError(
        f"fit(inputs=...): channel {name!r} is a {type(value).__name__}; give a URI or a "
        "TrainingInput."
    )
