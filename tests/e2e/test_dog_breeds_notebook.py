"""The dog-breed notebook (``examples/dog-breeds/train_and_deploy.ipynb``) run top to
bottom in a real Jupyter kernel against a real server, as a user runs it: tune, train on
two instances with Debugger rules, deploy, predict, clean up.

Its parameters cell is overridden papermill-style (a cell injected after it) to keep the
run quick. The executed notebook is kept in ``$KENNEL_TEST_ARTIFACTS`` (default
``test-artifacts/``) for a person to look at, also when a cell failed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from tests._server import REPO, RunningServer, start_server, stop_server

from kennel._client import KennelClient
from kennel._errors import NotFoundError

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

EXAMPLE = REPO / "examples" / "dog-breeds"
NOTEBOOK = "train_and_deploy.ipynb"
CELL_TIMEOUT = 600
OVERRIDES = {
    "DATASET": "notebook-digits",
    "IMAGE_SIZE": 24,
    "ARCH": "small-cnn",
    "PRETRAINED": False,
    "EPOCHS": 2,
    "MAX_JOBS": 2,
    "MAX_PARALLEL_JOBS": 2,
    "INSTANCE_TYPE": "ml.m5.large",
    "TRAIN_INSTANCE_COUNT": 2,
}
RULES = {
    "VanishingGradient",
    "Overfit",
    "Overtraining",
    "PoorWeightInitialization",
    "LossNotDecreasing",
    "ProfilerReport",
}
MARKER = "KENNEL-NOTEBOOK-READOUT "
READOUT = f"""\
import json as _json

print({MARKER!r} + _json.dumps({{
    "tuning_job": tuner.latest_tuning_job.name,
    "best_job": best_job,
    "training_job": training_job,
    "endpoint": predictor.endpoint_name,
    "predictions": predictions,
}}))
"""


@pytest.fixture(scope="module")
def notebook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of its own: the notebook makes a data set, a role, jobs and an endpoint."""
    running = start_server(tmp_path_factory.mktemp("notebook-home"))
    yield running
    code = stop_server(running)
    assert code == 0, f"server exit code {code}:\n{running.log.read_text()[-4000:]}"


def test_the_dog_breed_notebook_runs_top_to_bottom(
    notebook_server: RunningServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    notebook = run_notebook(notebook_server, tmp_path / "dog-breeds")
    print(f"\nnotebook ran in {time.monotonic() - started:.0f} s")

    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells), "a cell did not run"
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert errors == []
    readout = _readout(notebook)

    with notebook_server.client() as api:
        tuning = api.get(f"/api/v1/tuning-jobs/{readout['tuning_job']}")
        assert tuning["status"] == "Completed", tuning.get("failure_reason")
        assert tuning["best_training_job"]["training_job_name"] == readout["best_job"]
        best = api.get(f"/api/v1/training-jobs/{readout['best_job']}")
        assert best["status"] == "Completed"
        assert best["entry_point"] == "hpo.py"

        job = api.get(f"/api/v1/training-jobs/{readout['training_job']}")
        assert job["status"] == "Completed", job.get("failure_reason")
        assert job["instance_count"] == 2 and job["entry_point"] == "train_model.py"
        assert job["hyperparameters"]["lr"] == best["hyperparameters"]["lr"]
        statuses = {r["rule_configuration_name"]: r["status"] for r in job["rule_evaluations"]}
        assert set(statuses) == RULES
        assert set(statuses.values()) <= {"NoIssuesFound", "IssuesFound"}, statuses

        predictions = readout["predictions"]
        assert len(predictions) == 10
        for scores in predictions.values():
            assert len(scores) == 10 and abs(sum(scores) - 1) < 1e-3

        _assert_cleaned_up(api, readout["endpoint"], model=readout["training_job"])


def run_notebook(server: RunningServer, workdir: Path) -> nbformat.NotebookNode:
    """Execute a copy of the example folder's notebook there, with the overrides; the
    executed notebook is saved to the artifacts folder whatever happens."""
    shutil.copytree(EXAMPLE, workdir, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_*"))
    notebook = nbformat.read(workdir / NOTEBOOK, as_version=4)
    inject_parameters(notebook, OVERRIDES)
    notebook.cells.append(nbformat.v4.new_code_cell(READOUT, metadata={"tags": ["readout"]}))
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    try:
        # The server's environment: KENNEL_HOME and the AWS profile files it wrote, which
        # kennel.Session() in the kernel reads as a user's would.
        client.execute(env=dict(server.env))
    finally:
        saved = artifacts_dir() / NOTEBOOK.replace(".ipynb", ".executed.ipynb")
        nbformat.write(notebook, saved)
        print(f"\nexecuted notebook: {saved}")
    return notebook


def inject_parameters(notebook: nbformat.NotebookNode, values: dict[str, Any]) -> None:
    """Insert a cell of assignments after the cell tagged ``parameters``, as papermill does."""
    index = next(
        i
        for i, cell in enumerate(notebook.cells)
        if "parameters" in cell.get("metadata", {}).get("tags", [])
    )
    source = "# Parameters injected by tests/e2e/test_dog_breeds_notebook.py\n" + "".join(
        f"{name} = {value!r}\n" for name, value in values.items()
    )
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(index + 1, cell)


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("KENNEL_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _readout(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    cell = notebook.cells[-1]
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    line = next(line for line in text.splitlines() if line.startswith(MARKER))
    found: dict[str, Any] = json.loads(line.removeprefix(MARKER))
    return found


def _assert_cleaned_up(api: KennelClient, endpoint: str, *, model: str) -> None:
    with pytest.raises(NotFoundError):
        api.get(f"/api/v1/endpoints/{endpoint}")
    with pytest.raises(NotFoundError):
        api.get(f"/api/v1/models/{model}")
    configs = api.get("/api/v1/endpoint-configs")["endpoint_configs"]
    assert [c["name"] for c in configs if c["name"].startswith(endpoint)] == []
