"""Every relative Markdown link in README.md and docs/*.md points at a file
or folder of the repository, so moving a document cannot leave a dead link."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# [text](target) and [text](target "title"); an image link ![..](..) matches too
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def relative_links(md: Path) -> list[str]:
    text = FENCE.sub("", md.read_text())  # code blocks hold code, not links
    text = re.sub(r"`[^`\n]*`", "", text)  # nor do inline code spans
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


def dead_links(md: Path) -> list[str]:
    return [t for t in relative_links(md) if not (md.parent / t.split("#", 1)[0]).exists()]


def test_every_relative_link_in_readme_and_docs_resolves():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(docs) > 1
    dead = {str(md.relative_to(ROOT)): bad for md in docs if (bad := dead_links(md))}
    assert not dead, f"dead relative links: {dead}"


def test_a_dead_link_is_found_and_urls_anchors_and_code_are_not_links(tmp_path):
    (tmp_path / "there.md").write_text("x")
    md = tmp_path / "page.md"
    md.write_text("[ok](there.md#part) [gone](missing.md) [web](https://example.org/x) [up](#top)\n"
                  "`[not](a-link.md)`\n```\n[also not](in-code.md)\n```\n![figure](gone.png)\n")
    assert relative_links(md) == ["there.md#part", "missing.md", "gone.png"]
    assert dead_links(md) == ["missing.md", "gone.png"]
