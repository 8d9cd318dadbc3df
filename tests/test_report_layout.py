"""REPORT.md's shape: the headline from the verdicts (at most 20 lines), the
table of contents, one notation, sections as a list; stale runs counted, not
printed, when results are read."""

import re
from pathlib import Path

import pandas as pd

import aninfonce.analyses  # noqa: F401  (registers every analysis)
from aninfonce import manifest, report
from aninfonce.cli import main
from aninfonce.registry import all_analyses
from aninfonce.report_sections import HEADLINE_MAX_LINES, SECTIONS, paper_notation
from aninfonce.verdicts import Verdict

ROOT = Path(__file__).resolve().parent.parent


def _verdict(exp, claim, status, final=None):
    history = ((1000, 1.0 if final else 0.0, bool(final)),) if final is not None else ()
    return Verdict(experiment=exp.id, claim=claim.id, text=claim.text, rule=claim.rule, status=status,
                   measured="Lambda_2 = 25: R^2 0.9", history=history, short=claim.short)


def _write(tmp_path, sections=SECTIONS):
    exps = list(all_analyses().values())
    fig2, fig4 = all_analyses()["fig2"], all_analyses()["fig4"]
    verdicts = [_verdict(fig2, fig2.claims[2], "PASS"), _verdict(fig2, fig2.claims[0], "FAIL"),
                _verdict(fig2, fig2.claims[1], "NOT SETTLED", final=True), _verdict(fig4, fig4.claims[0], "NO DATA")]
    frames = {e.id: pd.DataFrame(columns=["run_key", "seed", "step", "metric", "value"]) for e in exps}
    path = report.write_report(exps, frames, verdicts, {}, tmp_path, "quick", sections=sections)
    return path.read_text(), fig2


def test_headline_then_contents_then_entries(tmp_path):
    text, fig2 = _write(tmp_path)
    head, rest = text.split("## Headline\n", 1)
    assert head.startswith("# Paper vs reproduced") and head.count("\n") <= 4
    headline, rest = rest.split("## Contents\n", 1)
    assert len(headline.strip().splitlines()) + 1 <= HEADLINE_MAX_LINES
    assert "**1 reproduce**, **1 do not**, **2 are undecided**" in headline
    row = next(line for line in headline.splitlines() if "(`fig2`)" in line)
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1] == fig2.claims[2].short and cells[2] == fig2.claims[0].short  # statements, not ids
    assert cells[3].startswith("1 not settled (now 1 passing)")
    assert "no runs in this profile" in next(line for line in headline.splitlines() if "(`fig4`)" in line)
    # the contents link every second-level heading below it, by GitHub's anchors
    contents = rest.split("\n## ", 1)[0]
    body_headings = [line[3:] for line in rest.splitlines() if line.startswith("## ")]
    assert len(body_headings) == contents.count("\n- [") + contents.startswith("- [")
    assert "(#figure-2-a-d-synthetic-infonce-vs-aninfonce-across-λ2-fig2-source-recon)" in contents
    assert "(#every-run)" in contents and "(#how-the-claims-are-judged)" in contents


def test_one_notation_in_the_report(tmp_path):
    text, _ = _write(tmp_path)
    prose = re.sub(r"`[^`\n]*`", "", text)  # code spans (claim ids, commands) keep their spelling
    for ascii_form in ("Lambda_2", "Lambda^", "R^2", "kappa"):
        assert ascii_form not in prose, ascii_form
    assert "Λ2" in text and "Λ̂" in text and "R²" in text
    assert paper_notation("Lambda_1 = 5, Lambda^ of Lambda, R^2, kappa, hard_beta") == "Λ1 = 5, Λ̂ of Λ, R², κ, hard_beta"
    # a claim id is looked up by its spelling: fig5's ids say kappa
    assert paper_notation("kappa, `fig5.no-overlap-at-large-kappa`") == "κ, `fig5.no-overlap-at-large-kappa`"


def test_a_section_is_one_function_in_the_list(tmp_path):
    def paper_beside_quick(inputs):
        return f"## Paper beside quick\n\n{len(inputs.verdicts)} verdicts\n"

    text, _ = _write(tmp_path, [*SECTIONS, paper_beside_quick])
    assert text.rstrip().endswith("4 verdicts") and "(#paper-beside-quick)" in text


def test_stale_runs_are_counted_not_printed(capsys):
    (fig3,) = manifest.bind([all_analyses()["fig3"]], ROOT / "results", "quick")  # the runs its manifest lists
    stale = {}
    report.load_all([fig3], ROOT / "results", "quick", stale=stale)
    assert stale.get("fig3", 0) > 0 and "stale" not in capsys.readouterr().out
    assert report.stale_runs([fig3], ROOT / "results", "quick") == stale
    assert main(["fig3", "--dry-run", "--results-dir", str(ROOT / "results")]) == 0
    assert f"stale runs (spec no longer in the quick grid; kept on disk, never read): {stale['fig3']} in fig3" in \
        capsys.readouterr().out
