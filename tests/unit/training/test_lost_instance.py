"""The reason a job gives when one of its instances' Ray actors died with its node."""

from __future__ import annotations

from dataclasses import dataclass

from kennel.training._runner import _lost_instance


@dataclass
class _Id:
    value: str

    def hex(self) -> str:
        return self.value


@dataclass
class _Actor:
    _actor_id: _Id


class _ActorGone(Exception):
    actor_id = "bb"


def test_the_reason_names_the_lost_host_and_what_to_do() -> None:
    actors = [_Actor(_Id("aa")), _Actor(_Id("bb"))]
    reason = _lost_instance(_ActorGone("node died\nmore detail"), ["algo-1", "algo-2"], actors)
    assert reason.startswith("InternalServerError: algo-2 was lost while training")
    assert "node died" in reason and "more detail" not in reason
    assert "Start the job again" in reason


def test_an_unknown_actor_is_an_instance() -> None:
    reason = _lost_instance(RuntimeError(""), ["algo-1"], [_Actor(_Id("aa"))])
    assert "an instance was lost" in reason and "RuntimeError" in reason
