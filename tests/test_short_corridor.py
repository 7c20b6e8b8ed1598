"""The short corridor (Sutton & Barto Example 13.1): dynamics, registration, closed form;
and the tabular dynamics every sampler shares (`tabular.next_states`)."""

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import reinforce_tf  # noqa: F401  (registers the env)
from reinforce_tf.exact.short_corridor import (
    ENV_ID,
    LEFT,
    OPTIMAL_VALUE,
    RIGHT,
    ShortCorridor,
    corridor_mdp,
    corridor_value,
    optimal_probability,
)
from reinforce_tf.exact.tabular import TabularEnv, next_states, random_mdp, state_values


def test_registered_and_passes_check_env():
    env = gym.make(ENV_ID)
    assert isinstance(env.unwrapped, ShortCorridor)
    check_env(env.unwrapped, skip_render_check=True)
    check_env(TabularEnv(random_mdp(seed=3)), skip_render_check=True)


def test_dynamics_switch_actions_in_the_middle_state():
    # s0 -right-> s1 -right-> s0 (switched) -left-> s0 (wall) -right-> s1 -left-> s2 (switched)
    # -right-> goal: 6 steps of reward -1; the observation is always [1.0].
    env = ShortCorridor()
    observation, info = env.reset(seed=0)
    assert info["state"] == 0
    np.testing.assert_array_equal(observation, [1.0])
    visited, rewards = [], []
    for action in (RIGHT, RIGHT, LEFT, RIGHT, LEFT):
        observation, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_array_equal(observation, [1.0])
        assert not (terminated or truncated)
        visited.append(info["state"])
        rewards.append(reward)
    assert visited == [1, 0, 0, 1, 2]
    _, reward, terminated, truncated, _ = env.step(RIGHT)
    assert terminated and not truncated
    assert rewards + [reward] == [-1.0] * 6


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9])
def test_closed_form_value_matches_linear_solve(p):
    # v = (I − P_π)⁻¹ r_π for π(right) = p in every state; v(s0) = (2p − 4) / (p(1 − p)),
    # e.g. p = 0.05 → −3.9 / 0.0475 = −82.105.
    values = state_values(corridor_mdp(), np.tile([1.0 - p, p], (3, 1)), gamma=1.0)
    np.testing.assert_allclose(corridor_value(p), values[0], rtol=1e-12)
    if p == 0.05:
        np.testing.assert_allclose(values[0], -3.9 / 0.0475, rtol=1e-12)


def test_optimum():
    # p* = 2 − √2 = 0.585786; v* = (2p* − 4) / (p*(1 − p*)) = −11.656854.
    p_star = optimal_probability()
    assert math.isclose(p_star, 0.5857864376, rel_tol=1e-9)
    assert math.isclose(OPTIMAL_VALUE, -11.656854249, rel_tol=1e-9)
    grid = np.linspace(0.01, 0.99, 981)
    assert corridor_value(grid).max() <= OPTIMAL_VALUE + 1e-12
    assert abs(grid[np.argmax(corridor_value(grid))] - p_star) < 1e-3


class _Constant:
    """A stand-in generator whose every uniform is u."""

    def __init__(self, u):
        self.u = u

    def random(self, shape):
        return np.full(shape, self.u)


@pytest.mark.parametrize("u", [0.0, 0.5, 1.0 - 2.0**-53])
def test_next_states_of_the_corridor_ignore_the_uniform(u):
    # Rows are one-hot (or empty for s2-right): s0 → (0, 1), s1 → (2, 0), s2 → (1, goal = 3)
    # for (left, right), whatever u in [0, 1) is; u = 0 needs c_k ≤ u, not c_k < u.
    states = np.array([0, 0, 1, 1, 2, 2])
    actions = np.array([LEFT, RIGHT] * 3)
    moved = next_states(corridor_mdp(), states, actions, _Constant(u))
    np.testing.assert_array_equal(moved, [0, 1, 2, 0, 1, 3])


def test_next_states_follow_the_table():
    # 40,000 draws of (s, a) = (1, 2) of a random MDP: each outcome's frequency (S = 5 is the
    # end, probability 0.15) within 4.5 standard errors √(p(1 − p)/n) of P[1, 2, ·].
    mdp = random_mdp(seed=3)
    n = 40_000
    rng = np.random.default_rng(0)
    moved = next_states(mdp, np.full(n, 1), np.full(n, 2), rng)
    expected = np.append(mdp.transitions[1, 2], 1.0 - mdp.transitions[1, 2].sum())
    np.testing.assert_allclose(expected[-1], 0.15)
    frequencies = np.bincount(moved, minlength=6) / n
    assert len(frequencies) == 6
    assert (np.abs(frequencies - expected) < 4.5 * np.sqrt(expected * (1 - expected) / n)).all()
    # It drew exactly n doubles: the generator continues where one that drew n would.
    reference = np.random.default_rng(0)
    reference.random(n)
    assert rng.random() == reference.random()


def test_env_steps_through_next_states():
    # TabularEnv.step draws its next state with next_states on its own np_random: replaying
    # each step on a copy of the generator gives the same state, for 200 steps of episodes.
    mdp = random_mdp(seed=3)
    env = TabularEnv(mdp)
    _, info = env.reset(seed=7)
    actions = np.random.default_rng(1).integers(0, mdp.num_actions, 200)
    ends = 0
    for action in actions:
        replay = copy.deepcopy(env.np_random)
        state = info["state"]
        _, _, terminated, _, info = env.step(action)
        expected = next_states(mdp, np.array([state]), np.array([action]), replay)[0]
        assert info["state"] == expected
        if terminated:
            ends += 1
            _, info = env.reset()
    assert ends > 0  # the end (outcome S) was drawn too
