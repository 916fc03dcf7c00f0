"""Write the student edition: every chapter without its solutions and outputs.

::

    .venv/bin/python book/student_edition.py               # -> book/_build/student/
    .venv/bin/python book/student_edition.py --out hand-out/

A chapter's exercises keep their questions; each solution is a MyST dropdown
in a Markdown cell (an ``{admonition}`` whose title starts with "Solution", in a
backtick or colon fence), and the edition drops that block, leaving the rest of
the cell. Markdown cells tagged ``solution`` are dropped whole. Code cells are
kept exactly (source and tags), with outputs, execution counts and the saved
widget state removed, so the notebooks a class receives run the same code the
book runs: ``tests/test_book_text.py`` checks that the student notebooks hold
no solution and that their code cells equal the chapters' code cells, and CI
executes the chapters themselves.

The edition is generated, not committed: it lives under ``book/_build/``
(git-ignored) and is rebuilt from the chapters on demand, so it can never fall
out of step with them.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

BOOK = Path(__file__).resolve().parent
REPO = BOOK.parent
NOTEBOOKS = REPO / "notebooks"
DEFAULT_OUT = BOOK / "_build" / "student"
SOLUTION_TAG = "solution"
_OPEN = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|:{3,})\s*\{(?P<name>admonition|dropdown)\}"
                   r"\s*(?P<title>.*)$")


def is_solution_title(name: str, title: str) -> bool:
    return title.strip().lower().startswith("solution")


def strip_solutions(markdown: str) -> tuple[str, int]:
    """``markdown`` without its solution blocks, and how many were removed."""
    lines = markdown.splitlines()
    kept: list[str] = []
    removed = 0
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if match and is_solution_title(match.group("name"), match.group("title")):
            fence = match.group("fence")
            depth = 1
            i += 1
            while i < len(lines) and depth:
                stripped = lines[i].strip()
                if stripped == fence:
                    depth -= 1
                elif re.match(rf"^\s*{re.escape(fence)}\s*\{{", lines[i]):
                    depth += 1
                i += 1
            removed += 1
            continue
        kept.append(lines[i])
        i += 1
    text = "\n".join(kept)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text, removed


def student_notebook(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """A copy of ``notebook`` with solutions, outputs and widget state removed."""
    student = copy.deepcopy(notebook)
    cells = []
    removed = 0
    for cell in student.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "markdown":
            if SOLUTION_TAG in tags:
                removed += 1
                continue
            cell.source, count = strip_solutions(cell.source)
            removed += count
            if not cell.source.strip():
                continue
        elif cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        cells.append(cell)
    student.cells = cells
    student.metadata.pop("widgets", None)
    return student, removed


def write_edition(out: Path = DEFAULT_OUT, notebooks: list[Path] | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks or sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        student, removed = student_notebook(notebook)
        target = out / path.name
        nbformat.write(student, target)
        written.append(target)
        print(f"{path.name}: {removed} solution(s) removed -> {target}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for the student notebooks (default: book/_build/student)")
    args = parser.parse_args(argv)
    write_edition(args.out)
    print(f"student edition: {args.out}  (run the notebooks from a checkout's notebooks/ "
          "folder or copy them there: they import fgvc_lib and read results/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
