"""Every relative link in README.md and docs/**/*.md points at something that exists.

``[x](path)`` must name an existing file or directory of the repository, ``[x](page.md#anchor)``
a heading of that page, and ``[x](#anchor)`` a heading of the page itself. Anchors follow
GitHub's rules: the heading's text, lower-cased, with punctuation removed and spaces turned
into hyphens, and ``-1``, ``-2``... for repeated headings. Links inside code (fenced blocks,
inline code) are not links, and URLs with a scheme (``https:``, ``mailto:``) are not checked.
The pages are read when the tests run, so a page added later is covered too.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_LIST_OR_TABLE = re.compile(r"^\s*([-*+]|\d+[.)])\s|^\s*\|")
_CODE_SPAN = re.compile(r"(`+)((?:(?!\n[ \t]*\n).)+?)\1", re.DOTALL)
_INLINE_LINK = re.compile(
    r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]"  # [text], one level of nested brackets
    r"\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"  # (target or <target>
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"  # optional "title")
)
_REFERENCE = re.compile(r"^ {0,3}\[([^\]]+)\]:\s*(<[^>]*>|\S+)")
_HTML_ID = re.compile(r"<a\s[^>]*(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_EMPHASIS = re.compile(r"(\*{1,3}|(?<!\w)_{1,3})(\S(?:.*?\S)?)\1(?!\w)")


@dataclass(frozen=True)
class Link:
    """One link as written: where it is, and its target."""

    source: Path
    line: int
    target: str

    def where(self, root: Path = ROOT) -> str:
        """``file:line: (target)``, the file relative to ``root``."""
        return f"{self.source.relative_to(root)}:{self.line}: ({self.target})"


# ------------------------------------------------------------------------------ reading pages


def doc_pages(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page under docs/, sorted."""
    pages = [root / "README.md"] if (root / "README.md").is_file() else []
    return pages + sorted((root / "docs").rglob("*.md"))


def outside_fences(text: str) -> list[str]:
    """The page's lines, with every line of a fenced code block (fences included) blank."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
            lines.append("")
        elif fence is not None:
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                fence = None
            lines.append("")
        else:
            lines.append(line)
    return lines


def prose(text: str) -> str:
    """``text`` with code blocks and inline code blanked out; line numbers are kept."""
    joined = "\n".join(outside_fences(text))
    return _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), joined)


def heading_texts(text: str) -> list[str]:
    """The raw text of every ATX (``## x``) and setext (``x`` over ``---``) heading, in order."""
    headings: list[str] = []
    previous = ""
    for line in outside_fences(text):
        atx = _ATX.match(line)
        underline = _SETEXT.match(line)
        if atx:
            headings.append(atx.group(1) or "")
            previous = ""  # a heading's line cannot also be a setext heading's text
        elif underline and previous.strip() and not _LIST_OR_TABLE.match(previous):
            headings.append(previous.strip())
            previous = ""
        else:
            previous = line
    return headings


def plain_heading(raw: str) -> str:
    """A heading's text as GitHub renders it: links keep their text, inline code its
    content, emphasis loses its markers, HTML tags go."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    parts: list[str] = []
    last = 0
    for span in _CODE_SPAN.finditer(text):  # code is literal: no markup inside
        parts += [_strip_markup(text[last : span.start()]), span.group(2).strip()]
        last = span.end()
    parts.append(_strip_markup(text[last:]))
    return "".join(parts)


def _strip_markup(text: str) -> str:
    text = re.sub(r"<[^>]+>", "", text)
    previous = None
    while previous != text:
        previous, text = text, _EMPHASIS.sub(r"\2", text)
    return text


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's plain text, before de-duplication: lower case; letters,
    digits, ``_`` and ``-`` kept; other punctuation and symbols (emoji) dropped; spaces to
    ``-``."""
    kept = (
        c
        for c in heading.strip().lower()
        if c.isalnum() or c in "-_ " or unicodedata.category(c).startswith("M")
    )
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page offers: its headings' slugs (``-1``, ``-2``... for repeats) and
    explicit ``<a name="...">`` / ``id="..."`` anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for raw in heading_texts(text):
        base = slug(plain_heading(raw))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(match.group(1) for match in _HTML_ID.finditer(text))
    return found


@cache
def page_anchors(path: Path) -> frozenset[str]:
    """The anchors of the page at ``path``."""
    return frozenset(anchors(path.read_text(encoding="utf-8")))


def links(path: Path) -> list[Link]:
    """Every inline link (text may run over lines) and reference definition of the page."""
    text = prose(path.read_text(encoding="utf-8"))
    found = [
        Link(path, text.count("\n", 0, match.start()) + 1, match.group(2))
        for match in _INLINE_LINK.finditer(text)
    ]
    for number, line in enumerate(text.splitlines(), start=1):
        reference = _REFERENCE.match(line)
        if reference:
            found.append(Link(path, number, reference.group(2)))
    return sorted(found, key=lambda link: link.line)


# ------------------------------------------------------------------------------ checking


def problem(link: Link, root: Path = ROOT) -> str | None:
    """Why ``link`` leads nowhere, or ``None`` when it is fine (or not ours to check)."""
    target = link.target.strip()
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1].strip()
    if not target:
        return "empty link"
    if _SCHEME.match(target) or target.startswith("//"):
        return None
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part.partition("?")[0])
    resolved = link.source
    if path_part:
        base = root if path_part.startswith("/") else link.source.parent
        resolved = (base / path_part.lstrip("/")).resolve()
        if not resolved.is_relative_to(root.resolve()):
            return f"{path_part} leaves the repository"
        if not resolved.exists():
            return f"{path_part} does not exist"
    checkable = anchor and resolved.is_file() and resolved.suffix.lower() == ".md"
    if checkable and unquote(anchor).lower() not in page_anchors(resolved):
        return f"#{anchor} is not a heading of {path_part or 'this page'}"
    return None


def broken_links(pages: list[Path], root: Path = ROOT) -> list[str]:
    """``file:line: (target): why`` for every link of ``pages`` that leads nowhere."""
    report = []
    for page in pages:
        for link in links(page):
            why = problem(link, root)
            if why is not None:
                report.append(f"{link.where(root)}: {why}")
    return report


# ------------------------------------------------------------------------------ the tests


PAGES = doc_pages()


def test_there_are_pages_to_check() -> None:
    assert ROOT / "README.md" in PAGES
    assert len(PAGES) > 5


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    broken = broken_links([page])
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


# -- the checker itself, on headings and pages written for the purpose

SLUG_CASES = [
    ("The HTTP service: `mt5gate serve`", "the-http-service-mt5gate-serve"),
    ("Endpoints (`/docs` has the OpenAPI page)", "endpoints-docs-has-the-openapi-page"),
    ("A3. `(-10005, 'IPC timeout')` from initialize() or login(), often after about 60 s",
     "a3--10005-ipc-timeout-from-initialize-or-login-often-after-about-60-s"),
    ('Security model, compared with RPyC "classic" servers',
     "security-model-compared-with-rpyc-classic-servers"),
    ("Service (`bench/service_bench.py`)", "service-benchservice_benchpy"),
    ("1. Try it on the simulator first", "1-try-it-on-the-simulator-first"),
    ("`snake_case` and **bold** and _emphasis_", "snake_case-and-bold-and-emphasis"),
    ("A [linked](other.md) heading", "a-linked-heading"),
    ("The 2. Wine prefix *(not verified here)*", "the-2-wine-prefix-not-verified-here"),
    ("\u00dcn\u00efcode caf\u00e9", "\u00fcn\u00efcode-caf\u00e9"),
    ("Alerts \U0001f6d1 now", "alerts--now"),
]  # fmt: skip


@pytest.mark.parametrize(("heading", "anchor"), SLUG_CASES, ids=[a for _, a in SLUG_CASES])
def test_slugs_follow_github(heading: str, anchor: str) -> None:
    assert slug(plain_heading(heading)) == anchor


def test_the_checker_finds_broken_links_and_anchors(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "README.md").write_text("# Top\n\n[ok](docs/a.md#second-part)\n")
    (docs / "a.md").write_text(
        "# A page\n\n## Second part\n\n## Second part\n\nSetext heading\n---\n\n"
        "[self](#a-page) [again](#second-part-1) [setext](#setext-heading)\n"
        "[missing file](nope.md) [missing anchor](#nowhere) [up](../README.md#top)\n"
        "[escape](../../outside.md) [web](https://example.com/x.md#y) [mail](mailto:a@b.c)\n"
        "[image](img.png) ![picture](img.png) [dir](.)\n"
        "`[code](nope.md)` and\n\n```\n[fenced](nope.md)\n```\n\n"
        "[ref]: b.md#there\n"
    )
    (docs / "b.md").write_text("# B\n\n## There\n")
    (docs / "img.png").write_bytes(b"")
    assert broken_links(doc_pages(tmp_path), tmp_path) == [
        "docs/a.md:11: (nope.md): nope.md does not exist",
        "docs/a.md:11: (#nowhere): #nowhere is not a heading of this page",
        "docs/a.md:12: (../../outside.md): ../../outside.md leaves the repository",
    ]


def test_titles_angle_brackets_references_and_lines(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "c.md"
    page.write_text(
        '# C\n\n[t](#c "a title") [u](<d e.md>)\n\n[r]: missing.md\n\n'
        "A [link over\ntwo lines](gone.md#x) and `code over\ntwo lines [x](gone.md)`.\n"
    )
    assert broken_links([page], tmp_path) == [
        "docs/c.md:3: (<d e.md>): d e.md does not exist",
        "docs/c.md:5: (missing.md): missing.md does not exist",
        "docs/c.md:7: (gone.md#x): gone.md does not exist",
    ]
