"""axe-core (Deque's accessibility engine, as packaged by axe-playwright-python) on every
console page at 1280 px and 390 px: no serious or critical violation of WCAG 2.1 A/AA."""

from __future__ import annotations

from typing import Any

import pytest
from tests._server import RunningServer
from tests.e2e.console._console_browser import NARROW, WIDE
from tests.e2e.console.conftest import admin_key
from tests.e2e.console.test_console_endpoints import completed_job, deployed  # noqa: F401
from tests.e2e.console.test_console_functions import function_name, lambda_client  # noqa: F401

# Slow: about 75 s (it makes an endpoint, a job and a function to have detail pages); CI runs it.
pytestmark = pytest.mark.slow

PAGES = [
    "",
    "#/datasets",
    "#/training-jobs",
    "#/tuning-jobs",
    "#/models",
    "#/endpoints",
    "#/functions",
    "#/iam",
    "#/iam/users",
    "#/iam/roles",
    "#/iam/policies",
]
SEVERE = ("serious", "critical")


def _violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}}
    )
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in SEVERE:
            targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
            found.append(
                f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}"
            )
    return found


@pytest.fixture(scope="module")
def dataset(server: RunningServer) -> str:
    with server.client() as api:
        api.post("/api/v1/datasets", {"name": "axe-digits", "demo": {"image_size": 16}})
    return "axe-digits"


def _detail_pages(served: tuple[str, str], dataset: str, job: str, function: str) -> list[str]:
    model, endpoint = served
    return [
        f"#/datasets/{dataset}",
        f"#/training-jobs/{job}",
        f"#/models/{model}",
        f"#/endpoints/{endpoint}",
        f"#/functions/{function}",
        "#/iam/users/admin",
    ]


@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1280", "390"])
def test_every_page_passes_axe(
    new_context: Any,
    server: RunningServer,
    viewport: dict[str, int],
    deployed: tuple[str, str],  # noqa: F811
    completed_job: str,  # noqa: F811
    function_name: str,  # noqa: F811
    dataset: str,
) -> None:
    details = _detail_pages(deployed, dataset, completed_job, function_name)
    console = new_context(viewport)
    console.goto()
    console.page.get_by_role("heading", name="Sign in to kennel").wait_for()
    problems = {"sign-in": _violations(console.page)}
    console.sign_in_with_key(*admin_key(server))
    for path in PAGES + details:
        console.goto(path)
        console.page.locator("main h1").first.wait_for()
        console.page.wait_for_load_state("networkidle")
        problems[path or "overview"] = _violations(console.page)
    found = {page: items for page, items in problems.items() if items}
    assert not found, "\n".join(
        f"{page}: {item}" for page, items in found.items() for item in items
    )
    console.assert_no_errors()
