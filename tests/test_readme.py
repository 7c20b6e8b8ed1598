"""The README's claims about the code stay true as the code moves."""

import re

from conftest import REPO

README = (REPO / "README.md").read_text()


def test_equation_to_code_map_points_at_the_quoted_lines():
    claims = re.findall(r"`(reinforce_tf/\w+\.py)`[^|]*?line (\d+): `([^`]+)`", README)
    assert len(claims) >= 3
    for path, line, code in claims:
        lines = (REPO / path).read_text().splitlines()
        assert code in lines[int(line) - 1], f"{path}:{line} no longer holds {code!r}"


def test_ci_runs_the_readme_test_command():
    command = "pip install -r requirements.txt && python -m pytest"
    assert f"```\n{command}\n```" in README
    assert command in (REPO / ".ci" / "run").read_text()
