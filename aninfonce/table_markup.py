"""Markdown and LaTeX tables, written by pandas (``to_markdown`` through
tabulate, ``Styler.to_latex``). Every cell arrives as text already formatted
at its printed precision: the writers only lay it out, they never reformat a
number. Part of the reading half (no torch)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

# Symbols the report writes in Unicode and LaTeX needs in math mode; pandas
# escapes LaTeX's special characters but cannot know how this paper spells these.
TEX_SYMBOLS = {"†": r"$^\dagger$", "²": "$^2$", "σ": r"$\sigma$", "τ": r"$\tau$"}
# The characters pandas' LaTeX escaping replaces, for the one string it does not
# escape: the caption.
TEX_SPECIAL = str.maketrans({"\\": r"\textbackslash ", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                             "{": r"\{", "}": r"\}", "~": r"\textasciitilde ", "^": r"\textasciicircum "})


def frame(rows: Iterable[Sequence[object]], columns: Sequence[str]) -> pd.DataFrame:
    """A table of text cells (a header may repeat or be empty, as in the report's tables)."""
    return pd.DataFrame([[str(c) for c in r] for r in rows], columns=pd.Index(list(columns), dtype=object))


def markdown(rows: Iterable[Sequence[object]] | pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A GitHub Markdown table of ``rows`` under ``columns`` (or of a DataFrame's
    columns). A ``|`` inside a cell is escaped so that it stays in its cell."""
    table = rows if isinstance(rows, pd.DataFrame) else frame(rows, columns or [])
    escape = lambda s: str(s).replace("|", r"\|")  # noqa: E731
    table = table.map(escape).set_axis([escape(c) for c in table.columns], axis="columns")
    # disable_numparse: a cell such as "0.20" stays as written (tabulate would print 0.2). stralign=None:
    # no padding, so a row is as long as its cells and a committed REPORT.md changes only where a cell does
    # (tabulate still draws the separator row to the widest cell)
    return table.to_markdown(index=False, tablefmt="github", disable_numparse=True, stralign=None)


def latex(table: pd.DataFrame, caption: str) -> str:
    """A booktabs table float: the first column left-aligned, the rest right-aligned,
    in small type, the caption above, and the paper's symbols in math mode."""
    styler = (table.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis="columns")
              .set_table_styles([{"selector": "small", "props": ":;"}]))  # renders \small inside the float
    text = styler.to_latex(hrules=True, position="t", position_float="centering",
                           caption=caption.translate(TEX_SPECIAL), column_format="l" + "r" * (len(table.columns) - 1))
    for symbol, tex in TEX_SYMBOLS.items():
        text = text.replace(symbol, tex)
    return text
