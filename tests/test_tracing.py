"""Compiled hot paths are traced once, not again as episodes end or batches change length.

A Python side effect inside a `tf.function` runs only while it is traced, so counting calls
of a patched helper counts traces; `experimental_get_tracing_count` does so for the update.
"""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

import reinforce_tf.policy
from reinforce_tf.agent import Reinforce
from reinforce_tf.optimizers import Adam
from reinforce_tf.policy import build_policy, make_actor
from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.rollout import RolloutCollector


@pytest.fixture
def traces(monkeypatch):
    """Counts how often `make_actor`'s act function is traced."""
    count = {"traces": 0}
    original = reinforce_tf.policy.make_distribution

    def counting(parameters):
        count["traces"] += 1
        return original(parameters)

    monkeypatch.setattr(reinforce_tf.policy, "make_distribution", counting)
    return count


def test_acting_is_traced_once_across_episode_ends_and_batch_sizes(traces):
    env = make_vector_env("CartPole-v1", 8)
    policy = build_policy(env.single_observation_space, env.single_action_space, (16,))
    collector = RolloutCollector(env, make_actor(policy, seed=0), seed=0)
    # Three collections of 16 episodes: every env ends episodes, resets and idles.
    rollouts = [collector.collect(16) for _ in range(3)]
    assert sum(len(rollout.episode_returns) for rollout in rollouts) == 48
    # A different number of envs reuses the same trace: the batch axis is None.
    collector.act(np.zeros((3, 4), np.float32))
    assert traces["traces"] == 1


def test_actions_come_back_as_one_array_for_all_envs():
    env = make_vector_env("CartPole-v1", 5)
    act = make_actor(build_policy(env.single_observation_space, env.single_action_space), seed=0)
    observation, _ = env.reset(seed=0)
    action = act(observation)
    assert isinstance(action, np.ndarray) and action.shape == (5,) and action.dtype == np.int32


def batch(steps, seed=0):
    """Fake (S_t, A_t, w_t) of `steps` steps for a 4-d observation, 2-action policy."""
    rng = np.random.default_rng(seed)
    return (
        tf.constant(rng.normal(size=(steps, 4)).astype(np.float32)),
        tf.constant(rng.integers(0, 2, steps).astype(np.int32)),
        tf.constant(rng.normal(size=steps).astype(np.float32)),
    )


def new_agent():
    space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    return Reinforce(build_policy(space, gym.spaces.Discrete(2), (8,)), Adam(0.01))


@pytest.mark.parametrize("episodes", [16.0, 1.0], ids=["batch", "episode"])
def test_update_traces_once_for_any_batch_length(episodes):
    # The first call traces for N = None; every length reuses that trace.
    agent = new_agent()
    for steps in (37, 120, 9, 500, 64, 233):
        agent.update(*batch(steps, seed=steps), tf.constant(episodes))
    assert agent.update.experimental_get_tracing_count() == 1


def test_per_step_update_traces_once_and_steps_once_per_time_step():
    agent = new_agent()
    for steps in (5, 12, 3, 20):
        losses = agent.update_per_step(*batch(steps, seed=steps))["policy_loss"]
        assert losses.shape == (steps,)  # one minimize per time step
    assert agent.update_per_step.experimental_get_tracing_count() == 1
    # Adam counts its steps: 5 + 12 + 3 + 20 minimize calls (plus none from tracing).
    assert int(agent.optimizer.iterations.numpy()) == 40
