"""The README's claims about the code stay true as the code moves."""

import json
import re
import shlex

import gymnasium as gym
import numpy as np
import pytest
from conftest import REPO, run_python

from reinforce_tf import build_policy, save_policy
from reinforce_tf.config import options_table
from reinforce_tf.training.export import export_file

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


def test_saved_policy_snippet_samples_in_plain_keras(tmp_path):
    # The snippet of "The saved policy", in a process that never imports reinforce_tf, on a
    # CartPole policy whose π(right) is 0.9 everywhere: it samples, and greedy is the argmax.
    (snippet,) = re.findall(r"```python\n(.*?)```", _section("The saved policy"), re.DOTALL)
    cartpole = gym.make("CartPole-v1")
    policy = build_policy(cartpole.observation_space, cartpole.action_space, ())
    policy.get_layer("logits").set_weights(
        [np.zeros((4, 2), np.float32), np.array([0.0, np.log(9.0)], np.float32)]
    )
    save_policy(policy, tmp_path / "policy.keras", {"env": "CartPole-v1"})
    report = (
        "\nimport sys\n"
        "assert not any(name.startswith('reinforce_tf') for name in sys.modules)\n"
        "obs = np.zeros((2000, 4), np.float32)\n"
        "probs = policy(obs).numpy().astype(np.float64)\n"
        "action = np.array([rng.choice(len(p), p=p / p.sum()) for p in probs])\n"
        "print(probs[0, 1], action.mean(), greedy_action.tolist())\n"
    )
    done = run_python(snippet + report, tmp_path)
    assert done.returncode == 0, done.stderr
    right, share, greedy = done.stdout.split(maxsplit=2)
    assert float(right) == pytest.approx(0.9, abs=1e-6)
    # 2,000 draws of Bernoulli(0.9): a share of rights within 4 standard errors (0.027).
    assert abs(float(share) - 0.9) < 0.027
    assert json.loads(greedy) == [1]


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
    done = run_python("\n".join(blocks), tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"\d+ steps, mean return [\d.]+, saved to cartpole.keras", lines[0])
    assert re.fullmatch(r"return \d+\.0", lines[1])
    assert [line.split(":")[0] for line in lines[2:]] == [f"episode {i}" for i in range(10)]


def test_serving_snippets_load_and_act_with_each_runtime_alone(tmp_path):
    # The "Serving formats" snippets, each run in a fresh process (which must never import
    # reinforce_tf) next to exports of a CartPole policy named as they name them.
    section = README.split("\n## Serving formats\n", 1)[1].split("\n## ", 1)[0]
    snippets = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(snippets) == 3
    cartpole = gym.make("CartPole-v1")
    policy = build_policy(cartpole.observation_space, cartpole.action_space, (8,), seed=3)
    save_policy(policy, tmp_path / "policy.keras", {"env": "CartPole-v1"})
    for format, name, greedy in [
        ("saved_model", "policy_savedmodel", False),
        ("litert", "policy.tflite", False),
        ("onnx", "policy.onnx", False),
        ("onnx", "policy_greedy.onnx", True),
    ]:
        export_file(tmp_path / "policy.keras", format, tmp_path / name, greedy=greedy)
    probabilities = np.asarray(policy(np.array([[0.01, -0.02, 0.03, 0.04]], np.float32)))
    report = (
        "\nimport sys, json\n"
        "assert not any(name.startswith('reinforce_tf') for name in sys.modules)\n"
        "print(json.dumps({'probs': np.asarray(probs).tolist(), "
        "'action': np.asarray(action).tolist(), 'env': globals().get('env_id')}))\n"
    )
    for snippet in snippets:
        done = run_python(snippet + report, tmp_path)
        assert done.returncode == 0, snippet + done.stderr
        result = json.loads(done.stdout.splitlines()[-1])
        np.testing.assert_allclose(result["probs"], probabilities, atol=1e-6)
        assert result["action"] == [int(probabilities.argmax())]
        assert result["env"] in (None, "CartPole-v1")


def test_serving_table_is_the_measured_one():
    # The size and latency table comes from benchmarks/export_latency.py, pasted between
    # two marker lines: a row per env, format and output.
    between = r"^<!-- export-latency:start -->$(.*?)^<!-- export-latency:end -->$"
    match = re.search(between, README, re.MULTILINE | re.DOTALL)
    assert match
    rows = [line for line in match.group(1).strip().splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| env | format | outputs | size | latency per call")
    assert len(rows) == 2 + 2 * 8  # header, rule; two envs × (.keras × 2 + 3 formats × 2)
