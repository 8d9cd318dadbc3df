"""No line of the package, the tests or the benchmarks cites an issue or a
ticket: the tracker is not in the repository, so such a line explains nothing
to its reader (the history lives in git)."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("aninfonce", "tests", "benchmarks")

# the word issue(s) or ticket followed by a number (with or without a hash, in a URL, in brackets), a bare
# hash and number, or a GitHub-style gh-number; the test below shows each form
CITATION = re.compile(r"\b(?:issues?|tickets?)\b\W{0,3}[A-Z]*-?\d|(?<![\w#&])#\d+\b|\bgh-\d", re.IGNORECASE)
HEX_COLOUR = re.compile(r"""(["'])#(?:[0-9a-fA-F]{3}){1,2}\1""")  # "#333" in a plot style is a colour, not a citation


def offending_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of each line of ``text`` that cites an issue or a ticket."""
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1)
            if CITATION.search(HEX_COLOUR.sub("", line))]


def scanned_files() -> list[Path]:
    """The text files under SCANNED (compressed data and other binaries left
    out): the ones git tracks or would track, or every file outside caches
    where there is no git checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *SCANNED], cwd=ROOT, capture_output=True,
                                check=True).stdout.decode().split("\0")
        paths = [ROOT / name for name in listed if name]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for d in SCANNED for p in (ROOT / d).rglob("*") if "__pycache__" not in p.parts]
    return [p for p in paths if p.is_file() and b"\0" not in p.read_bytes()[:8192]]


def test_no_line_cites_an_issue():
    files = scanned_files()
    assert any(f.name == "verdicts.py" for f in files) and any(f.suffix == ".md" for f in files)
    bad = [f"{f.relative_to(ROOT)}:{i}: {line}" for f in files
           for i, line in offending_lines(f.read_text(encoding="utf-8", errors="replace"))]
    assert not bad, "lines citing an issue or a ticket:\n" + "\n".join(bad)


def test_the_pattern_catches_citations_and_spares_the_rest():
    # the samples are assembled here so that this file's own lines cite nothing
    cited = ["see " + "issue" + " 25", "# fixed in (" + "issue #" + "6)", "Issue" + " 14.2's target",
             "as " + "issues" + " 3 and 4 asked", "closes " + "#" + "31", "gh" + "-12", "the " + "Ticket" + " 7 says",
             "tickets/" + "ABC-9", "https://github.com/o/r/" + "issues/" + "25"]
    spared = ["colour = '#333'", 'c="#1f77b4"', "# 3 rows per step", "an issue with the loader", "x = a#b",
              "tissue 5", "an issue or a ticket", "issues are tracked elsewhere"]
    text = "\n".join(cited + spared)
    assert offending_lines(text) == [(i, s) for i, s in enumerate(cited, 1)]
