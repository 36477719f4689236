"""``kennel datasets``: create (folder, archive, URL), make-demo, list, describe, delete."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from kennel._client import path_segment
from kennel._errors import ValidationError
from kennel.cli._common import JsonOption, client
from kennel.cli._output import console, err_console, human_bytes, print_json

app = typer.Typer(help="Labelled image sets in the train/valid/test class-folder layout.")

BASE = "/api/v1/datasets"


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Name of the new data set.")],
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="A folder or .zip/.tar.gz on this machine (uploaded), or an http(s):// or "
            "s3:// URL the server fetches.",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Create a data set; it is validated (splits, classes, every image) before it is kept."""
    if "://" in source:
        with client() as api, err_console.status(f"Server fetching and validating {source}..."):
            info = api.post(BASE, {"name": name, "source_url": source})
    else:
        info = _upload(name, Path(source).expanduser())
    _show(info, as_json)


@app.command("make-demo")
def make_demo_command(
    name: Annotated[str, typer.Argument(help="Name of the demo data set.")] = "demo-digits",
    image_size: Annotated[int, typer.Option(help="Image width and height in pixels.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the small augmentations.")] = 0,
    output: Annotated[
        Path | None,
        typer.Option(help="Only render it into this folder, without a server."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Render scikit-learn's digits as a small real image data set (10 classes)."""
    if output is not None:
        from kennel.datasets import make_demo

        with err_console.status(f"Rendering demo data set into {output}..."):
            summary = make_demo(output, image_size=image_size, seed=seed)
        info = summary.to_dict()
        info.update(
            name=name,
            status="Rendered",
            source="demo:digits",
            artifact_uri=str(output),
            num_classes=len(summary.classes),
        )
        _show(info, as_json)
        return
    with client() as api, err_console.status("Rendering and storing the demo data set..."):
        info = api.post(BASE, {"name": name, "demo": {"image_size": image_size, "seed": seed}})
    _show(info, as_json)


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List data sets."""
    with client() as api:
        items = api.get(BASE)["datasets"]
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("No data sets yet. Make one with: kennel datasets make-demo")
        return
    table = Table("name", "status", "classes", "images", "size", "created")
    for d in items:
        table.add_row(
            d["name"],
            d["status"],
            str(d["num_classes"]),
            str(d["total_images"]),
            human_bytes(d["total_bytes"]),
            d["created_at"][:19].replace("T", " "),
        )
    console.print(table)


@app.command("describe")
def describe(name: str, as_json: JsonOption = False) -> None:
    """Show a data set: classes and image counts per split."""
    with client() as api:
        info = api.get(f"{BASE}/{path_segment(name)}")
    _show(info, as_json)


@app.command("delete")
def delete(name: str) -> None:
    """Delete a data set and its files."""
    with client() as api:
        api.delete(f"{BASE}/{path_segment(name)}")
    console.print(f"Deleted data set {name}.")


def _upload(name: str, path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ValidationError(
            f"{path} does not exist.", hint="Give a folder, a .zip/.tar.gz file, or a URL."
        )
    with tempfile.TemporaryDirectory(prefix="kennel-upload-") as tmp:
        archive = _pack(path, Path(tmp) / "dataset.tar") if path.is_dir() else path
        size = archive.stat().st_size
        with _progress() as progress:
            task = progress.add_task(f"Uploading {path.name}", total=size)
            with client() as api:
                response = api.request(
                    "PUT",
                    f"{BASE}/{path_segment(name)}",
                    upload=archive,
                    progress=lambda n: progress.update(task, advance=n),
                )
        info: dict[str, Any] = response.json()
        return info


def _pack(folder: Path, target: Path) -> Path:
    """A folder goes up as one uncompressed tar: images are compressed already."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err_console
    ) as progress:
        task = progress.add_task(f"Packing {folder.name}", total=len(files))
        with tarfile.open(target, "w") as tar:
            for file in files:
                tar.add(file, arcname=file.relative_to(folder).as_posix(), recursive=False)
                progress.advance(task)
    return target


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def _show(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(info)
        return
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("name", info["name"])
    head.add_row("status", info["status"])
    head.add_row("source", info.get("source", ""))
    head.add_row("stored at", info.get("artifact_uri", ""))
    classes = info["classes"]
    shown = ", ".join(classes[:6]) + (f", ... ({len(classes)} in all)" if len(classes) > 6 else "")
    head.add_row("classes", f"{len(classes)}: {shown}")
    head.add_row("images", f"{info['total_images']} ({human_bytes(info['total_bytes'])})")
    console.print(head)
    splits = Table("split", "images", "classes", "smallest class", "largest class")
    for split_name, split in info["splits"].items():
        counts: dict[str, int] = split["counts"]
        values = list(counts.values()) or [0]
        splits.add_row(
            split_name, str(sum(values)), str(len(counts)), str(min(values)), str(max(values))
        )
    console.print(splits)
