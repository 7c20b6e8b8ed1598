"""benchmarks/table.py end to end at a tiny budget: it trains, writes the JSON (with the
evaluation and training curves and the closing evaluation), the Markdown and the figures;
run again it skips what is done; a run folder missing from the results is resumed, not
started over; runners sharing the JSON keep each other's results and skip each other's runs;
a trainer's wall time is saved while it runs; bad flags are one line with nothing written.
The same runner makes the MinAtar table, with runs of their own flags (the step-size sweep);
each report's statistics are checked against hand-computed numbers."""

import fcntl
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, benchmark_module, run_script

from reinforce_tf.config import TrainConfig
from reinforce_tf.training.saving import load_metadata


def _flags(tmp_path, *extra):
    return (
        "--envs=InvertedPendulum-v5",
        "--seeds=0",
        "--total_steps=3000",
        "--eval_every=1000",
        "--greedy_eval_every=2000",
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
        "table.py", "--table=mujoco", *_flags(tmp_path, *extra), cwd=tmp_path, folder="benchmarks"
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
    assert 0 < run["steps"] <= 3000 and run["final_episodes"] == 2 and run["processes"] == 1
    # Sampled evaluations after passing 1,000 and 2,000 steps, greedy after 2,000: the run's
    # evaluations.csv, as [step, mean] pairs, and each mode's best.
    sampled, greedy = run["evaluations"]["sampled"], run["evaluations"]["greedy"]
    assert [step // 1000 for step, _ in sampled] == [1, 2] and [greedy[0][0]] == [sampled[1][0]]
    assert run["best_sampled_eval"] == max(mean for _, mean in sampled)
    assert run["best_greedy_eval"] == greedy[0][1]
    note = load_metadata(tmp_path / "runs" / "InvertedPendulum-v5__seed0__3000" / "policy.keras")
    final = note["final_evaluation"]
    assert (run["final_sampled_mean"], run["final_greedy_std"]) == (
        final["sampled"]["mean"],
        final["greedy"]["std"],
    )
    markdown = (tmp_path / "mujoco.md").read_text()
    assert "| InvertedPendulum-v5 | " in markdown and "999.2 ± 2.4" in markdown
    # One seed: Tianshou's metric is that seed's best sampled evaluation, std 0.
    assert f"| InvertedPendulum-v5 | {run['best_sampled_eval']:,.1f} ± 0.0 | 999.2 ± 2.4 |" in (
        markdown
    )
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
    for key in ("steps", "episodes", "evaluations", "last_100_mean", "final_greedy_mean"):
        assert again_run[key] == run[key], key
    assert again_run["processes"] == 2


def test_runners_sharing_the_json_skip_claimed_runs_and_keep_each_others_results(tmp_path):
    # Another runner holds seed 1 (its claim, a flock on runner.lock) and, while this one
    # waits to train seed 0 (--wait_while), finishes a run of its own and writes it to the
    # JSON: this runner skips seed 1 and adds seed 0 beside the other's run.
    claimed = tmp_path / "runs" / "InvertedPendulum-v5__seed1__3000"
    claimed.mkdir(parents=True)
    other = open(claimed / "runner.lock", "a")  # noqa: SIM115 (held while the runner runs)
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    wait = tmp_path / "timing.lock"
    wait.touch()
    flags = [f for f in _flags(tmp_path) if not f.startswith("--wait_while")]
    runner = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "table.py"), *flags, "--seeds=1,0"]
        + [f"--wait_while={wait}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    lines = []
    while not lines or not lines[-1].startswith("waiting while"):
        line = runner.stdout.readline()
        assert line, f"the runner ended early: {lines} {runner.stderr.read()}"
        lines.append(line)
    assert lines[0] == "InvertedPendulum-v5__seed1__3000: another runner has it, skipped\n"
    results_path = tmp_path / "results.json"
    results = json.loads(results_path.read_text())
    results["runs"]["Hopper-v5__seed0__3000"] = {
        "env": "Hopper-v5", "seed": 0, "total_steps": 3000, "steps": 3000, "episodes": 40,
        "evaluations": {"sampled": [[1000, 35.0]], "greedy": []},
        "best_sampled_eval": 35.0, "best_sampled_eval_step": 1000, "best_greedy_eval": None,
        "best_greedy_eval_step": None, "last_100_mean": 20.0,
        "final_sampled_mean": 25.0, "final_sampled_std": 2.0,
        "final_greedy_mean": 30.0, "final_greedy_std": 1.0, "final_episodes": 2,
        "preferred_mode": None, "wall_seconds": 9.0, "processes": 1, "config": {},
    }  # fmt: skip
    results_path.write_text(json.dumps(results))
    wait.unlink()
    out, err = runner.communicate(timeout=300)
    assert runner.returncode == 0, err
    assert "InvertedPendulum-v5__seed0__3000: training" in out
    runs = json.loads(results_path.read_text())["runs"]
    assert sorted(runs) == ["Hopper-v5__seed0__3000", "InvertedPendulum-v5__seed0__3000"]
    other.close()


def test_tianshous_metric_is_the_best_of_the_mean_curve_with_the_std_there():
    # Two seeds' sampled curves, aligned by evaluation number; seed 1 has one more, dropped.
    # Means by evaluation: (10+30)/2 = 20, (50+10)/2 = 30, (20+20)/2 = 20 → best 30 at the
    # 2nd, where the std over seeds is |50 − 10| / 2 = 20. The mean of the per-seed bests
    # would be (50 + 30) / 2 = 40: never lower.
    report = benchmark_module("mujoco_report")
    runs = [
        {"evaluations": {"sampled": [[1_000, 10.0], [2_100, 50.0], [3_000, 20.0]]}},
        {"evaluations": {"sampled": [[1_200, 30.0], [2_300, 10.0], [3_100, 20.0], [4_000, 99]]}},
    ]
    curve = report.mean_curve(runs, "sampled")
    assert curve.returns.shape == (2, 3)
    assert curve.best() == (30.0, 20.0, 2_200)  # the step: the seeds' mean step there
    assert report.mean_curve([{"evaluations": {"greedy": []}}], "greedy") is None


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


def test_a_trainers_wall_time_is_saved_while_it_runs(tmp_path, monkeypatch):
    # A session's stop kills the runner and its trainer together: the time the trainer had
    # run must already be in wall.json, beside the earlier processes' times.
    table_runs = benchmark_module("table_runs")
    monkeypatch.setattr(table_runs, "WALL_SAVE_SECONDS", 0.05)
    (tmp_path / "wall.json").write_text("[5.0]\n")
    child = (
        f"import time; time.sleep(0.6); print(open({str(tmp_path / 'wall.json')!r}).read(), "
        "flush=True); time.sleep(0.2); raise SystemExit(3)"
    )
    returncode, seconds = table_runs.run_timed([sys.executable, "-c", child], tmp_path)
    assert returncode == 3
    mid_run = json.loads((tmp_path / "train.log").read_text())
    assert mid_run[0] == 5.0 and len(mid_run) == 2 and 0.3 <= mid_run[1] < seconds
    assert json.loads((tmp_path / "wall.json").read_text()) == [5.0, round(seconds, 1)]
    assert seconds >= 0.8


def test_a_runner_failing_while_it_waits_kills_its_trainer(tmp_path, monkeypatch):
    # As with subprocess.run: no trainer is left running on its own, holding the run.
    table_runs = benchmark_module("table_runs")
    monkeypatch.setattr(table_runs, "WALL_SAVE_SECONDS", 0.05)
    log = tmp_path / "train.log"

    def failing_write(path, text):
        if log.read_text().strip():  # once the child has said its pid
            raise OSError("disk full")

    monkeypatch.setattr(table_runs, "write_text_atomically", failing_write)
    child = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    with pytest.raises(OSError, match="disk full"):
        table_runs.run_timed([sys.executable, "-c", child], tmp_path)
    with pytest.raises(ProcessLookupError):
        os.kill(int(log.read_text()), 0)


def test_the_training_curve_is_the_last_100_mean_at_each_fiftieth_of_the_budget():
    table_runs = benchmark_module("table_runs")
    # 200 episodes ending at steps 30, 60, …, 6,000 with returns 1, 2, …, 200; budget 5,000:
    # points at 100, 200, …, 5,000. At 100 three episodes have ended: mean(1, 2, 3) = 2. At
    # 5,000, 166 (30 × 166 = 4,980): the last 100 are 67 … 166, mean 116.5.
    episodes = {"step": np.arange(1, 201) * 30, "return": np.arange(1, 201, dtype=np.float64)}
    curve = table_runs.training_curve(episodes, 5_000)
    assert len(curve) == 50 and curve[0] == [100, 2.0] and curve[-1] == [5_000, 116.5]
    # No point before the first episode ends: budget 1,000 (points every 20), one at 250.
    late = {"step": np.array([250]), "return": np.array([7.0])}
    assert table_runs.training_curve(late, 1_000)[:2] == [[260, 7.0], [280, 7.0]]
    assert len(table_runs.training_curve(late, 1_000)) == 38


def test_a_runs_own_flags_name_it():
    table_runs = benchmark_module("table_runs")
    assert table_runs.run_name("Hopper-v5", 0, 3_000_000) == "Hopper-v5__seed0__3000000"
    assert (
        table_runs.run_name("MinAtar/Breakout-v1", 2, 5_000_000, ("--learning_rate=0.002",))
        == "MinAtar/Breakout-v1__learning_rate=0.002__seed2__5000000"
    )


def _minatar_entry(env, seed, last_100, learning_rate=None, train_flags=None):
    learning_rate = learning_rate or TrainConfig.for_env(env).learning_rate
    entry = {
        "env": env, "seed": seed, "total_steps": 5_000_000, "steps": 5_000_000,
        "episodes": 1000, "last_100_mean": last_100, "final_sampled_mean": last_100 + 1,
        "final_sampled_std": 1.0, "final_greedy_mean": last_100 - 1, "final_greedy_std": 2.0,
        "wall_seconds": 2_500.0, "processes": 1, "config": {"learning_rate": learning_rate},
        "evaluations": {"sampled": [[2_500_000, last_100], [5_000_000, last_100]], "greedy": []},
        "training_curve": [[2_500_000, last_100 / 2], [5_000_000, last_100]],
    }  # fmt: skip
    if train_flags:
        entry["train_flags"] = train_flags
    return entry


def test_the_minatar_report_against_hand_computed_numbers(tmp_path):
    report = benchmark_module("minatar_report")
    breakout, freeway = "MinAtar/Breakout-v1", "MinAtar/Freeway-v1"
    alpha = TrainConfig.for_env(breakout).learning_rate  # the defaults' step size
    assert TrainConfig.for_env(freeway).learning_rate == alpha
    fast = [f"--learning_rate={2 * alpha}"]
    results = {
        "a": _minatar_entry(breakout, 0, 6.0),
        "b": _minatar_entry(breakout, 1, 10.0),
        "c": _minatar_entry(breakout, 0, 12.0, 2 * alpha, fast),
        "d": _minatar_entry(breakout, 1, 16.0, 2 * alpha, fast),
        "e": _minatar_entry(breakout, 0, 99.0, alpha, ["--batch_episodes=8"]),  # not the sweep
        "f": _minatar_entry(freeway, 0, 9.0),
        "g": _minatar_entry(freeway, 1, 11.0, alpha, [f"--learning_rate={alpha}"]),  # defaults
        "h": _minatar_entry(freeway, 2, 99.0, 0.5 * alpha, [f"--learning_rate={0.5 * alpha}"]),
    }
    # The table: the runs at the defaults (no flags of their own, or a step size equal to the
    # defaults'). Breakout (6 + 10) / 2 = 8 ± 2, below DQN's 10, above DQN without replay's 4;
    # Freeway (9 + 11) / 2 = 10 ± 1, above 8.5, below 50.
    table = report.summary_table(results)
    assert "| Breakout-v1 | 8.0 ± 2.0 | 10 | 4 | 17.5 | 9.0 ± 2.0 | 7.0 ± 2.0 | 2 |" in table
    assert "| Freeway-v1 | 10.0 ± 1.0 | 50 | 8.5 | 47 | 11.0 ± 1.0 | 9.0 ± 1.0 | 2 |" in table
    assert "| Asterix-v1 | — | 17 | 5.5 | 19 | — | — | 0 |" in table
    assert report.goals(results) == (
        "0 of 2 at or above DQN; 2 of 2 at or above DQN without replay"
    )
    # The sweep: Breakout's step sizes α (the defaults' runs) and 2α (12 and 16: 14 ± 2); the
    # run with another flag is in neither. The highest mean is at 2α, not the defaults' α.
    sweep = report.sweep([r for r in results.values() if r["env"] == breakout])
    assert {a: [r["seed"] for r in runs] for a, runs in sweep.items()} == {
        alpha: [0, 1],
        2 * alpha: [0, 1],
    }
    assert report.pick(breakout, sweep) == (
        f"Breakout-v1: the highest mean over 2 seeds is at α = {2 * alpha:g} (14.00), "
        f"not the defaults' α = {alpha:g} (8.00)."
    )
    # Freeway: α/2's 99 is the highest mean, but from 1 seed to the defaults' 2.
    freeway_sweep = report.sweep([r for r in results.values() if r["env"] == freeway])
    assert report.pick(freeway, freeway_sweep) == (
        f"Freeway-v1: the highest mean over 2 seeds is at α = {alpha:g} (10.00), the defaults' α."
    )
    assert report.sweep([results["f"]]) == {}
    figures = report.plots(results)
    assert sorted(figures) == ["Breakout-v1", "Freeway-v1", "sweep Breakout-v1", "sweep Freeway-v1"]
    for name, draw in figures.items():
        draw(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    text = report.markdown(results, {}, [], {name: f"{name}.png" for name in figures})
    assert f"| Breakout-v1 | {2 * alpha:g} | 14.0 ± 2.0 | 15.0 ± 2.0 | 2 |" in text
    assert f"- Breakout-v1: the highest mean over 2 seeds is at α = {2 * alpha:g}" in text
    assert "| Breakout-v1 | 8.0 ± 2.0 | 10 | 4 | 17.5 | 9.0 ± 2.0 | 7.0 ± 2.0 | 2 | 2,000 |" in text
    assert "![sweep Breakout-v1](sweep Breakout-v1.png)" in text
    assert "<!-- notes:start -->\nNone written yet.\n<!-- notes:end -->" in text


def test_the_minatar_table_runs_a_game_with_flags_of_its_own(tmp_path):
    # The report's hand-written findings survive its rewriting; the rest is replaced.
    notes = "Breakout stalls near 5 at every step size: the sweep.\n"
    markdown = tmp_path / "minatar.md"
    markdown.write_text(f"stale table\n<!-- notes:start -->\n{notes}<!-- notes:end -->\n")
    done = run_script(
        "table.py",
        "--table=minatar",
        "--envs=MinAtar/Breakout-v1",
        "--seeds=0",
        "--total_steps=2000",
        "--eval_every=1000",
        "--greedy_eval_every=1000",
        "--eval_episodes=1",
        "--final_episodes=1",
        "--train_flag=--batch_episodes=2",
        f"--runs_dir={tmp_path / 'runs'}",
        f"--results={tmp_path / 'minatar.json'}",
        f"--markdown={tmp_path / 'minatar.md'}",
        f"--curves_dir={tmp_path / 'figures'}",
        "--wait_while=",
        "--readme=",
        cwd=tmp_path,
        folder="benchmarks",
    )
    assert done.returncode == 0, done.stderr
    name = "MinAtar/Breakout-v1__batch_episodes=2__seed0__2000"
    assert f"{name}: training" in done.stdout
    run = json.loads((tmp_path / "minatar.json").read_text())["runs"][name]
    assert run["train_flags"] == ["--batch_episodes=2"] and run["config"]["batch_episodes"] == 2
    assert run["training_curve"][-1] == [2000, run["last_100_mean"]]
    assert (tmp_path / "runs" / name / "policy.keras").exists()
    # A run with flags of its own is not in the table (whose rows are the defaults' runs).
    assert "| Breakout-v1 | — | 10 | 4 | 17.5 | — | — | 0 |" in done.stdout
    text = markdown.read_text()
    assert name in text and "stale table" not in text
    assert f"## Findings\n\n<!-- notes:start -->\n{notes}<!-- notes:end -->\n" in text


@pytest.mark.parametrize(
    "flag, message",
    [
        ("rm -rf", "must be a --name=value flag"),
        ("--logdir=elsewhere", "--logdir is the runner's to set"),  # the run's folder
        ("--seed=3", "--seed is the runner's to set"),  # --seeds says the seeds
    ],
)
def test_a_train_flag_the_runner_cannot_take_is_refused(tmp_path, flag, message):
    done = run_script(
        "table.py", "--table=minatar", f"--train_flag={flag}", f"--runs_dir={tmp_path}",
        "--results=x.json", "--markdown=x.md", "--readme=", cwd=tmp_path, folder="benchmarks",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: --train_flag: {message}"), done.stderr
    assert done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
