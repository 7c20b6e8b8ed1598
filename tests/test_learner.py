"""The trainer's glue: the learning-rate schedule, and the recipe options through a run."""

import dataclasses
import shutil

import gymnasium as gym
import numpy as np
import tensorflow as tf

from reinforce_tf import TrainConfig, load_policy, train
from reinforce_tf.training.checkpoints import CHECKPOINT_FOLDER
from reinforce_tf.training.episode_log import read_episodes
from reinforce_tf.training.learner import (
    learning_rate_factor,
    make_agent,
    schedule_learning_rates,
)
from reinforce_tf.training.saving import load_metadata

BOX4 = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
BOUNDED = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)


def test_linear_schedule_decays_to_zero_over_the_budget():
    # α (1 − s/S), S = 1000: s = 0 → 1, 250 → 0.75, 999 → 0.001; constant → 1 throughout.
    linear = TrainConfig(total_steps=1000, lr_schedule="linear")
    factors = [learning_rate_factor(linear, s) for s in (0, 250, 999)]
    np.testing.assert_allclose(factors, [1.0, 0.75, 0.001], rtol=1e-12)
    assert learning_rate_factor(TrainConfig(total_steps=1000), 999) == 1.0


def test_scheduled_rates_reach_the_compiled_update():
    # α = 0.01, α_w = 0.1, S = 1000, s = 250: the optimizers step with 0.0075 and 0.075.
    options = {"total_steps": 1000, "lr_schedule": "linear", "optimizer": "sgd"}
    config = TrainConfig(learning_rate=0.01, value_learning_rate=0.1, baseline="value", **options)
    agent = make_agent(config, BOX4, BOUNDED)
    schedule_learning_rates(agent, config, 250)
    np.testing.assert_allclose(float(agent.optimizer.learning_rate), 0.0075, rtol=1e-6)
    np.testing.assert_allclose(float(agent.value_optimizer.learning_rate), 0.075, rtol=1e-6)
    # The compiled update reads the rate at each call. Linear Gaussian μ = s·W + b from 0,
    # σ = 1, s = [1, 2, 0, 0], u = 0.5, G = 2: ∂L/∂W = −G s (u − μ) = −[1, 2, 0, 0], so SGD
    # moves W by α [1, 2, 0, 0]: [0.0075, 0.015, 0, 0] at s = 250, then (same trace, weights
    # reset, log σ too) [0.005, 0.01, 0, 0] at s = 500.
    config = TrainConfig(learning_rate=0.01, hidden_sizes=(), **options)
    agent = make_agent(config, BOX4, BOUNDED)
    mean, log_std = agent.policy.get_layer("mean"), agent.policy.get_layer("log_std")
    s, u, g = tf.constant([[1.0, 2.0, 0.0, 0.0]]), tf.constant([[0.5]]), tf.constant([2.0])
    for steps, alpha in ((250, 0.0075), (500, 0.005)):
        mean.set_weights([np.zeros((4, 1), np.float32), np.zeros(1, np.float32)])
        log_std.set_weights([np.zeros((1, 1), np.float32), np.zeros(1, np.float32)])
        schedule_learning_rates(agent, config, steps)
        agent.update(s, u, g, tf.constant(1.0))
        np.testing.assert_allclose(
            mean.get_weights()[0][:, 0], [alpha, 2 * alpha, 0.0, 0.0], rtol=1e-5
        )
    assert agent.update.experimental_get_tracing_count() == 1


def test_constant_schedule_leaves_the_rate_alone():
    config = TrainConfig(total_steps=1000, learning_rate=0.01, optimizer="sgd")
    agent = make_agent(config, BOX4, BOUNDED)
    agent.optimizer.learning_rate = 0.123
    schedule_learning_rates(agent, config, 500)
    np.testing.assert_allclose(float(agent.optimizer.learning_rate), 0.123, rtol=1e-6)


def _recipe(tmp_path, name: str, **overrides) -> TrainConfig:
    """Pendulum-v1 (bounds ±2) with every recipe option on: 2 episodes (400 steps) per
    update, a checkpoint every 1,000 steps, 4,000 steps."""
    return TrainConfig.for_env(
        "Pendulum-v1",
        seed=4,
        total_steps=4000,
        batch_episodes=2,
        checkpoint_every=1000,
        lr_schedule="linear",
        action_squash="tanh",
        policy_init_scale=0.5,
        initial_log_std=-0.5,
        eval_every=2000,
        eval_episodes=2,
        logdir=str(tmp_path / name),
        save_path=str(tmp_path / f"{name}_policy" / "policy.keras"),
        **overrides,
    )


def test_recipe_run_resumes_bit_for_bit_and_records_the_squash(tmp_path):
    for name in ("reference", "crashed"):
        (tmp_path / f"{name}_policy").mkdir()
    reference = train(_recipe(tmp_path, "reference"), progress=None)
    assert reference.steps == 4000
    # A crash after the checkpoint at 2,000 steps: the run folder as it was then is the
    # reference's with the later checkpoints gone (and the episodes past it, which resume
    # drops). Resuming must give the same episodes and the same final policy: the
    # schedule's rates, optimizer state and sampling all continue.
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "reference", crashed)
    for path in (crashed / CHECKPOINT_FOLDER).glob("ckpt-*"):
        if int(path.name.split(".")[0].split("-")[1]) > 2000:
            path.unlink()
    left = sorted((crashed / CHECKPOINT_FOLDER).glob("ckpt-*.index"))
    assert [path.name for path in left] == ["ckpt-2000.index"]
    config = dataclasses.replace(_recipe(tmp_path, "crashed"), resume=True)
    resumed = train(config, progress=None)
    assert (resumed.steps, resumed.episodes) == (reference.steps, reference.episodes)
    got = read_episodes(crashed / "episodes.csv")
    want = read_episodes(tmp_path / "reference" / "episodes.csv")
    for column in ("step", "return", "length"):
        np.testing.assert_array_equal(got[column], want[column])
    final = load_policy(resumed.save_path).get_weights()
    for got_weights, want_weights in zip(final, load_policy(reference.save_path).get_weights()):
        np.testing.assert_array_equal(got_weights, want_weights)
    # The file's note tells scripts/evaluate.py to squash: greedy acts by 2 tanh(mean).
    assert load_metadata(reference.save_path)["action_squash"] == "tanh"
    best = tmp_path / "reference_policy" / "best.keras"
    assert load_metadata(best)["action_squash"] == "tanh"
