"""The CLI's --capture options and the stack file's data_capture become the API's block."""

from __future__ import annotations

import pytest

from kennel._errors import ValidationError
from kennel.cli.endpoints import _capture_text, _data_capture
from kennel.stack._sagemaker import _data_capture as stack_capture
from kennel.stack._sagemaker import config_name
from kennel.stack._types import fingerprint


def test_capture_flags_make_the_data_capture_block() -> None:
    assert _data_capture(None, None, None) is None
    assert _data_capture(50, None, None) == {"enable_capture": True, "sampling_percentage": 50}
    assert _data_capture(20, "output, INPUT", 4096) == {
        "enable_capture": True,
        "sampling_percentage": 20,
        "capture_options": ["Input", "Output"],
        "max_payload_bytes": 4096,
    }
    assert _data_capture(5, "Output", None)["capture_options"] == ["Output"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("percentage", "options", "max_bytes"),
    [(None, "Input", None), (None, None, 10), (10, "Headers", None), (10, ",", None)],
)
def test_capture_flags_refuse_what_makes_no_sense(
    percentage: int | None, options: str | None, max_bytes: int | None
) -> None:
    with pytest.raises(ValidationError):
        _data_capture(percentage, options, max_bytes)


def test_describe_says_what_is_captured() -> None:
    assert _capture_text(None) == "off"
    block = {
        "enable_capture": True,
        "sampling_percentage": 20,
        "capture_options": ["Input", "Output"],
        "max_payload_bytes": 1 << 20,
    }
    assert (
        _capture_text(block) == "20% of requests, Input+Output, payloads over 1.0 MB by reference"
    )


def test_a_stack_without_capture_keeps_its_config_name() -> None:
    variants = [{"variant_name": "AllTraffic", "model_name": "m"}]
    assert config_name("dogs", variants) == f"dogs-{fingerprint({'variants': variants})[:8]}"
    capture = stack_capture({"data_capture": {"sampling_percentage": 10}})
    assert capture is not None and capture["capture_options"] == ["Input", "Output"]
    assert config_name("dogs", variants, capture) != config_name("dogs", variants)
    assert stack_capture({}) is None
