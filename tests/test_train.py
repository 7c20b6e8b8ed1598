"""Training end to end: learning reaches a return, seeded runs repeat, files are usable."""

import dataclasses
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
from conftest import REPO, outputs_in_plain_keras

from reinforce_tf import (
    InputError,
    TrainConfig,
    evaluate,
    load_policy,
    make_actor,
    make_agent,
    train,
    update_from_rollout,
)
from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.rollout import RolloutCollector
from reinforce_tf.training.saving import load_metadata


@pytest.fixture(scope="module")
def solved_cartpole(tmp_path_factory):
    path = tmp_path_factory.mktemp("cartpole") / "policy.keras"
    config = TrainConfig.for_env("CartPole-v1", seed=0, total_steps=400_000, save_path=str(path))
    return train(config, progress=None)


@pytest.mark.slow
def test_default_run_solves_cartpole(solved_cartpole):
    # Target: CartPole-v1's reward_threshold, 475, as the mean of the last 100 episodes.
    assert solved_cartpole.solved
    assert solved_cartpole.mean_return >= 475
    assert solved_cartpole.steps < 400_000
    assert len(solved_cartpole.episode_returns) == solved_cartpole.episodes


@pytest.mark.slow
def test_solved_policy_is_greedy_perfect(solved_cartpole):
    returns = evaluate(load_policy(solved_cartpole.save_path), "CartPole-v1", 20, greedy=True)
    assert returns.shape == (20,)
    assert returns.mean() >= 475


@pytest.mark.slow
def test_saved_model_reproduces_trainer_probabilities_without_the_package(
    solved_cartpole, tmp_path
):
    policy = load_policy(solved_cartpole.save_path)
    observations = np.random.default_rng(0).uniform(-0.2, 0.2, (8, 4)).astype(np.float32)
    plain = outputs_in_plain_keras(solved_cartpole.save_path, observations, tmp_path)
    np.testing.assert_allclose(plain, policy(observations).numpy(), rtol=1e-6)
    np.testing.assert_allclose(plain.sum(axis=1), 1.0, rtol=1e-6)


def short_run(tmp_path, **overrides):
    config = TrainConfig(total_steps=3_000, save_path=str(tmp_path / "p.keras"), **overrides)
    result = train(config, progress=None)
    return result, [w.copy() for w in load_policy(result.save_path).get_weights()]


def test_same_seed_same_run(tmp_path):
    first, first_weights = short_run(tmp_path, seed=7)
    again, again_weights = short_run(tmp_path, seed=7)
    np.testing.assert_array_equal(first.episode_returns, again.episode_returns)
    for a, b in zip(first_weights, again_weights):
        np.testing.assert_array_equal(a, b)
    other, _ = short_run(tmp_path, seed=8)
    assert not np.array_equal(first.episode_returns, other.episode_returns)


@pytest.mark.slow
def test_episode_updates_learn(tmp_path):
    # One minimize per episode, single env: mean return of the last 100 episodes reaches 100
    # (random play averages about 22).
    config = TrainConfig(
        update="episode",
        target_return=100.0,
        total_steps=60_000,
        save_path=str(tmp_path / "e.keras"),
    )
    assert train(config, progress=None).solved


def test_step_updates_run_and_save(tmp_path):
    config = TrainConfig(
        update="step", gamma_power=True, total_steps=500, save_path=str(tmp_path / "s.keras")
    )
    result = train(config, progress=None)
    # The episode that would pass the budget is dropped whole: it ends at most at 500.
    assert 0 < result.steps <= 500
    assert load_policy(result.save_path).output_shape == (None, 2)


def test_continuous_actions_train_and_save(tmp_path):
    result = train(
        TrainConfig(
            env="Pendulum-v1", total_steps=6_400, save_path=str(tmp_path / "pendulum.keras")
        ),
        progress=None,
    )
    # Pendulum episodes are 200 steps, 16 per batch: two updates.
    assert (result.steps, result.episodes) == (6_400, 32)
    outputs = load_policy(result.save_path)(np.zeros((1, 3), np.float32))
    assert set(outputs) == {"mean", "std"}
    assert np.all(outputs["std"].numpy() > 0)


def test_scripts_train_then_evaluate(script, tmp_path):
    (tmp_path / "run.flags").write_text("--total_steps=2000\n--save_path=run.keras\n")
    done = script("train.py", "--flagfile=run.flags", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # TensorFlow's start-up noise is kept off the terminal
    assert "episodes" in done.stdout and "steps/s" in done.stdout
    # The run ends by playing the saved policy both ways, as the note records.
    lines = done.stdout.strip().splitlines()
    saved = lines.index("policy saved to run.keras")
    assert lines[saved + 1].startswith("the saved policy, 10 episodes, sampled actions: return ")
    assert lines[saved + 2].startswith("the saved policy, 10 episodes, greedy actions: return ")
    final = load_metadata(tmp_path / "run.keras")["final_evaluation"]
    assert final["episodes"] == 10 and final["preferred_mode"] in (None, "sampled", "greedy")
    assert f"sampled actions: return {final['sampled']['mean']:.2f} ± " in lines[saved + 1]
    assert f"greedy actions: return {final['greedy']['mean']:.2f} ± " in lines[saved + 2]
    done = script("evaluate.py", "--policy=run.keras", "--episodes=5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("CartPole-v1, 5 episodes, sampled actions: return ")
    assert lines[1].startswith("CartPole-v1, 5 episodes, greedy actions: return ")
    assert "±" in lines[1] and "min" in lines[1] and "max" in lines[1]
    done = script(
        "evaluate.py", "--policy=run.keras", "--episodes=5", "--mode=greedy", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith("CartPole-v1, 5 episodes, greedy actions: return ")


@pytest.fixture(scope="module")
def inverted_pendulum(tmp_path_factory):
    path = tmp_path_factory.mktemp("inverted_pendulum") / "policy.keras"
    # Its per-env defaults: value baseline and observation normalisation. Random play
    # balances for about 6 steps; a mean of 300 over the last 100 episodes is learning.
    config = TrainConfig.for_env(
        "InvertedPendulum-v5", target_return=300.0, total_steps=300_000, save_path=str(path)
    )
    return train(config, progress=None)


@pytest.mark.slow
def test_inverted_pendulum_learns(inverted_pendulum):
    assert inverted_pendulum.solved
    assert inverted_pendulum.mean_return >= 300


@pytest.mark.slow
def test_saved_policy_carries_its_observation_statistics(inverted_pendulum, tmp_path):
    policy = load_policy(inverted_pendulum.save_path)
    layer = policy.get_layer("observation_normalization")
    # Every counted step's observation was merged in, once.
    assert int(layer.count.numpy()) == inverted_pendulum.steps
    assert np.all(layer.adapt_variance.numpy() > 0)
    assert not np.allclose(layer.adapt_mean.numpy(), 0.0)
    observations = np.random.default_rng(0).normal(0.0, 0.1, (6, 4)).astype(np.float32)
    plain = outputs_in_plain_keras(inverted_pendulum.save_path, observations, tmp_path, "mean")
    np.testing.assert_allclose(plain, policy(observations)["mean"].numpy(), rtol=1e-6)


@pytest.mark.parametrize("update", ["batch", "step"])
def test_update_reports_metrics_and_merges_statistics(update):
    config = TrainConfig(
        update=update,
        batch_episodes=4,
        baseline="value",
        entropy_coef=0.01,
        max_grad_norm=0.5,
        gamma_power=update == "step",
        normalize_observations=True,
    )
    config = dataclasses.replace(config, hidden_sizes=(8,), optimizer="sgd", learning_rate=0.01)
    env = make_vector_env(config.env, config.resolved_num_envs)
    agent = make_agent(config, env.single_observation_space, env.single_action_space)
    policy, value = agent.policy, agent.value
    rollout = RolloutCollector(env, make_actor(policy), seed=0).collect(config.episodes_per_update)
    env.close()
    before = [w.copy() for w in value.get_weights()]
    metrics = update_from_rollout(agent, rollout, config)
    assert set(metrics) == {"policy_loss", "value_loss", "entropy", "grad_norm"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values())
    # CartPole's first policy is near uniform over 2 actions: entropy ≈ ln 2.
    assert abs(metrics["entropy"] - np.log(2)) < 0.01
    assert metrics["grad_norm"] > 0
    assert not np.allclose(before[0], value.get_weights()[0])  # the value net stepped
    statistics = policy.get_layer("observation_normalization")
    assert int(statistics.count.numpy()) == rollout.num_steps
    valid_observations = rollout.observations[rollout.valid]
    np.testing.assert_allclose(
        statistics.adapt_mean.numpy(), valid_observations.mean(axis=0), rtol=1e-4, atol=1e-6
    )


def test_the_budget_holds_inside_an_update(tmp_path):
    # 1,000 CartPole episodes (at least 8 steps each) per update cannot fit 500 steps: the
    # collection stops just past the budget, learns nothing, and the policy is still saved.
    config = TrainConfig(batch_episodes=1000, total_steps=500, save_path=str(tmp_path / "b.keras"))
    result = train(config, progress=None)
    assert (result.steps, result.episodes, result.solved) == (0, 0, False)
    assert load_policy(result.save_path).output_shape == (None, 2)


def test_a_collection_that_cannot_fit_in_memory_is_refused_before_training(tmp_path):
    # 10⁹ steps of budget leave CartPole's time limit (L = 500) as the bound: 10⁶ episodes
    # handed out to 64 envs take at most ⌊(10⁶ − 1) · 501/64⌋ + 500 = 7,828,617 rows, tens
    # of GiB; refused before anything is allocated.
    config = TrainConfig(
        batch_episodes=1_000_000, total_steps=10**9, save_path=str(tmp_path / "m.keras")
    )
    with pytest.raises(InputError, match=r"7,828,617 vector steps and about .* GiB") as error:
        train(config, progress=None)
    assert error.value.field == "batch_episodes"
    assert "lower --batch_episodes" in str(error.value)
    assert not (tmp_path / "m.keras").exists()


def test_sigterm_stops_a_long_collection_at_once(tmp_path):
    # One update of 20,000 Acrobot episodes (500 steps each at first) is 10M env steps,
    # minutes of work; SIGTERM during it ends the run at once (communicate's timeout fails
    # the test otherwise), with exit 130 and the untrained policy saved.
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "train.py"),
            "--env=Acrobot-v1",
            "--batch_episodes=20000",
            "--total_steps=100000000",
            "--save_path=p.keras",
            "--logdir=run",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().startswith("training on")
        time.sleep(3)  # well inside the first collection
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()  # only if it is still running (the test failed)
    assert process.returncode == 130, err
    assert "interrupted at step 0" in out
    assert (tmp_path / "p.keras").is_file()


class LitSide(gym.Env):
    """8×8×1 uint8 frames with one half lit (255): action 0 for the left half, 1 for the right
    earns reward 1. Episodes of 8 steps, so the best return is 8 and a random policy's 4."""

    observation_space = gym.spaces.Box(0, 255, (8, 8, 1), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def _frame(self) -> np.ndarray:
        self.side = int(self.np_random.integers(2))
        frame = np.zeros((8, 8, 1), np.uint8)
        frame[:, 4 * self.side : 4 * self.side + 4] = 255
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        reward = float(action == self.side)
        self.t += 1
        return self._frame(), reward, False, self.t == 8, {}


gym.register("tests/LitSide-v0", entry_point=LitSide)


def test_image_policy_learns_and_its_file_loads_without_the_package(tmp_path):
    path = tmp_path / "lit.keras"
    config = TrainConfig(
        env="tests/LitSide-v0", target_return=7.5, total_steps=20_000, save_path=str(path)
    )
    result = train(config, progress=None)
    assert result.solved and result.mean_return >= 7.5  # about 1,200 steps with seed 0
    frames = np.zeros((2, 8, 8, 1), np.uint8)
    frames[0, :, :4], frames[1, :, 4:] = 255, 255  # left lit, right lit
    probabilities = outputs_in_plain_keras(path, frames, tmp_path)
    assert probabilities[0, 0] > 0.9 and probabilities[1, 1] > 0.9
