"""What a reader and a classroom meet in the chapters, checked without building the book.

* no project bookkeeping in the text (the word list in ``book/style/jargon.txt``);
* no math that MathJax would show as a red TeX error (``book/tex_lint.py``);
* the tutorial form: objectives first, a summary, 3-5 exercises each with a
  solution in a dropdown, a "Reproduction notes" section;
* the student edition (``book/student_edition.py``) holds no solution and no
  output, and its code cells are exactly the chapters' (CI executes the
  chapters, which proves the student notebooks run);
* ``book/check_html.py`` finds TeX errors and missing local files in built pages;
* the notebook time budget of ``notebooks/conftest.py``.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PAGES = [BOOK / "intro.md"]


def _load(relative: str) -> ModuleType:
    path = REPO / relative
    name = "book_text_" + path.stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def _markdown(notebook: Path) -> str:
    cells = nbformat.read(notebook, as_version=4).cells
    return "\n\n".join(cell.source for cell in cells if cell.cell_type == "markdown")


# ------------------------------------------------------------------ jargon


def jargon_patterns() -> list[re.Pattern[str]]:
    lines = (BOOK / "style" / "jargon.txt").read_text().splitlines()
    words = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [re.compile(rf"(?<![\w-]){word}(?![\w-])", re.I) for word in words]


def prose_of_markdown(text: str) -> str:
    """Markdown without code blocks, inline code, link targets and HTML comments."""
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"^(\s*)(`{3,}|~{3,})(?!\s*\{).*?^\1\2\s*$", " ", text, flags=re.S | re.M)
    text = re.sub(r"``[^`]*``|`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # [text](target): only the text is read
    return text


def printed_strings(source: str) -> list[str]:
    """The string literals of a code cell (f-string parts included); docstrings too.
    Lines starting with IPython magics or shell escapes are blanked first."""
    cleaned = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                        for line in source.splitlines())
    try:
        tree = ast.parse(cleaned)
    except SyntaxError:
        return [cleaned]
    specs = {id(part) for node in ast.walk(tree) if isinstance(node, ast.FormattedValue)
             and node.format_spec is not None for part in ast.walk(node.format_spec)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in specs:
            found.append(node.value)
    return found


def jargon_in(text: str) -> list[str]:
    hits = []
    for pattern in jargon_patterns():
        for match in pattern.finditer(text):
            start = max(0, match.start() - 40)
            hits.append(f"{match.group(0)!r} in ...{' '.join(text[start:match.end() + 40].split())}...")
    return hits


def test_jargon_list_catches_bookkeeping_and_spares_ordinary_words():
    assert jargon_in("What is owed: the session's GPU half hour")
    assert jargon_in("goal 3x: NOT met") and jargon_in("speed target met: no")
    assert jargon_in("a lent H100") and jargon_in("see the issue") and jargon_in("lanes A and B")
    assert jargon_in("still to do: the sweep") and jargon_in("TODO")
    # words that only contain a listed word, and code, are not prose
    clean = "The tissue, the plane, the silent ablations, the excitement; `session = setup()`."
    assert not jargon_in(prose_of_markdown(clean)), jargon_in(prose_of_markdown(clean))
    assert printed_strings('print(f"top-1 {x:.1f}% in the {PROFILE} profile")\n%time y = 1') == [
        "top-1 ", "% in the ", " profile"]


@pytest.mark.parametrize("page", NOTEBOOKS + PAGES, ids=lambda p: p.name)
def test_chapter_text_has_no_project_jargon(page: Path):
    hits = []
    if page.suffix == ".md":
        hits += [f"text: {hit}" for hit in jargon_in(prose_of_markdown(page.read_text()))]
    else:
        for index, cell in enumerate(nbformat.read(page, as_version=4).cells):
            if cell.cell_type == "markdown":
                hits += [f"cell {index} (markdown): {hit}"
                         for hit in jargon_in(prose_of_markdown(cell.source))]
            elif cell.cell_type == "code":
                for literal in printed_strings(cell.source):
                    hits += [f"cell {index} (a string in code): {hit}" for hit in jargon_in(literal)]
    assert not hits, (f"{page.name} has project-log words (book/style/jargon.txt); write for "
                      "readers, move bookkeeping to results/**/README.md:\n  " + "\n  ".join(hits))


# ------------------------------------------------------------------ TeX


def test_tex_lint_catches_what_mathjax_rejects():
    lint = _load("book/tex_lint.py")
    bad = {
        # the CMAL-Net Eq. (6) that rendered red: Sphinx wraps \\-math in split
        r"$$ m = \begin{cases} 1 & a > t \\ 0 & \text{else} \end{cases} \tag{6} $$": "split",
        r"$$ a = b \\ c = d \tag{2} $$": "split",
        r"$$ a = b \tag{1} $$" "\n\n" r"$$ \begin{aligned} x &= 1 \tag{3} \end{aligned} $$": "aligned",
        r"$$ a = {b \tag{1} $$": "braces",
        r"$$ \begin{align} a &= b \end{aligned} $$": "without a matching",
        r"$$ a = \left( b $$": "\\left",
        r"$$ a & b $$": "Misplaced",
        r"$$ a \tag{1} \tag{2} $$": "more than one",
    }
    for markdown, expected in bad.items():
        problems = [str(p) for p in lint.check_markdown(markdown)]
        assert any(expected in p for p in problems), (markdown, problems)
    good = [
        r"$$ s_k = \sum_c w_k^c \frac{1}{hw} \sum_{\alpha,\beta} X^c(\alpha,\beta) \tag{1} $$",
        r"$$ a = b \\ c = d $$",  # no tag: split is fine
        "\\begin{align} a &= b \\tag{1} \\\\ c &= d \\tag{2} \\end{align}",  # amsmath: nowrap
        r"the cost \$5 and $x_{\{i\}}$ and `$not math$`",
        "```python\nx = '$$ \\tag{1} \\\\ $$'\n```",
    ]
    for markdown in good:
        assert not lint.check_markdown(markdown), (markdown, lint.check_markdown(markdown))


@pytest.mark.parametrize("page", NOTEBOOKS + PAGES, ids=lambda p: p.name)
def test_math_renders_without_tex_errors(page: Path):
    lint = _load("book/tex_lint.py")
    text = page.read_text() if page.suffix == ".md" else _markdown(page)
    problems = [str(p) for p in lint.check_markdown(text)]
    assert not problems, f"{page.name}: MathJax would show TeX errors:\n  " + "\n  ".join(problems)


# ------------------------------------------------------------------ tutorial form

_SOLUTION = re.compile(r"^\s*(`{3,}|:{3,})\s*\{admonition\}\s*Solution", re.M)
_EXERCISES_SECTION = re.compile(r"^(#+)\s*Exercises?\b.*?$(.*?)(?=^#{1,2}\s|\Z)", re.M | re.S | re.I)
# an exercise starts a line: "**Exercise 3.**", "### Exercise 3", "**3.**" or "3." (a numbered list)
_EXERCISE = re.compile(r"^(?:(?:\*\*)?(?:Exercise\s+)?\d+[.):](?:\*\*)?(?=\s)|#+\s*Exercise\s+\d+\b)",
                       re.M | re.I)


def exercises(markdown: str) -> tuple[int, int]:
    """(exercises, solution dropdowns) in the Exercises section(s) of a chapter."""
    edition = _load("book/student_edition.py")
    count = solutions = 0
    for match in _EXERCISES_SECTION.finditer(markdown):
        section = match.group(2)
        solutions += len(_SOLUTION.findall(section))
        questions, _ = edition.strip_solutions(section)  # numbered lists inside solutions don't count
        count += len(_EXERCISE.findall(questions))
    return count, solutions


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_is_a_tutorial(notebook: Path):
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown"]
    text = "\n\n".join(cell.source for cell in cells)
    first = "\n".join(cell.source for cell in cells[:2])
    problems = []
    if not re.search(r"learning objectives|you will learn|after this chapter", first, re.I):
        problems.append("no learning objectives in the first Markdown cells")
    if not re.search(r"^#+\s*Summary", text, re.M):
        problems.append("no '## Summary' section")
    count, solutions = exercises(text)
    if not 3 <= count <= 5:
        problems.append(f"{count} exercises in an '## Exercises' section (3-5 wanted, each "
                        "starting a line as '**Exercise N.**', '**N.**' or 'N.')")
    if solutions < count or not solutions:
        problems.append(f"{solutions} solution dropdowns for {count} exercises")
    for block in re.finditer(r"^(`{3,}|:{3,})\s*\{admonition\}\s*Solution.*?\n(.*?)^\1\s*$",
                             text, re.S | re.M):
        if ":class: dropdown" not in block.group(2).split("\n\n")[0]:
            problems.append("a solution that is not hidden (':class: dropdown' missing)")
    if not re.search(r"^#+\s*Reproduction notes", text, re.M):
        problems.append("no '## Reproduction notes' section")
    assert not problems, f"{notebook.name}: " + "; ".join(problems)


# ------------------------------------------------------------------ student edition


def test_student_edition_strips_solutions_and_outputs_and_keeps_the_code(tmp_path):
    edition = _load("book/student_edition.py")
    written = edition.write_edition(tmp_path, NOTEBOOKS)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for full_path, student_path in zip(NOTEBOOKS, written):
        full = nbformat.read(full_path, as_version=4)
        student = nbformat.read(student_path, as_version=4)
        nbformat.validate(student)
        code_full = [c.source for c in full.cells if c.cell_type == "code"]
        code_student = [c.source for c in student.cells if c.cell_type == "code"]
        assert code_student == code_full, f"{full_path.name}: the student code cells differ"
        text = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
        assert not re.search(r"\{admonition\}\s*Solution|\{dropdown\}\s*Solution", text), student_path
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in student.cells if c.cell_type == "code"), student_path
        assert "widgets" not in student.metadata
        # every exercise question is still there, no solution is
        assert exercises(text) == (exercises(_markdown(full_path))[0], 0)
        assert len(_SOLUTION.findall(_markdown(full_path))) == 0 or len(text) < len(_markdown(full_path))


def test_exercise_count_reads_the_common_layouts():
    layouts = [
        "## Exercises\n\n**Exercise 1.** a, at\n77.0. or 3 items\n\n**Exercise 2.** b\n\n## Reproduction notes\n\n1. not one",
        "## Exercises\n\n**1.** a\n```{admonition} Solution\n:class: dropdown\n1. step\n2. step\n```\n**2.** b\n",
        "## Exercises\n\n1. a\n2. b\n\n### Exercise 3\n\nc\n",
    ]
    assert [exercises(text)[0] for text in layouts] == [2, 2, 3]
    assert exercises(layouts[1])[1] == 1


def test_student_edition_removes_nested_fences_and_tagged_cells():
    edition = _load("book/student_edition.py")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(
            "**Exercise 1.** Why?\n\n````{admonition} Solution\n:class: dropdown\nBecause:\n"
            "```python\nx = 1\n```\n````\n\n**Exercise 2.** How?\n\n:::{admonition} Solution 2\n"
            ":class: dropdown\nLike this.\n:::\n\n```{admonition} Note\nkept\n```"),
        nbformat.v4.new_markdown_cell("hidden", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output(
            "stream", text="1\n")], execution_count=3),
    ])
    student, removed = edition.student_notebook(notebook)
    assert removed == 3
    assert student.cells[0].source == ("**Exercise 1.** Why?\n\n**Exercise 2.** How?\n\n"
                                       "```{admonition} Note\nkept\n```")
    assert [c.cell_type for c in student.cells] == ["markdown", "code"]
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert notebook.cells[2].outputs, "the chapter itself is left alone"


# ------------------------------------------------------------------ built HTML check


def _site(tmp_path: Path, body: str, extra: dict[str, str] | None = None) -> Path:
    site = tmp_path / "html"
    (site / "notebooks").mkdir(parents=True)
    (site / "notebooks" / "page.html").write_text(f"<html><body>{body}</body></html>")
    for relative, content in (extra or {}).items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(content)
    return site


def test_check_html_finds_tex_errors_missing_files_and_widget_fonts(tmp_path):
    check = _load("book/check_html.py")
    clean = _site(tmp_path / "a", '<div class="math notranslate nohighlight">\\[a = b \\tag{1}\\]</div>'
                  '<script src="../_static/x.js"></script>', {"_static/x.js": ""})
    assert check.main([str(clean), "--browser", "never"]) == 0

    split_tag = _site(tmp_path / "b", '<div class="math notranslate nohighlight">\\[\\begin{split}'
                      'a = b \\\\ c \\tag{6}\\end{split}\\]</div>')
    assert any("split" in p for p in check.check_page(split_tag / "notebooks/page.html", split_tag))

    merror = _site(tmp_path / "c", '<mjx-merror data-mjx-error="Misplaced &amp;">x</mjx-merror>')
    assert check.check_page(merror / "notebooks/page.html", merror)

    embed = ('a{src:url(../webfonts/fa-solid-900.woff2) format("woff2")} '
             'e.exports=n.p+"1551f4f60c37af51121f.woff2"')
    widget_page = ('<script src="../vendor/html-manager/dist/embed-amd.js"></script>'
                   '<script type="application/vnd.jupyter.widget-state+json">{}</script>'
                   '<img src="../_images/missing.png">')
    missing = _site(tmp_path / "d", widget_page, {"vendor/html-manager/dist/embed-amd.js": embed})
    problems = check.check_page(missing / "notebooks/page.html", missing)
    assert any("fa-solid-900.woff2" in p and "webfonts" in p for p in problems), problems
    assert any("1551f4f60c37af51121f.woff2" in p for p in problems), problems
    assert any("missing.png" in p for p in problems), problems
    fixed = _site(tmp_path / "e", widget_page.replace("missing.png", "f.png"), {
        "vendor/html-manager/dist/embed-amd.js": embed, "webfonts/fa-solid-900.woff2": "",
        "vendor/html-manager/dist/1551f4f60c37af51121f.woff2": "", "_images/f.png": ""})
    assert check.check_page(fixed / "notebooks/page.html", fixed) == []


def test_vendored_webfont_aliases_cover_the_widget_stylesheet():
    vendor_js = _load("book/vendor_js.py")
    families = {"fa-brands-400", "fa-regular-400", "fa-solid-900"}
    formats = {"woff2", "woff", "ttf", "eot", "svg"}
    assert set(vendor_js.WEBFONT_ALIASES) == {f"{f}.{x}" for f in families for x in formats}
    for alias, hashed in vendor_js.WEBFONT_ALIASES.items():
        assert hashed.endswith("." + alias.rsplit(".", 1)[1])
    dist = vendor_js.VENDOR_DIR / "html-manager" / "dist"
    if not dist.is_dir():
        pytest.skip("the book's JavaScript is not vendored here (book/vendor_js.py)")
    ttlib = pytest.importorskip("fontTools.ttLib")
    expected = {"fa-brands-400": "Font Awesome 5 Brands Regular",
                "fa-regular-400": "Font Awesome 5 Free Regular",
                "fa-solid-900": "Font Awesome 5 Free Solid"}
    for alias, hashed in vendor_js.WEBFONT_ALIASES.items():
        if alias.endswith((".ttf", ".woff")):
            name = ttlib.TTFont(dist / hashed)["name"].getDebugName(4)
            assert name == expected[alias.rsplit(".", 1)[0]], (alias, hashed, name)


# ------------------------------------------------------------------ time budget


def test_notebook_budget_measures_the_smaller_of_wall_and_kernel_cpu():
    conftest = _load("notebooks/conftest.py")
    assert conftest.NOTEBOOK_BUDGET_S["smoke"] == 180
    assert conftest.notebook_work_seconds(400.0, 150.0) == 150.0  # busy machine: waited for a core
    assert conftest.notebook_work_seconds(100.0, 190.0) == 100.0  # two threads on a quiet one
    assert conftest.notebook_work_seconds(200.0, 0.0) == 200.0    # no CPU time seen: wall time


# ------------------------------------------------------------------ figures


def test_setup_gives_readable_figure_fonts_and_a_perceptual_colormap():
    import matplotlib
    import matplotlib.font_manager

    from fgvc_lib.notebook import READABLE_FONTS, TEXT_WIDTH_IN, setup

    with matplotlib.rc_context({"font.size": 6, "xtick.labelsize": 5, "image.cmap": "jet"}):
        setup(verbose=False)
        sizes = {key: matplotlib.font_manager.FontProperties(size=matplotlib.rcParams[key]).get_size_in_points()
                 for key in READABLE_FONTS}
        assert min(sizes.values()) >= 9, sizes
        assert matplotlib.rcParams["image.cmap"] == "viridis"
    assert 6 <= TEXT_WIDTH_IN <= 8  # the book's text column, in inches
