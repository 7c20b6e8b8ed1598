"""The README's claims about the code stay true as the code moves."""

import re

from conftest import REPO

from reinforce_tf.config import options_table

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


def test_flag_table_is_the_generated_one():
    # The README's flag table is options_table() (from the TrainConfig fields), pasted
    # between two marker lines.
    regenerate = (
        "README.md's flag table differs from the TrainConfig fields; paste the output of\n"
        '  python -c "from reinforce_tf.config import options_table; print(options_table())"\n'
        "between the lines <!-- flags:start --> and <!-- flags:end --> of README.md"
    )
    between = r"^<!-- flags:start -->$(.*?)^<!-- flags:end -->$"
    match = re.search(between, README, re.MULTILINE | re.DOTALL)
    assert match, regenerate
    assert match.group(1).strip("\n") == options_table(), regenerate  # blank lines around: ok
