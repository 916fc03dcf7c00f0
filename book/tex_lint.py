"""Static checks for the TeX that MathJax will typeset (no browser needed).

MathJax does not fail a build: a TeX error becomes a red message in the page
(an ``mjx-merror`` element), seen only by a reader. The mistakes this book has
made, and that MathJax 3 reports, are caught here from the source text:

* ``\\tag`` inside ``split``/``aligned``/``gathered``/``alignedat`` ("\\tag not
  allowed in split environment"). Sphinx wraps every display-math block that
  contains ``\\\\`` (a line break) and no ``\\begin`` in ``\\begin{split}``, so a
  ``\\tag`` in ``\\\\``-broken display math is the same error; use
  ``\\begin{align}``/``\\begin{equation}`` with amsmath, or one line.
* more than one ``\\tag`` in one equation ("Multiple \\tag");
* unbalanced braces, ``\\begin``/``\\end`` pairs and ``\\left``/``\\right``;
* ``&`` outside any alignment ("Misplaced &").

Used by ``tests/test_book_text.py`` on every notebook's Markdown math and by
``book/check_html.py`` on the math of the built pages (which is what MathJax
actually receives, after Sphinx's wrapping).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

NO_TAG_ENVS = {"split", "aligned", "alignedat", "gathered", "array", "matrix",
               "pmatrix", "bmatrix", "vmatrix", "cases", "subarray"}
ALIGN_ENVS = {"align", "align*", "aligned", "alignat", "alignat*", "alignedat", "split",
              "eqnarray", "eqnarray*", "array", "matrix", "pmatrix", "bmatrix", "Bmatrix",
              "vmatrix", "Vmatrix", "smallmatrix", "cases", "flalign", "flalign*",
              "tabular", "subarray", "CD"}

_COMMAND = re.compile(r"\\([A-Za-z]+|.)")
_BEGIN_END = re.compile(r"\\(begin|end)\s*\{([^}]*)\}")


@dataclass(frozen=True)
class TexProblem:
    message: str
    tex: str

    def __str__(self) -> str:
        snippet = " ".join(self.tex.split())
        return f"{self.message}: {snippet[:160]}"


def _strip_comments(tex: str) -> str:
    return re.sub(r"(?<!\\)%.*", "", tex)


def _braces_balanced(tex: str) -> bool:
    depth = 0
    i = 0
    while i < len(tex):
        ch = tex[i]
        if ch == "\\":
            i += 2  # \{ \} \\ and any escaped character
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def sphinx_wrap(tex: str) -> str:
    """What Sphinx's MathJax writer makes of a display-math block that is not
    ``nowrap`` (``$$..$$`` and ``{math}``; amsmath environments are nowrap):
    blank-line separated parts go into ``align``/``aligned``, and every part
    holding ``\\\\`` into ``split`` (sphinx.ext.mathjax.html_visit_displaymath)."""
    parts = [part for part in tex.split("\n\n") if part.strip()]
    wrapped = [f"\\begin{{split}}{part}\\end{{split}}" if "\\\\" in part else part
               for part in parts]
    joined = "\\\\".join(wrapped)
    if len(parts) > 1:
        joined = f"\\begin{{align}}\\begin{{aligned}}{joined}\\end{{aligned}}\\end{{align}}"
    return joined


def check_tex(tex: str, display: bool) -> list[TexProblem]:
    """Problems MathJax would report for one math block, given as MathJax receives it
    (for Markdown ``$$`` math, after :func:`sphinx_wrap`). ``display``: display math."""
    problems: list[TexProblem] = []
    body = _strip_comments(tex)
    if not _braces_balanced(body):
        problems.append(TexProblem("unbalanced braces", tex))
    stack: list[str] = []
    spans: list[tuple[str, int, int]] = []  # environment, start, end
    opened: list[int] = []
    for match in _BEGIN_END.finditer(body):
        kind, env = match.group(1), match.group(2).strip()
        if kind == "begin":
            stack.append(env)
            opened.append(match.end())
        elif not stack or stack[-1] != env:
            problems.append(TexProblem(f"\\end{{{env}}} without a matching \\begin", tex))
            break
        else:
            stack.pop()
            spans.append((env, opened.pop(), match.start()))
    if stack:
        problems.append(TexProblem(f"\\begin{{{stack[-1]}}} is never ended", tex))
    lefts = len(re.findall(r"\\left(?![A-Za-z])", body))
    rights = len(re.findall(r"\\right(?![A-Za-z])", body))
    if lefts != rights:
        problems.append(TexProblem(f"{lefts} \\left but {rights} \\right", tex))

    tags = [m.start() for m in re.finditer(r"\\tag\*?(?![A-Za-z])", body)]
    for position in tags:
        inside = [env for env, start, end in spans if start <= position < end]
        bad = [env for env in inside if env.rstrip("*") in NO_TAG_ENVS]
        if bad:
            problems.append(TexProblem(f"\\tag inside {bad[-1]} (MathJax: \\tag not allowed in "
                                       f"{bad[-1]} environment); Sphinx wraps $$ math that holds "
                                       "\\\\ in split: use \\begin{align} (amsmath) or one line", tex))
    if not spans and len(tags) > 1:
        problems.append(TexProblem("more than one \\tag in one equation", tex))
    if tags and not display:
        problems.append(TexProblem("\\tag in inline math", tex))

    # '&' must sit inside an alignment environment (or Sphinx's split wrapping)
    for match in re.finditer(r"(?<!\\)&", body):
        position = match.start()
        inside = [env for env, start, end in spans if start <= position < end]
        if any(env in ALIGN_ENVS for env in inside):
            continue
        problems.append(TexProblem("& outside an alignment environment (Misplaced &)", tex))
        break
    return problems


# ------------------------------------------------------------------ Markdown

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})(.*)$")


def math_in_markdown(text: str) -> list[tuple[str, bool, bool]]:
    """``(tex, display, nowrap)`` for every math block of MyST Markdown (dollarmath,
    amsmath environments, ``{math}`` directives); code is skipped."""
    blocks: list[tuple[str, bool, bool]] = []
    prose: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match:
            fence, info = match.group(2), match.group(3).strip()
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i])
                i += 1
            i += 1
            if info.startswith("{math}"):
                content = [line for line in body if not line.strip().startswith(":")]
                blocks.append(("\n".join(content), True, False))
            elif info.startswith("{"):  # admonitions, dropdowns...: their text is MyST too
                prose.append("\n".join(body))
            continue  # plain code fences: not math
        prose.append(lines[i])
        i += 1
    text = "\n".join(prose)
    text = re.sub(r"``[^`]*``|`[^`\n]*`", " ", text)  # inline code
    for match in re.finditer(r"\$\$(.+?)\$\$", text, re.S):
        blocks.append((match.group(1), True, False))
    text = re.sub(r"\$\$(.+?)\$\$", " ", text, flags=re.S)
    for match in re.finditer(r"\\begin\{(equation\*?|align\*?|gather\*?|multline\*?|"
                             r"alignat\*?|flalign\*?)\}(.+?)\\end\{\1\}", text, re.S):
        blocks.append((match.group(0), True, True))  # amsmath: nowrap
    text = re.sub(r"\\begin\{(equation\*?|align\*?|gather\*?|multline\*?|alignat\*?|"
                  r"flalign\*?)\}(.+?)\\end\{\1\}", " ", text, flags=re.S)
    for match in re.finditer(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<![\s\\])\$(?!\d)", text):
        blocks.append((match.group(1), False, True))
    return blocks


def check_markdown(text: str) -> list[TexProblem]:
    problems: list[TexProblem] = []
    for tex, display, nowrap in math_in_markdown(text):
        problems.extend(check_tex(tex if nowrap or not display else sphinx_wrap(tex), display))
    return problems


# ------------------------------------------------------------------ built HTML

_HTML_MATH = re.compile(
    r'<(div|span) class="math[^"]*">(.*?)</\1>', re.S)


def math_in_html(html: str) -> list[tuple[str, bool]]:
    """``(tex, display)`` for every math element Sphinx/myst-nb wrote into a page."""
    import html as html_lib

    found = []
    for match in _HTML_MATH.finditer(html):
        tex = html_lib.unescape(match.group(2)).strip()
        display = match.group(1) == "div" or tex.startswith("\\[")
        for opener, closer in (("\\[", "\\]"), ("\\(", "\\)")):
            if tex.startswith(opener) and tex.endswith(closer):
                tex = tex[len(opener):-len(closer)]
        found.append((tex, display))
    return found
