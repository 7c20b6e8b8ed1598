"""The trainer's glue: the learning-rate schedule, and the recipe options through a run."""

import dataclasses
import shutil

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from reinforce_tf import TrainConfig, load_policy, train
from reinforce_tf.training.checkpoints import CHECKPOINT_FOLDER
from reinforce_tf.training.episode_log import read_episodes
from reinforce_tf.training.learner import (
    adapt_learning_rate,
    learning_rate_factor,
    make_agent,
    schedule_learning_rates,
    update_from_rollout,
)
from reinforce_tf.training.rollout import Rollout
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


def test_kl_schedule_rule():
    # κ = 0.002: above 2κ α shrinks by 1.5, below κ/2 it grows by 1.5, else it stays.
    config = TrainConfig(learning_rate=0.03, lr_schedule="kl", optimizer="sgd")
    agent = make_agent(config, BOX4, BOUNDED)
    for kl, want in ((0.0041, 0.02), (0.004, 0.02), (0.001, 0.02), (0.0009, 0.03)):
        adapt_learning_rate(agent, config, kl)
        np.testing.assert_allclose(float(agent.optimizer.learning_rate), want, rtol=1e-6)
    # schedule_learning_rates (the linear schedule's setter) leaves the kl schedule's α alone.
    schedule_learning_rates(agent, config, 500)
    np.testing.assert_allclose(float(agent.optimizer.learning_rate), 0.03, rtol=1e-6)
    custom = dataclasses.replace(config, target_kl=0.1)
    adapt_learning_rate(agent, custom, 0.004)  # below 0.05
    np.testing.assert_allclose(float(agent.optimizer.learning_rate), 0.045, rtol=1e-6)
    # α stays within [α₀/100, 100 α₀] = [0.0003, 3]: 30 steps up from 0.045 pass 3 (after
    # 11), 30 steps down from 3 pass 0.0003 (after 23).
    for kl, bound in ((0.0, 3.0), (1.0, 0.0003)):
        for _ in range(30):
            adapt_learning_rate(agent, config, kl)
        np.testing.assert_allclose(float(agent.optimizer.learning_rate), bound, rtol=1e-6)


def _one_step_rollout() -> Rollout:
    """One episode of one step: S = [1, 2, 0, 0], A = u = 0.5, R = 2 (so G = 2)."""
    return Rollout(
        observations=np.array([[[1.0, 2.0, 0.0, 0.0]]], np.float32),
        actions=np.array([[[0.5]]], np.float32),
        rewards=np.array([[2.0]], np.float32),
        dones=np.array([[True]]),
        valid=np.array([[True]]),
        time_steps=np.array([[0]], np.int32),
        episode_returns=np.array([2.0]),
        episode_lengths=np.array([1]),
    )


def test_kl_schedule_measures_the_update_and_adapts_alpha():
    # Linear Gaussian from μ = 0, ln σ = 0 (weights zeroed), SGD, G = 2, u = 0.5, s = [1, 2]:
    # ∂L/∂μ = −G (u − μ) = −1 moves the kernel by α s and the bias by α, so μ' = 6α at s;
    # ∂L/∂ln σ = −G ((u − μ)² − 1) = 1.5, so ln σ' = −1.5α. The mean KL(π_old ‖ π_new) =
    # ln σ' + (1 + μ'²)/(2σ'²) − ½: at α = 0.02, −0.03 + 1.0144 e^0.06 / 2 − ½ = 0.0085635
    # (> 2κ: α → 0.02/1.5); at α = 0.005, −0.0075 + 1.0009 e^0.015 / 2 − ½ = 0.00051333
    # (< κ/2: α → 0.0075).
    for alpha, kl, after in ((0.02, 0.00856350, 0.02 / 1.5), (0.005, 0.00051333, 0.0075)):
        config = TrainConfig(
            learning_rate=alpha,
            hidden_sizes=(),
            optimizer="sgd",
            lr_schedule="kl",
            normalize_returns=False,
            batch_episodes=1,
        )
        agent = make_agent(config, BOX4, BOUNDED)
        agent.policy.get_layer("mean").set_weights([np.zeros((4, 1)), np.zeros(1)])
        metrics = update_from_rollout(agent, _one_step_rollout(), config)
        np.testing.assert_allclose(metrics["kl"], kl, atol=3e-7)  # float32 cancellation
        np.testing.assert_allclose(metrics["learning_rate"], alpha, rtol=1e-6)
        np.testing.assert_allclose(float(agent.optimizer.learning_rate), after, rtol=1e-6)
    # Other schedules neither measure nor adapt.
    constant = dataclasses.replace(config, lr_schedule="constant")
    agent = make_agent(constant, BOX4, BOUNDED)
    assert "kl" not in update_from_rollout(agent, _one_step_rollout(), constant)
    np.testing.assert_allclose(float(agent.optimizer.learning_rate), 0.005, rtol=1e-6)


def _recipe(tmp_path, name: str, **overrides) -> TrainConfig:
    """Pendulum-v1 (bounds ±2) with every recipe option on (and the schedule `overrides`
    give): 2 episodes (400 steps) per update, a checkpoint every 1,000 steps, 4,000 steps."""
    return TrainConfig.for_env(
        "Pendulum-v1",
        seed=4,
        total_steps=4000,
        batch_episodes=2,
        checkpoint_every=1000,
        action_squash="tanh",
        normalize_observations=True,
        policy_init_scale=0.5,
        initial_log_std=-0.5,
        eval_every=2000,
        eval_episodes=2,
        logdir=str(tmp_path / name),
        save_path=str(tmp_path / f"{name}_policy" / "policy.keras"),
        **overrides,
    )


@pytest.mark.parametrize("schedule", ["linear", "kl"])
def test_recipe_run_resumes_bit_for_bit_and_records_the_squash(tmp_path, schedule):
    for name in ("reference", "crashed"):
        (tmp_path / f"{name}_policy").mkdir()
    reference = train(_recipe(tmp_path, "reference", lr_schedule=schedule), progress=None)
    assert reference.steps == 4000
    # A crash after the checkpoint at 2,000 steps: the run folder as it was then is the
    # reference's with the later checkpoints gone (and the episodes past it, which resume
    # drops). Resuming must give the same episodes and the same final policy: the
    # schedule's rates (the kl schedule's adapted α too), optimizer state and sampling all
    # continue.
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "reference", crashed)
    for path in (crashed / CHECKPOINT_FOLDER).glob("ckpt-*"):
        if int(path.name.split(".")[0].split("-")[1]) > 2000:
            path.unlink()
    left = sorted((crashed / CHECKPOINT_FOLDER).glob("ckpt-*.index"))
    assert [path.name for path in left] == ["ckpt-2000.index"]
    config = dataclasses.replace(_recipe(tmp_path, "crashed", lr_schedule=schedule), resume=True)
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
