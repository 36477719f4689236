"""Stack files on hostile input: loaded and put in order, or refused with a ValidationError.

Seeds are the stack files in ``examples/``, mutated as text and as YAML data (a member
swapped for an arbitrary value), plus YAML that stresses the loader itself: deep nesting,
aliases that expand exponentially or refer to themselves, tags, odd scalars.
``load_stack`` then ``build_graph`` (what ``kennel plan`` and ``kennel up`` do before
they talk to a server) must give a StackFile and a Graph, or a ValidationError (400).
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from tests._server import REPO
from tests.fuzz._fuzz import containers, fuzz_settings, json_values, mutated_text, quick

from kennel._errors import ValidationError
from kennel.stack._engine import Graph, build_graph, default_handlers
from kennel.stack._schema import StackFile, load_stack

STACK_FILES = sorted((REPO / "examples").rglob("stack.yaml"))
SEEDS = [path.read_text() for path in STACK_FILES]
SEED_DATA = [yaml.safe_load(text) for text in SEEDS]
HANDLERS = default_handlers()
_numbers = itertools.count()


def _laughs(levels: int) -> str:
    """The "billion laughs": each level an alias list of ten of the previous one (in a
    policy document, which the schema takes as any JSON)."""
    lines = ["name: laughs", "roles:", "  r:", "    policies:", "      p:", "        l0: &a0 [lol]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"        l{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


stress_texts = st.one_of(
    st.integers(90, 1500).map(lambda n: "name: deep\noutputs: " + "[" * n + "]" * n),
    st.integers(90, 1500).map(
        lambda n: "name: deep\nroles: {r: {policies: {p: " + "{a: " * n + "1" + "}" * n + "}}}"
    ),
    st.integers(4, 9).map(_laughs),
    st.sampled_from(
        [
            "name: loop\nroles:\n  r:\n    policies:\n      p: &x {self: *x}\n",
            "name: loop\noutputs: &o {a: *o}\n",
            "name: loop\nfunctions: &f {f: *f}\n",
            "name: tags\ndatasets: !!python/object:os.system {}\n",
            "name: !!binary aGVsbG8=\n",
            "name: x\nversion: !!float nan\n",
            "name: x\n? [a, b]\n: c\n",
            "name: x\nname: y\n",
            "name: 2024-01-01\n",
            "name: x\ndatasets: {1: {demo: {}}}\n",
            "name: x\ntraining_jobs: {t: {hyperparameters: {epochs: 99999999999999999999999}}}\n",
            "\t",
            "",
            "---\n---\n",
            "%YAML 9.9\n---\nname: x\n",
            "name: " + "x" * 5000,
        ]
    ),
)


@st.composite
def reshaped(draw: st.DrawFn) -> str:
    data = copy.deepcopy(draw(st.sampled_from(SEED_DATA)))
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(containers(data)))
        value = draw(
            json_values | st.sampled_from(["${endpoints.x.arn}", "${a.b.c}", "${", "../" * 30])
        )
        if isinstance(target, dict):
            target[draw(st.sampled_from(sorted(map(str, target))) | st.text(max_size=12))] = value
        else:
            target[draw(st.integers(0, len(target) - 1))] = value
    return yaml.safe_dump(data, allow_unicode=True)


stack_texts = st.one_of(reshaped(), mutated_text(SEEDS), stress_texts, st.text(max_size=300))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stacks")


@given(text=stack_texts)
@fuzz_settings(max_examples=200)
def test_stack_files_load_or_are_refused(folder: Path, text: str) -> None:
    path = folder / f"stack-{next(_numbers)}.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    with quick(f"loading {text[:200]!r}"):
        try:
            stack, base = load_stack(path)
            graph = build_graph(stack, base, HANDLERS, where=str(path))
        except ValidationError as error:
            assert error.status == 400 and error.message
            return
    assert isinstance(stack, StackFile) and isinstance(graph, Graph)


def test_the_examples_themselves_load() -> None:
    """The seeds are good stacks: the fuzzing starts from files that load."""
    assert SEEDS
    for path in STACK_FILES:
        stack, base = load_stack(path)
        build_graph(stack, base, HANDLERS, where=str(path))
