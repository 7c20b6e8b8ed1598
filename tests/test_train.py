"""Training end to end: learning reaches a return, seeded runs repeat, files are usable."""

import numpy as np
import pytest
from conftest import outputs_in_plain_keras

from reinforce_tf import TrainConfig, evaluate, load_policy, train


@pytest.fixture(scope="module")
def solved_cartpole(tmp_path_factory):
    path = tmp_path_factory.mktemp("cartpole") / "policy.keras"
    config = TrainConfig.for_env("CartPole-v1", seed=0, total_steps=400_000, save_path=str(path))
    return train(config, progress=None)


def test_default_run_solves_cartpole(solved_cartpole):
    # Target: CartPole-v1's reward_threshold, 475, as the mean of the last 100 episodes.
    assert solved_cartpole.solved
    assert solved_cartpole.mean_return >= 475
    assert solved_cartpole.steps < 400_000
    assert len(solved_cartpole.episode_returns) == solved_cartpole.episodes


def test_solved_policy_is_greedy_perfect(solved_cartpole):
    returns = evaluate(load_policy(solved_cartpole.save_path), "CartPole-v1", 20, greedy=True)
    assert returns.shape == (20,)
    assert returns.mean() >= 475


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
    assert result.steps >= 500
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
    assert done.stdout.strip().endswith("policy saved to run.keras")
    done = script("evaluate.py", "--policy=run.keras", "--episodes=5", "--greedy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("CartPole-v1, 5 episodes, greedy actions: return ")
    assert "±" in done.stdout and "min" in done.stdout and "max" in done.stdout
