"""The instance-type catalog: what each SageMaker ML instance type holds and costs.

Prices are AWS's on-demand training prices in us-east-1 (USD per hour), so a job's
recorded cost reads like the bill it would have run up on SageMaker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kennel._errors import ValidationError


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: float
    gpus: int
    gpu_model: str | None
    price_per_hour: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_TYPES = [
    InstanceType("ml.t3.medium", 2, 4, 0, None, 0.05),
    InstanceType("ml.t3.large", 2, 8, 0, None, 0.10),
    InstanceType("ml.t3.xlarge", 4, 16, 0, None, 0.20),
    InstanceType("ml.m5.large", 2, 8, 0, None, 0.115),
    InstanceType("ml.m5.xlarge", 4, 16, 0, None, 0.23),
    InstanceType("ml.m5.2xlarge", 8, 32, 0, None, 0.461),
    InstanceType("ml.m5.4xlarge", 16, 64, 0, None, 0.922),
    InstanceType("ml.m5.12xlarge", 48, 192, 0, None, 2.765),
    InstanceType("ml.c5.large", 2, 4, 0, None, 0.102),
    InstanceType("ml.c5.xlarge", 4, 8, 0, None, 0.204),
    InstanceType("ml.c5.2xlarge", 8, 16, 0, None, 0.408),
    InstanceType("ml.c5.4xlarge", 16, 32, 0, None, 0.816),
    InstanceType("ml.c5.9xlarge", 36, 72, 0, None, 1.836),
    InstanceType("ml.g4dn.xlarge", 4, 16, 1, "T4", 0.736),
    InstanceType("ml.g4dn.2xlarge", 8, 32, 1, "T4", 0.94),
    InstanceType("ml.g4dn.12xlarge", 48, 192, 4, "T4", 4.89),
    InstanceType("ml.g5.xlarge", 4, 16, 1, "A10G", 1.408),
    InstanceType("ml.p3.2xlarge", 8, 61, 1, "V100", 3.825),
    InstanceType("ml.p3.8xlarge", 32, 244, 4, "V100", 14.688),
]

CATALOG: dict[str, InstanceType] = {t.name: t for t in _TYPES}


def instance_type(name: str) -> InstanceType:
    """Look a type up; an unknown name is refused with the closest valid ones."""
    found = CATALOG.get(name)
    if found is None:
        family = name.rsplit(".", 1)[0]
        near = [n for n in CATALOG if n.startswith(family)] or list(CATALOG)[:6]
        raise ValidationError(
            f"Unknown instance type {name!r}.",
            hint=f"Use one of: {', '.join(near)} (see `kennel instance-types`).",
        )
    return found
