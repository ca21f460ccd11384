#!/usr/bin/env python3
"""Writes the malformed-data corpus of the fault drills from the valid day in ``valid/``.

Each case is a raw day directory (``data.csv`` + ``target.csv``, as ``generate_data`` writes
them) with one thing wrong. This file is the one source of the cases: it writes the
directories, ``cases.json`` (what the drill checks) and ``README.md`` (one line per case).

``valid/`` itself came from the generate stage (``ml-generate --output-dir valid
--date 2026-01-05 --rows 24 --seed 7``) and is the drill's control: it must pass.

    python3 tests/drills/malformed/make_corpus.py     # rewrite the corpus after a change
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VALID = HERE / "valid"

Files = dict[str, bytes]


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    file: str
    """The file the error must name."""
    expect: tuple[str, ...]
    """Further text the one-line error must contain (row, column, what is wrong)."""
    breakage: Callable[[Files], None]
    predict: bool = True
    """Also a bad input for ``predict``, which reads only data.csv."""


def rewrite(files: Files, name: str, edit: Callable[[list[str]], list[str]]) -> None:
    text = files[name].decode("utf-8").splitlines()
    files[name] = ("\n".join(edit(text)) + "\n").encode()


def set_cell(files: Files, name: str, row: int, column: str, value: str) -> None:
    """Replaces the cell of data row ``row`` (1-based) in ``column``."""

    def edit(text: list[str]) -> list[str]:
        index = text[0].split(",").index(column)
        cells = text[row].split(",")
        cells[index] = value
        text[row] = ",".join(cells)
        return text

    rewrite(files, name, edit)


def drop_last_column(text: list[str]) -> list[str]:
    return [line.rsplit(",", 1)[0] for line in text]


def add_column(text: list[str]) -> list[str]:
    return [line + (",note" if i == 0 else ",1") for i, line in enumerate(text)]


def truncate_last_line(files: Files) -> None:
    data = files["data.csv"].rstrip(b"\n")
    last = data.rfind(b"\n")
    cut = last + 1 + (len(data) - last) // 2
    files["data.csv"] = data[:cut]


def non_utf8(files: Files) -> None:
    text = files["data.csv"].split(b"\n")
    cells = text[4].split(b",")
    cells[4] = b"\xff\xfe2\xe9"
    text[4] = b",".join(cells)
    files["data.csv"] = b"\n".join(text)


CASES = [
    Case(
        "wrong_column_name",
        "`chol` renamed to `cholesterol` in the header",
        "data.csv",
        ("cholesterol",),
        lambda f: rewrite(
            f, "data.csv", lambda t: [t[0].replace("chol", "cholesterol"), *t[1:]]
        ),
    ),
    Case(
        "missing_column",
        "the last column (`thal`) is gone from every line",
        "data.csv",
        ("thal",),
        lambda f: rewrite(f, "data.csv", drop_last_column),
    ),
    Case(
        "extra_column",
        "a 14th column `note` on every line",
        "data.csv",
        ("note",),
        lambda f: rewrite(f, "data.csv", add_column),
    ),
    Case(
        "duplicate_column",
        "`fbs` renamed to `sex`, so `sex` appears twice",
        "data.csv",
        ("sex",),
        lambda f: rewrite(
            f, "data.csv", lambda t: [t[0].replace("fbs", "sex"), *t[1:]]
        ),
    ),
    Case(
        "text_in_numeric",
        'row 5, column `chol` holds the text "high"',
        "data.csv",
        ("row 5", "chol", "high"),
        lambda f: set_cell(f, "data.csv", 5, "chol", "high"),
    ),
    Case(
        "nan_value",
        "row 3, column `age` is NaN",
        "data.csv",
        ("row 3", "age", "NaN"),
        lambda f: set_cell(f, "data.csv", 3, "age", "NaN"),
    ),
    Case(
        "inf_value",
        "row 9, column `oldpeak` is inf",
        "data.csv",
        ("row 9", "oldpeak", "inf"),
        lambda f: set_cell(f, "data.csv", 9, "oldpeak", "inf"),
    ),
    Case(
        "out_of_range",
        "row 7, column `trestbps` is 400 (blood pressure beyond the valid range)",
        "data.csv",
        ("row 7", "trestbps", "400"),
        lambda f: set_cell(f, "data.csv", 7, "trestbps", "400"),
    ),
    Case(
        "empty_file",
        "data.csv has zero bytes",
        "data.csv",
        ("empty",),
        lambda f: f.__setitem__("data.csv", b""),
    ),
    Case(
        "header_only",
        "data.csv has its header and no rows",
        "data.csv",
        ("header only",),
        lambda f: rewrite(f, "data.csv", lambda t: t[:1]),
    ),
    Case(
        "truncated_line",
        "the file ends in the middle of its last row (a copy cut short)",
        "data.csv",
        ("row 24",),
        truncate_last_line,
    ),
    Case(
        "wrong_delimiter",
        "semicolons instead of commas throughout data.csv",
        "data.csv",
        ("age;sex",),
        lambda f: rewrite(f, "data.csv", lambda t: [x.replace(",", ";") for x in t]),
    ),
    Case(
        "duplicate_header",
        "the header line appears a second time as the first data row",
        "data.csv",
        ("row 1", "age"),
        lambda f: rewrite(f, "data.csv", lambda t: [t[0], *t]),
    ),
    Case(
        "non_utf8",
        "row 4, column `chol` holds bytes that are not UTF-8 (Latin-1 and 0xFF)",
        "data.csv",
        ("row 4", "chol"),
        non_utf8,
    ),
    Case(
        "row_count_mismatch",
        "target.csv has one row fewer than data.csv",
        "target.csv",
        ("24", "23"),
        lambda f: rewrite(f, "target.csv", lambda t: t[:-1]),
        predict=False,
    ),
    Case(
        "bad_target",
        'row 5 of target.csv is "2", not a 0/1 label',
        "target.csv",
        ("row 5", "target", "2"),
        lambda f: set_cell(f, "target.csv", 5, "target", "2"),
        predict=False,
    ),
    Case(
        "missing_target_file",
        "target.csv is absent",
        "target.csv",
        ("no such file",),
        lambda f: f.pop("target.csv"),
        predict=False,
    ),
]


def main() -> None:
    valid = {name: (VALID / name).read_bytes() for name in ("data.csv", "target.csv")}
    for case in CASES:
        files = dict(valid)
        case.breakage(files)
        directory = HERE / case.name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        for name, content in files.items():
            (directory / name).write_bytes(content)
    (HERE / "cases.json").write_text(
        json.dumps(
            [
                {
                    "name": c.name,
                    "file": c.file,
                    "expect": list(c.expect),
                    "predict": c.predict,
                }
                for c in CASES
            ],
            indent=2,
        )
        + "\n"
    )
    readme = [
        "# Malformed raw days (fault drills)",
        "",
        "Each directory is one raw day (`data.csv` + `target.csv`, as `generate_data` writes",
        "them) with one thing wrong; `valid/` is the control, straight from the generate stage.",
        "Written by `make_corpus.py`, which also writes `cases.json`: the file each error must",
        "name and the row, column or value it must mention. `tests/drills/test_drills.py` runs",
        "the preprocess stage (and, for data.csv cases, predict) on every one.",
        "",
        "| case | what is wrong | the error names |",
        "|---|---|---|",
        *(
            f"| `{c.name}` | {c.description} | `{c.file}`"
            + "".join(f", `{e}`" for e in c.expect)
            + " |"
            for c in CASES
        ),
        "",
    ]
    (HERE / "README.md").write_text("\n".join(readme))


if __name__ == "__main__":
    main()
