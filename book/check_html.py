"""Check the built book for what a reader would meet but the build does not report.

Run after the strict build (see book/README.md)::

    .venv/bin/python book/check_html.py                 # book/_build/html
    .venv/bin/python book/check_html.py --browser required

Fails (exit status 1, one line per problem) on

* **TeX errors**: every math element of every page is linted as MathJax will
  receive it (``book/tex_lint.py``: ``\\tag`` inside ``split``/``aligned``,
  unbalanced braces or environments, a misplaced ``&``); a page that already
  holds ``mjx-merror`` or MathJax's error text; and, when a Chromium is
  installed (``--browser auto``, the default), the DOM of every page after
  MathJax ran, searched for ``mjx-merror``;
* **missing local files**: every ``src``/``href`` of a page that points into
  the site, and on widget pages the files the widget manager's stylesheet
  loads relative to the page (the Font Awesome files under ``webfonts/``) and
  relative to its script.

The built HTML alone cannot show a MathJax error (MathJax runs in the
browser), which is why the lint runs on the math text; the browser pass is the
direct check where a browser exists.
"""
from __future__ import annotations

import argparse
import html as html_lib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

BOOK = Path(__file__).resolve().parent
sys.path.insert(0, str(BOOK))
import tex_lint  # noqa: E402  (book/ is not a package)

DEFAULT_SITE = BOOK / "_build" / "html"
TEX_ERROR_TEXT = (
    "<mjx-merror", "not allowed in split", "not allowed in aligned", "Misplaced &",
    "Undefined control sequence", "Missing or unrecognized delimiter", "Extra close brace",
    "Missing close brace", "Multiple \\tag", "Erroneous nesting of equation structures",
)
WIDGET_MARKERS = ("application/vnd.jupyter.widget-view+json",
                  "application/vnd.jupyter.widget-state+json")
_ATTRIBUTE = re.compile(r'\b(?:src|href)\s*=\s*"([^"]*)"')
_CSS_URL = re.compile(r'url\((\.\./webfonts/[^)?#"\']+)')
_WEBPACK_ASSET = re.compile(r'\.p\+"([0-9a-f]{8,}\.(?:woff2?|ttf|eot|svg))"')


def _local_target(page: Path, link: str, site: Path) -> Path | None:
    parts = urlsplit(html_lib.unescape(link))
    if parts.scheme or parts.netloc or not parts.path or link.startswith(("#", "mailto:", "data:")):
        return None
    target = (page.parent / unquote(parts.path)).resolve()
    try:
        target.relative_to(site.resolve())
    except ValueError:
        return target  # outside the site: still must exist (and will not, when published)
    return target


def _without_scripts(text: str) -> str:
    return re.sub(r"<script\b.*?</script>", " ", text, flags=re.S | re.I)


def check_page(page: Path, site: Path) -> list[str]:
    text = page.read_text(encoding="utf-8", errors="replace")
    name = page.relative_to(site).as_posix()
    problems: list[str] = []
    for tex, display in tex_lint.math_in_html(text):
        problems += [f"{name}: TeX: {problem}" for problem in tex_lint.check_tex(tex, display)]
    visible = re.sub(r"<style\b.*?</style>", " ", _without_scripts(text), flags=re.S | re.I)
    for marker in TEX_ERROR_TEXT:
        if marker in visible:
            problems.append(f"{name}: TeX error text in the page: {marker!r}")
    scripts: list[Path] = []
    for link in _ATTRIBUTE.findall(text):
        target = _local_target(page, link, site)
        if target is None:
            continue
        if not target.exists():
            problems.append(f"{name}: missing local file {link}")
        elif target.suffix == ".js":
            scripts.append(target)
    if any(marker in text for marker in WIDGET_MARKERS):
        managers = [s for s in scripts if s.name.startswith("embed")]
        if not managers:
            problems.append(f"{name}: widget page without a local widget manager script "
                            "(run book/vendor_js.py before the build to read it offline)")
        for script in managers:
            code = script.read_text(encoding="utf-8", errors="replace")
            for relative in sorted(set(_CSS_URL.findall(code))):
                if not (page.parent / relative).resolve().is_file():
                    problems.append(f"{name}: widget stylesheet loads {relative} (from the page), "
                                    "which is missing: re-run book/vendor_js.py --force")
            for asset in sorted(set(_WEBPACK_ASSET.findall(code))):
                if not (script.parent / asset).is_file():
                    problems.append(f"{name}: widget manager asset {asset} missing beside "
                                    f"{script.name}")
    return problems


def _chromium() -> str | None:
    for candidate in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(candidate)
        if path:
            return path
    return None


def check_rendered(page: Path, site: Path, browser: str) -> list[str]:
    """The page's DOM after its scripts ran (offline), searched for MathJax errors."""
    name = page.relative_to(site).as_posix()
    try:
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--proxy-server=http://127.0.0.1:9", "--virtual-time-budget=15000",
             "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120).stdout
    except subprocess.TimeoutExpired:
        return [f"{name}: the browser did not finish rendering within 120 s"]
    problems = []
    # the element, not the word: MathJax's own stylesheet in the page names mjx-merror too
    for match in re.finditer(r"<mjx-merror\b[^>]*>", dom):
        error = re.search(r'data-mjx-error="([^"]*)"', match.group(0))
        detail = html_lib.unescape(error.group(1)) if error else "(no message)"
        problems.append(f"{name}: MathJax error after rendering: {detail}")
    if "<mjx-container" not in dom and "class=\"math" in dom:
        problems.append(f"{name}: the page has math but MathJax rendered none (is it vendored?)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", type=Path, default=DEFAULT_SITE,
                        help="the built site (default: book/_build/html)")
    parser.add_argument("--browser", choices=("auto", "never", "required"), default="auto",
                        help="render every page in headless Chromium too (auto: when installed)")
    parser.add_argument("--max-exec-s", type=float, default=None,
                        help="also fail on a notebook whose execution in the build took longer "
                             "(wall seconds, from _build/execution_times.json; off by default "
                             "because a busy machine inflates wall time)")
    args = parser.parse_args(argv)
    site: Path = args.site
    pages = sorted(p for p in site.rglob("*.html")
                   if not p.relative_to(site).parts[0] in {"_static", "vendor", "_sources"})
    if not pages:
        print(f"check_html: no pages under {site}: build the book first", file=sys.stderr)
        return 1
    problems: list[str] = []
    for page in pages:
        problems += check_page(page, site)
    browser = _chromium() if args.browser != "never" else None
    if args.browser == "required" and browser is None:
        problems.append("no Chromium found for --browser required")
    if browser:
        for page in pages:
            if page.name in {"genindex.html", "search.html"}:
                continue
            problems += check_rendered(page, site, browser)
    times_file = site.parent / "execution_times.json"
    if times_file.is_file():
        import json

        times = json.loads(times_file.read_text())
        print("execution in the build (wall s): " + ", ".join(
            f"{name.rsplit('/', 1)[-1]} {entry['seconds']:.0f}" for name, entry in times.items()),
            file=sys.stderr)
        if args.max_exec_s is not None:
            problems += [f"{name}: executed in {entry['seconds']:.0f} s during the build, over "
                         f"--max-exec-s {args.max_exec_s:.0f}" for name, entry in times.items()
                         if entry["seconds"] > args.max_exec_s]
    for problem in problems:
        print(problem)
    rendered = f", rendered in {Path(browser).name}" if browser else ", not rendered (no Chromium)"
    print(f"check_html: {len(pages)} pages{rendered}: "
          f"{'OK' if not problems else f'{len(problems)} problem(s)'}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
