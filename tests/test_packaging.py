"""environment.yml and pyproject.toml pin the same packages, requirements-reading.txt a subset of them; CI runs
the README's test command."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_pins(extras: bool = True) -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values() if extras else ():
        pins += extra
    return {p.replace(" ", "") for p in pins}


def reading_pins() -> set[str]:
    """requirements-reading.txt: what the reading half needs (tests/test_reviewer.py)."""
    lines = (ROOT / "requirements-reading.txt").read_text().splitlines()
    return {line.replace(" ", "") for line in lines if line.strip() and not line.startswith("#")}


def _environment_pins() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    pins = [l.strip()[2:] for l in lines[start + 1:] if l.strip().startswith("- ")]
    return {p.replace(" ", "") for p in pins if not p.startswith("-e")}


def test_environment_matches_pyproject():
    assert _environment_pins() == _pyproject_pins()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```bash\n(?:.*\n)*?(python -m pytest[^\n]*)\n", readme)
    assert match, "README has no pytest command in a bash block"
    assert match.group(1) in (ROOT / ".ci" / "run").read_text()


def test_the_reading_requirements_are_the_projects_own_pins():
    assert reading_pins() and reading_pins() <= _pyproject_pins(extras=False)
