"""The base of every body kennel's own API and stack files take."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    """A request body or a block of one: an unknown field is refused, never ignored.

    A misspelt ``hyperparameter`` or ``max_paralel_training_jobs`` must fail with a 400
    that names it, not run a job the user did not ask for.
    """

    model_config = ConfigDict(extra="forbid")
