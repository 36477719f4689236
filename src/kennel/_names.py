"""Resource names: SageMaker's rule, one check for every kind."""

from __future__ import annotations

import re

from kennel._errors import ValidationError

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def check_name(kind: str, name: str) -> None:
    """Refuse a name SageMaker would refuse, saying the rule."""
    if not NAME_PATTERN.match(name):
        raise ValidationError(
            f"{kind} name {name!r} is not valid.",
            hint="Use 1-63 letters, digits and hyphens, starting with a letter or digit "
            "(SageMaker's naming rule).",
        )
