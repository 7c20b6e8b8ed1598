"""scripts/benchmark.py end to end at tiny settings: it runs, reports and writes its files."""

import json

from conftest import run_script

from reinforce_tf import TrainConfig

TINY = (
    "--seeds=1",
    "--seconds=0.05",
    "--total_steps=1500",
    "--naive_seconds=1",
    "--num_envs=2",
    "--noasync_envs",
    "--memory_steps=",
)


def test_tiny_benchmark_prints_and_writes_the_report(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text(
        "# Notes\n\n<!-- benchmark:start -->\nold table\n<!-- benchmark:end -->\nkept\n"
    )
    done = run_script(
        "benchmark.py",
        *TINY,
        f"--output={tmp_path / 'bench.json'}",
        f"--markdown={docs}",
        cwd=tmp_path,
        folder="benchmarks",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["machine"]["cores"] >= 1
    throughput = report["throughput"]
    assert throughput["raw_env_steps_per_s"] > throughput["collector"]["env_steps_per_s"] > 0
    assert (
        throughput["collector"]["env_steps_per_s"] >= throughput["collector"]["counted_steps_per_s"]
    )
    assert throughput["naive"] > 0 and throughput["update"]["samples_per_s"] > 0
    envs = TrainConfig.for_env("CartPole-v1").resolved_num_envs  # the trainer's default
    actors = {(row["num_envs"], row["actor"]) for row in report["alternatives"]}
    assert actors == {(envs, "tf_function"), (envs, "xla"), (envs, "concrete"), (2, "make_actor")}
    (ours,) = report["end_to_end"]["trainer"]
    (naive,) = report["end_to_end"]["naive"]
    # 1,500 steps cannot solve CartPole: both stop at their budgets, reported as such.
    assert not ours["solved"] and ours["steps"] >= 1500
    assert not naive["solved"] and naive["steps"] > 0
    assert f"| raw vector env, random actions ({envs} envs) |" in done.stdout
    assert "(not reached)" in done.stdout
    text = docs.read_text()
    assert text.startswith("# Notes\n\n<!-- benchmark:start -->\n")
    assert text.endswith("<!-- benchmark:end -->\nkept\n")
    assert "old table" not in text and "### End to end" in text


def test_bad_flags_fail_in_one_line(tmp_path):
    done = run_script(
        "benchmark.py", *TINY[:-1], "--memory_steps=100,x", cwd=tmp_path, folder="benchmarks"
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --memory_steps: must be a comma list of integers >= 1; got '100,x'"
    ]
    done = run_script("benchmark.py", "--env=Pendulum-v1", cwd=tmp_path, folder="benchmarks")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --env: must have Discrete actions")
