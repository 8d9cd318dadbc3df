"""The report's Markdown and LaTeX tables: pandas lays them out, and every
cell says what the caller wrote, at its printed precision."""

from conftest import table_rows

from aninfonce.table_markup import frame, latex, markdown


def test_markdown_keeps_each_cell_as_written_and_escapes_the_column_separator():
    text = markdown([["`a.b`", "0.20", "-0.00", "1,000", "x | y"], ["**PASS** (now FAIL)", "", "1e-3", "–", "z"]],
                    ["claim", "R²", "Λ̂", "step", ""])
    lines = text.splitlines()
    assert len(lines) == 4 and set(lines[1]) == {"|", "-"}  # header, separator, one line per row
    assert "x \\| y" in lines[2]  # a bare | would end the cell in any Markdown reader
    assert table_rows(text) == [["claim", "R²", "Λ̂", "step", ""], ["`a.b`", "0.20", "-0.00", "1,000", "x | y"],
                                ["**PASS** (now FAIL)", "", "1e-3", "–", "z"]]


def test_markdown_of_no_rows_is_the_header_alone():
    assert table_rows(markdown([], ["a", "b"])) == [["a", "b"]]


def test_latex_escapes_cells_header_and_caption_and_sets_the_symbols_in_math():
    table = frame([["InfoNCE (τ = 0.2)", "a & b_c", "50 %"]], ["loss", "R² †", "σ_1"])
    text = latex(table, "Recovery (%) of crop_x & flip†")
    lines = text.splitlines()
    assert lines[0] == r"\begin{table}[t]" and lines[-1] == r"\end{table}"
    assert r"\begin{tabular}{lrr}" in lines and r"\toprule" in lines and r"\bottomrule" in lines
    assert r"\small" in lines and r"\centering" in lines
    assert r"loss & R$^2$ $^\dagger$ & $\sigma$\_1 \\" in lines
    assert r"InfoNCE ($\tau$ = 0.2) & a \& b\_c & 50 \% \\" in lines
    assert r"\caption{Recovery (\%) of crop\_x \& flip$^\dagger$}" in lines
    assert lines.index(r"\midrule") == lines.index(r"\toprule") + 2  # one header line between the rules
