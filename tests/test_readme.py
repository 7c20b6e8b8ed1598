"""The README's claims about the code stay true as the code moves."""

import json
import re
import shlex
import subprocess
import sys

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


def _section(title: str) -> str:
    """The README's text under `## title`, up to the next `## ` heading."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_own_env_example_trains_and_evaluates(script, tmp_path):
    # The section's env module and its two commands, as a user copies them.
    section = _section("Train on your own env")
    (module,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    (tmp_path / "mygame.py").write_text(module)
    commands = re.findall(r"^PYTHONPATH=\. python scripts/(\S+) (.*)$", section, re.MULTILINE)
    assert [name for name, _ in commands] == ["train.py", "evaluate.py"]
    outputs = []
    for name, arguments in commands:
        done = script(name, *shlex.split(arguments), cwd=tmp_path, pythonpath=".")
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert "reached the target" in outputs[0]
    config = json.loads(
        next((tmp_path / "runs").glob("mygame_Toy-v0__seed0__*/config.json")).read_text()
    )
    assert (config["env"], config["env_kwargs"]) == ("mygame:Toy-v0", {"length": 5})
    # 20 greedy episodes of length 5 (the recorded kwargs): a return of at most 5 each.
    mean = float(re.search(r"return (\S+) ±", outputs[1]).group(1))
    assert 4.5 <= mean <= 5.0


def test_python_api_examples_run(tmp_path):
    # The three examples in order (the second loads the first one's file), in one process.
    blocks = re.findall(r"```python\n(.*?)```", _section("Python API"), re.DOTALL)
    assert len(blocks) == 3
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(blocks)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"\d+ steps, mean return [\d.]+, saved to cartpole.keras", lines[0])
    assert re.fullmatch(r"return \d+\.0", lines[1])
    assert [line.split(":")[0] for line in lines[2:]] == [f"episode {i}" for i in range(10)]
