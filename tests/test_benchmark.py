"""benchmarks/: the CLI end to end at tiny settings (it runs, reports and writes its files),
and the naive reference, whose update must be the trainer's."""

import dataclasses
import importlib.machinery
import importlib.util
import json
import sys

import gymnasium as gym
import numpy as np
import pytest
from conftest import REPO, benchmark_module, run_script

from reinforce_tf import TrainConfig
from reinforce_tf.training.learner import make_agent, update_from_rollout
from reinforce_tf.training.rollout import Rollout

naive_reinforce = benchmark_module("naive_reinforce")

TINY = (
    "--seeds=1",
    "--seconds=0.05",
    "--total_steps=1500",
    "--naive_seconds=1",
    "--num_envs=2",
    "--noasync_envs",
    "--startup_seeds=1",
    "--memory_steps=500,1000",
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
    assert actors == {(envs, "tf_function"), (envs, "make_actor"), (2, "trainer")}
    (ours,) = report["end_to_end"]["trainer"]
    (naive,) = report["end_to_end"]["naive"]
    # 1,500 steps cannot solve CartPole: both stop at their budgets, reported as such.
    # The trainer never passes its budget: an update that would is dropped whole.
    assert not ours["solved"] and 0 < ours["steps"] <= 1500
    assert not naive["solved"] and naive["steps"] > 0
    assert f"| raw vector env, random actions ({envs} envs) |" in done.stdout
    assert "(not reached)" in done.stdout
    text = docs.read_text()
    assert text.startswith("# Notes\n\n<!-- benchmark:start -->\n")
    assert text.endswith("<!-- benchmark:end -->\nkept\n")
    assert "old table" not in text and "### End to end" in text
    # The quick start's command, one seed, timed from process start to exit.
    (startup,) = report["whole_process"]
    assert startup["seed"] == 0 and startup["seconds"] > 0
    assert "### Whole process: `python scripts/train.py --env=CartPole-v1 --seed=N`" in text
    # Two memory runs in one work folder, each in its own run folder.
    assert [row["steps"] for row in report["memory"]] == [500, 1000]
    assert all(row["peak_rss_mib"] > 0 for row in report["memory"])


def test_bad_flags_fail_in_one_line(tmp_path):
    done = run_script(
        "benchmark.py", *TINY[:-1], "--memory_steps=100,x", cwd=tmp_path, folder="benchmarks"
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --memory_steps: must be a comma list of integers >= 1; got '100,x'"
    ]


def test_box_env_benchmark_runs_the_trainer_without_the_naive_reference(tmp_path):
    # The naive reference samples from probabilities, so Box actions measure the trainer only.
    options = [*TINY[:2], "--total_steps=4000", "--startup_seeds=0", "--memory_steps="]
    done = run_script(
        "benchmark.py",
        "--env=Pendulum-v1",
        *options,
        "--num_envs=",
        "--noasync_envs",
        f"--output={tmp_path / 'bench.json'}",
        cwd=tmp_path,
        folder="benchmarks",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["throughput"]["naive"] is None and report["end_to_end"]["naive"] == []
    (ours,) = report["end_to_end"]["trainer"]
    # Pendulum's episodes all last 200 steps, so the budget of 4,000 holds one update of
    # its 13 episodes (2,600 steps); a second would pass it and is dropped whole.
    assert not ours["solved"] and ours["steps"] == 13 * 200
    assert "naive" not in done.stdout and "| trainer steps/s |" in done.stdout


def _side_by_side(episodes) -> Rollout:
    """The trainer's layout: episode b in column b of [T, B], invalid after it ends (as
    RolloutCollector collects one episode per env), T = the longest episode."""
    length = max(len(rewards) for _, _, rewards in episodes)
    observations = np.zeros((length, len(episodes), episodes[0][0].shape[1]), np.float32)
    actions = np.zeros((length, len(episodes)), np.int32)
    rewards = np.zeros((length, len(episodes)), np.float32)
    valid = np.zeros((length, len(episodes)), bool)
    dones = np.zeros((length, len(episodes)), bool)
    for b, (episode_observations, episode_actions, episode_rewards) in enumerate(episodes):
        steps = len(episode_rewards)
        observations[:steps, b], actions[:steps, b] = episode_observations, episode_actions
        rewards[:steps, b], valid[:steps, b], dones[steps - 1, b] = episode_rewards, True, True
    time_steps = np.broadcast_to(np.arange(length, dtype=np.int32)[:, None], valid.shape)
    return Rollout(
        observations,
        actions,
        rewards,
        dones,
        valid,
        time_steps * valid,
        np.array([episode[2].sum(dtype=np.float64) for episode in episodes]),
        np.array([len(episode[2]) for episode in episodes], np.int64),
    )


@pytest.mark.parametrize(
    "options",
    [
        # The mean baseline averages G over the batch's episodes at each time index t, so it
        # is right only if the naive [T, 1] rollout restarts t at each episode.
        {"baseline": "mean"},
        {"baseline": "value", "normalize_observations": True, "max_grad_norm": 0.5},
    ],
)
def test_naive_reference_learns_by_the_trainers_update(options):
    # total_steps=1: the naive run stops after its first update, of 4 episodes. SGD, since
    # Adam's first step is about lr·sign(gradient) and would hide a wrongly scaled gradient.
    config = TrainConfig.for_env(
        "CartPole-v1", seed=3, batch_episodes=4, total_steps=1, optimizer="sgd", **options
    )
    env = gym.make(config.env)
    naive_agent = make_agent(config, env.observation_space, env.action_space)
    trainer_agent = make_agent(config, env.observation_space, env.action_space)
    names = ["policy", "value"] if config.baseline == "value" else ["policy"]
    before = {name: _weights(getattr(naive_agent, name)) for name in names}
    # The naive run's 4 episodes, replayed by the same initial policy, rng and env seeds.
    rng = np.random.default_rng(config.seed)
    seeds = [config.seed, None, None, None]
    episodes = [naive_reinforce.play_episode(env, trainer_agent.policy, rng, s) for s in seeds]
    env.close()
    lengths = [len(rewards) for _, _, rewards in episodes]
    assert len(set(lengths)) > 1  # unequal episodes: the layouts differ in where t restarts

    result = naive_reinforce.train(config, agent=naive_agent)
    update_from_rollout(trainer_agent, _side_by_side(episodes), config)

    assert result.steps == sum(lengths) and not result.solved
    for name in names:
        pairs = zip(
            before[name],
            _weights(getattr(naive_agent, name)),
            _weights(getattr(trainer_agent, name)),
        )
        for start, naive_weight, trainer_weight in pairs:
            # The same step, up to float32 summation order.
            step = trainer_weight - start
            np.testing.assert_allclose(
                naive_weight - start, step, rtol=1e-3, atol=1e-3 * np.abs(step).max()
            )
        # It learned: the update moved the weights.
        assert any(
            np.abs(after - start).max() > 1e-6
            for start, after in zip(before[name], _weights(getattr(naive_agent, name)))
        )


def _weights(model) -> list[np.ndarray]:
    return [weight.numpy() for weight in model.weights]


def test_naive_reference_stops_at_the_target(monkeypatch):
    # A window of 4 episodes instead of 100, to keep the test short. Every step rewards 1, so
    # every episode returns >= 1: with target 1 the first update (4 episodes) reaches it.
    monkeypatch.setattr(naive_reinforce, "SOLVED_WINDOW", 4)
    config = TrainConfig.for_env("CartPole-v1", batch_episodes=4, total_steps=20_000)
    solved = naive_reinforce.train(dataclasses.replace(config, target_return=1.0))
    assert solved.solved and 4 <= solved.steps < 4 * 500
    # A target no episode reaches (500 steps at most): the step budget stops it instead.
    budget = naive_reinforce.train(dataclasses.replace(config, target_return=501.0, total_steps=1))
    assert not budget.solved and 4 <= budget.steps < 4 * 500


def test_export_latency_measures_each_export(tmp_path):
    # benchmarks/export_latency.py's rows, at tiny settings: one format, 3 timed calls.
    serving = benchmark_module("serving")
    rows = serving.measure("CartPole-v1", tmp_path, 3, formats=("onnx",))
    assert [(row["format"], row["outputs"]) for row in rows] == [
        ("keras", "distribution, eager `policy(obs)`"),
        ("keras", "action, compiled `make_actor`"),
        ("onnx", "distribution"),
        ("onnx", "action"),
    ]
    for row in rows:
        assert 0 < row["median_us"] <= row["p99_us"]
        assert row["bytes"] > 4 * 64 * 4  # at least the first layer's float32 kernel
    table = serving.markdown(rows).splitlines()
    assert table[0].startswith("| env | format | outputs | size |") and len(table) == 6
    assert table[4].startswith("| CartPole-v1 | ONNX | distribution | ")


def test_no_script_shadows_an_installed_package():
    # A script's folder comes first on sys.path, so benchmarks/mujoco.py was what
    # Gymnasium's `import mujoco` got, and every MuJoCo env failed under benchmarks/.
    # Searched on sys.path without the two folders (other tests import benchmark modules,
    # putting benchmarks/ on the path and them in sys.modules).
    folders = {str(REPO / "benchmarks"), str(REPO / "scripts")}
    elsewhere = [path for path in sys.path if path not in folders]
    for folder in ("benchmarks", "scripts"):
        for script in (REPO / folder).glob("*.py"):
            name = script.stem
            if name in sys.stdlib_module_names or name.startswith("_"):
                continue
            found = importlib.machinery.PathFinder.find_spec(name, elsewhere)
            assert found is None, f"{folder}/{script.name} shadows {found.origin}"
