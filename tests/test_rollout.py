"""Whole-episode collection, on an env whose episodes are known in advance."""

import threading

import gymnasium as gym
import numpy as np
import pytest

from reinforce_tf.training.envs import make_vector_env
from reinforce_tf.training.rollout import (
    RolloutCollector,
    buffer_bytes,
    collection_rows,
    split_episodes,
)


class CountingEnv(gym.Env):
    """Observation [t]; reward t + 1 at step t; episodes last 2 to 4 steps (drawn at reset)."""

    observation_space = gym.spaces.Box(0.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(2, 5))
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        # Alternate the two ways an episode ends: odd lengths terminate, even ones truncate.
        done = self.t == self.length
        terminated, truncated = done and self.length % 2 == 1, done and self.length % 2 == 0
        return np.array([self.t], np.float32), float(self.t), terminated, truncated, {}


gym.register("tests/Counting-v0", entry_point=CountingEnv)
# The same env with a time limit that never cuts an episode short (they last at most 4).
gym.register("tests/CountingLimited-v0", entry_point=CountingEnv, max_episode_steps=4)


def collect(episodes_per_env, seed=7, env_id="tests/Counting-v0", **options):
    env = make_vector_env(env_id, len(episodes_per_env))
    rng = np.random.default_rng(seed)
    collector = RolloutCollector(
        env, lambda obs: rng.integers(0, 2, len(obs)).astype(np.int32), seed
    )
    return collector, collector.collect(np.array(episodes_per_env), **options)


def test_each_env_plays_exactly_its_episodes():
    _, rollout = collect([3, 1, 0])
    counted = rollout.dones & rollout.valid
    np.testing.assert_array_equal(counted.sum(axis=0), [3, 1, 0])
    assert not rollout.valid[:, 2].any()  # an env with no episodes only idles
    assert len(rollout.episode_returns) == 4
    # Reward at step t is t + 1, so an episode of length L returns L(L + 1)/2.
    lengths = rollout.episode_lengths
    np.testing.assert_array_equal(rollout.episode_returns, lengths * (lengths + 1) / 2)
    assert rollout.num_steps == lengths.sum()


def test_valid_steps_are_the_episodes_in_order_without_reset_steps():
    _, rollout = collect([3])
    valid = rollout.valid[:, 0]
    # The recorded observation is S_t = [t]: each counted step's time index matches it.
    np.testing.assert_array_equal(rollout.observations[valid, 0, 0], rollout.time_steps[valid, 0])
    np.testing.assert_array_equal(rollout.rewards[valid, 0], rollout.time_steps[valid, 0] + 1)
    # Next-step autoreset: the step after each episode end is a reset step, not counted.
    ends = np.flatnonzero(rollout.dones[:, 0])
    assert not valid[ends[:-1] + 1].any()
    assert valid.sum() == rollout.episode_lengths.sum()


def test_later_collections_start_fresh_episodes():
    collector, first = collect([1, 2])
    second = collector.collect(np.array([2, 1]))
    for rollout in (first, second):
        starts = rollout.valid & (rollout.time_steps == 0)
        np.testing.assert_array_equal(rollout.observations[starts, 0], 0.0)
        assert (rollout.time_steps[0] == 0).all()
    np.testing.assert_array_equal((second.dones & second.valid).sum(axis=0), [2, 1])


def test_same_seed_same_arrays():
    _, first = collect([2, 2], seed=3)
    _, again = collect([2, 2], seed=3)
    for name in first._fields:
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name), err_msg=name)
    _, other = collect([2, 2], seed=4)
    assert not np.array_equal(first.episode_lengths, other.episode_lengths) or not np.array_equal(
        first.actions, other.actions
    )


def test_buffers_are_allocated_once_for_the_longest_collection_the_time_limit_allows():
    collector, first = collect([3, 1, 0], env_id="tests/CountingLimited-v0")
    buffers = collector._buffers
    # 3 episodes of at most 4 steps, each followed by its reset step: 3 · (4 + 1) = 15 rows.
    assert buffers.observations.shape == (15, 3, 1)
    arrays = [getattr(buffers, name) for name in buffers._ARRAYS]
    for episodes in ([2, 3, 1], [1, 1, 1], [3, 0, 2]):
        rollout = collector.collect(np.array(episodes))
        np.testing.assert_array_equal((rollout.dones & rollout.valid).sum(axis=0), episodes)
    assert collector._buffers is buffers
    assert all(getattr(buffers, name) is array for name, array in zip(buffers._ARRAYS, arrays))
    # Rollouts are copies: later collections do not overwrite an earlier one.
    lengths = first.episode_lengths
    np.testing.assert_array_equal(first.episode_returns, lengths * (lengths + 1) / 2)


def test_buffers_grow_for_envs_without_a_time_limit():
    # 600 episodes of 2–4 steps (plus reset steps) need far more than the first 1,024 rows.
    collector, rollout = collect([600, 1])
    assert len(rollout.valid) > 1024
    np.testing.assert_array_equal((rollout.dones & rollout.valid).sum(axis=0), [600, 1])
    lengths = rollout.episode_lengths
    np.testing.assert_array_equal(rollout.episode_returns, lengths * (lengths + 1) / 2)
    valid = rollout.valid[:, 0]
    np.testing.assert_array_equal(rollout.observations[valid, 0, 0], rollout.time_steps[valid, 0])
    assert collector._buffers.capacity >= len(rollout.valid)


@pytest.mark.parametrize("num_envs", [1, 5])
def test_cartpole_uses_the_vectorised_implementation(num_envs):
    env = make_vector_env("CartPole-v1", num_envs)
    assert type(env).__name__ == "CartPoleVectorEnv"
    assert env.num_envs == num_envs


def test_split_episodes_evenly():
    np.testing.assert_array_equal(split_episodes(10, 4), [3, 3, 2, 2])
    np.testing.assert_array_equal(split_episodes(16, 16), [1] * 16)
    np.testing.assert_array_equal(split_episodes(3, 1), [3])


def test_a_collection_that_would_pass_the_step_budget_stops_and_is_dropped():
    # The same seeded batch three times: its N counted steps fit a budget of N exactly; with
    # N − 1 it stops before its last episode ends, and no partial batch is returned.
    _, whole = collect([3, 1, 0])
    steps = whole.num_steps
    _, exact = collect([3, 1, 0], max_steps=steps)
    np.testing.assert_array_equal(exact.valid, whole.valid)
    _, short = collect([3, 1, 0], max_steps=steps - 1)
    assert short is None


def test_a_collection_stops_at_once_when_asked():
    stop = threading.Event()
    calls = []

    def act(observations):
        calls.append(len(observations))
        if len(calls) == 3:
            stop.set()  # a signal arrives during the third step
        return np.zeros(len(observations), np.int32)

    collector = RolloutCollector(make_vector_env("tests/Counting-v0", 2), act, 0)
    assert collector.collect(np.array([1000, 1000]), stop=stop) is None
    assert len(calls) == 3


def test_collection_rows_are_bounded_by_the_time_limit_and_by_the_budget():
    # 3 episodes per env of at most 4 steps: 3 · (4 + 1) = 15 rows; a budget of 5 counted
    # steps: at most 5 + 1 + 3 = 9 rows; no time limit and no budget: the first 1,024 rows.
    limited = gym.spec("tests/CountingLimited-v0")
    assert collection_rows(limited, 3) == 15
    assert collection_rows(limited, 3, max_steps=5) == 9
    assert collection_rows(gym.spec("tests/Counting-v0"), 3) == 1024
    # float32 observation (1) and action index: 4 + 4 + 4 + 1 + 1 + 4 + 8 = 26 bytes per env.
    space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    assert buffer_bytes(10, 3, space, gym.spaces.Discrete(2)) == 10 * 3 * 26
