"""Property tests: whatever the member names, nothing lands outside the destination."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path
from string import ascii_letters as ASCII_LETTERS

from hypothesis import given, settings
from hypothesis import strategies as st

from kennel._errors import ValidationError
from kennel.datasets import safe_extract
from kennel.datasets._archive import safe_parts

SEGMENTS = st.one_of(
    st.sampled_from(
        ["..", ".", "", "a", "b.jpg", "C:", "c:x", "~", "__MACOSX", "._x", "é", "日本", " ", "..."]
    ),
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\0"),
        min_size=1,
        max_size=6,
    ),
)
SEPARATORS = st.sampled_from(["/", "\\", "//", "/./"])
NAMES = st.builds(
    lambda lead, pieces: lead + "".join(seg + sep for seg, sep in pieces)[:-1],
    st.sampled_from(["", "", "", "/", "\\", "C:\\", "//", "./", "../"]),
    st.lists(st.tuples(SEGMENTS, SEPARATORS), min_size=1, max_size=5),
).filter(bool)


def build(kind: str, names: list[str], path: Path) -> None:
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # duplicate names
            for name in names:
                zf.writestr(name, b"payload")
    else:
        with tarfile.open(path, "w:gz") as tf:
            for name in names:
                info = tarfile.TarInfo(name)
                info.size = 7
                tf.addfile(info, io.BytesIO(b"payload"))


def walk(base: Path) -> list[Path]:
    """Everything under ``base``, without following links."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(base):
        found += [Path(folder, name) for name in dirs + files]
    return found


@settings(max_examples=100, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=4), kind=st.sampled_from(["zip", "tar.gz"]))
def test_no_member_name_escapes_dest(names: list[str], kind: str) -> None:
    absolute = [Path(n.replace("\\", "/")) for n in names if n.replace("\\", "/").startswith("/")]
    existed = {p: p.exists() for p in absolute}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "in").mkdir()
        archive = base / "in" / f"a.{kind}"
        build(kind, names, archive)
        dest = base / "box" / "dest"
        try:
            safe_extract(archive, dest)
            accepted = True
        except ValidationError:
            accepted = False

        inside = [p for p in walk(base) if dest in p.parents]
        outside = set(walk(base)) - set(inside)
        assert outside == {base / "in", archive, base / "box", dest}
        assert not any(p.is_symlink() for p in inside)
        if accepted:
            for path in inside:
                assert os.path.realpath(path).startswith(os.path.realpath(dest) + os.sep)
        else:
            assert inside == []
    assert {p: p.exists() for p in absolute} == existed


@settings(max_examples=150, deadline=None)
@given(name=st.one_of(NAMES, st.text()))
def test_safe_parts_are_plain_relative_components(name: str) -> None:
    try:
        parts = safe_parts(name)
    except ValidationError as err:
        assert repr(name) in err.message
        return
    for part in parts:
        assert part not in ("", ".", "..")
        assert "/" not in part and "\\" not in part and "\0" not in part
    drive = parts and len(parts[0]) >= 2 and parts[0][1] == ":" and parts[0][0] in ASCII_LETTERS
    assert not drive
