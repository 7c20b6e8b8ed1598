"""benchmarks/mujoco_table.py end to end at a tiny budget: it trains, judges, writes the JSON, the
Markdown and the curve; run again it skips what is done; a run folder missing from the
results is resumed, not started over; bad flags are one line with nothing written."""

import json

from conftest import run_script


def _flags(tmp_path, *extra):
    return (
        "--envs=InvertedPendulum-v5",
        "--seeds=0",
        "--total_steps=3000",
        "--eval_every=1000",
        "--eval_episodes=2",
        "--final_episodes=2",
        f"--runs_dir={tmp_path / 'runs'}",
        f"--results={tmp_path / 'results.json'}",
        f"--markdown={tmp_path / 'mujoco.md'}",
        f"--curves_dir={tmp_path / 'curves'}",
        "--wait_while=",
        f"--readme={tmp_path / 'README.md'}",
        *extra,
    )


def _mujoco(tmp_path, *extra):
    return run_script(
        "mujoco_table.py", *_flags(tmp_path, *extra), cwd=tmp_path, folder="benchmarks"
    )


def test_runner_trains_skips_and_resumes(tmp_path):
    (tmp_path / "README.md").write_text(
        "# x\n<!-- mujoco:start -->\nold\n<!-- mujoco:end -->\nend\n"
    )
    done = _mujoco(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "InvertedPendulum-v5__seed0__3000: training" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    (run,) = results["runs"].values()
    assert (run["env"], run["seed"], run["total_steps"]) == ("InvertedPendulum-v5", 0, 3000)
    assert 0 < run["steps"] <= 3000 and run["best_eval"] is not None
    assert run["final_episodes"] == 2 and run["processes"] == 1
    markdown = (tmp_path / "mujoco.md").read_text()
    assert "| InvertedPendulum-v5 | " in markdown and "999.2 ± 2.4" in markdown
    assert "![InvertedPendulum-v5](curves/InvertedPendulum-v5.png)" in markdown
    assert (tmp_path / "curves" / "InvertedPendulum-v5.png").stat().st_size > 0
    assert "| InvertedPendulum-v5 | " in done.stdout  # the short table, also in the README:
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# x\n<!-- mujoco:start -->\n| task | ") and "old" not in readme
    assert "| InvertedPendulum-v5 | " in readme
    assert readme.endswith(" | 0 |\n<!-- mujoco:end -->\nend\n")  # Pendulum-v1: no run

    again = _mujoco(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "InvertedPendulum-v5__seed0__3000: done, skipped" in again.stdout
    assert json.loads((tmp_path / "results.json").read_text())["runs"] == results["runs"]

    # The runner stopped after the run's folder was made but before its result was saved:
    # the run is resumed (its checkpoint is at the end) and judged again, to the same result.
    (tmp_path / "results.json").unlink()
    resumed = _mujoco(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "InvertedPendulum-v5__seed0__3000: resuming" in resumed.stdout
    (again_run,) = json.loads((tmp_path / "results.json").read_text())["runs"].values()
    for key in ("steps", "episodes", "best_eval", "last_100_mean", "final_greedy_mean"):
        assert again_run[key] == run[key], key
    assert again_run["processes"] == 2


def test_bad_flags_are_one_line_and_write_nothing(tmp_path):
    (tmp_path / "README.md").write_text("<!-- mujoco:start -->\n<!-- mujoco:end -->\n")
    for flag, message in (
        ("--envs=NoSuchEnv-v0", "--envs: unknown environment id 'NoSuchEnv-v0'"),
        ("--seeds=0,x", "--seeds: must be a comma list of integers"),
    ):
        done = _mujoco(tmp_path, flag)
        assert done.returncode == 2
        assert done.stderr.startswith(f"error: {message}"), done.stderr
        assert done.stderr.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["README.md"]
    assert (tmp_path / "README.md").read_text() == "<!-- mujoco:start -->\n<!-- mujoco:end -->\n"
