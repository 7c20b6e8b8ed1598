"""Finite episodic MDPs with known dynamics, as tables and as Gymnasium envs.

Shapes: S = non-terminal states, A = actions, O = observation size, B = a batch of
(state, action) pairs.

A `TabularMDP` lists, for every non-terminal state s and action a, the probability of each
next non-terminal state, P[s, a, s']; the missing mass 1 − Σ_s' P[s, a, s'] is the
probability of ending the episode. The agent sees `observations[s]`, not s itself, so
several states may look alike (the short corridor's are all equal). With the policy's action
probabilities π[s, a] the state values solve the Bellman equations

    v = r_π + γ P_π v,   P_π[s, s'] = Σ_a π[s, a] P[s, a, s'],   r_π[s] = Σ_a π[s, a] r[s, a],

i.e. v = (I − γ P_π)⁻¹ r_π, and J(θ) = μ₀ᵀ v (μ₀ the start distribution).

The dynamics are sampled in one place, `next_states`: `TabularEnv` (one step, which the
gradient check plays through the trainer's collector) and the corridor runs draw S_{t+1}
through it.
"""

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class TabularMDP:
    """An episodic MDP given by its tables.

    Attributes:
        transitions: [S, A, S] P[s, a, s'], each row summing to at most 1 (the rest ends
            the episode).
        rewards: [S, A] the reward r(s, a) received after taking a in s.
        initial: [S] the start distribution μ₀.
        observations: [S, O] float32, what the agent sees in each state.
    """

    transitions: np.ndarray
    rewards: np.ndarray
    initial: np.ndarray
    observations: np.ndarray

    @property
    def num_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def num_actions(self) -> int:
        return self.transitions.shape[1]


def state_values(mdp: TabularMDP, probabilities: np.ndarray, gamma: float) -> np.ndarray:
    """v_π = (I − γ P_π)⁻¹ r_π by a linear solve (float64).

    Args:
        probabilities: [S, A] π(a|s) in each state.

    Returns:
        [S] the value of each non-terminal state.
    """
    p_pi = np.einsum("sa,sat->st", probabilities, mdp.transitions)
    r_pi = np.einsum("sa,sa->s", probabilities, mdp.rewards)
    return np.linalg.solve(np.eye(mdp.num_states) - gamma * p_pi, r_pi)


def next_states(
    mdp: TabularMDP, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draws S' ~ P[s, a, ·] for a batch of pairs, outcome S (= `num_states`) for the end.

    By inversion, with one uniform u ~ U[0, 1) per pair (`rng.random`, in pair order):
    S' = #{k < S : c_k ≤ u}, c_k = Σ_{j≤k} P[s, a, j]; so S' = k with probability
    c_k − c_{k−1} = P[s, a, k], and S' = S (the end) when u ≥ c_{S−1}, with probability
    1 − Σ_j P[s, a, j]. This is `Generator.choice`'s own algorithm (a CDF searched for u), so
    a deterministic row (the short corridor's) gives its one outcome whatever u is.

    Args:
        states: [B] int non-terminal states s, each in [0, S).
        actions: [B] int actions a.
        rng: consumes exactly B doubles.

    Returns:
        [B] int64 next states in [0, S]; S means the episode ended.
    """
    cumulative = np.cumsum(mdp.transitions[states, actions], axis=-1)  # [B, S] c_k
    uniforms = rng.random(np.shape(states))  # [B]
    return (uniforms[..., None] >= cumulative).sum(axis=-1)


def random_mdp(
    *, num_states: int = 5, num_actions: int = 3, end_probability: float = 0.15, seed: int = 0
) -> TabularMDP:
    """A random MDP: Dirichlet next-state rows scaled to 1 − `end_probability`, rewards
    N(0, 1), a Dirichlet start distribution, and one-hot observations (states are told apart).
    """
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    return TabularMDP(
        transitions=(1.0 - end_probability) * transitions,
        rewards=rng.normal(size=(num_states, num_actions)),
        initial=rng.dirichlet(np.ones(num_states)),
        observations=np.eye(num_states, dtype=np.float32),
    )


class TabularEnv(gym.Env):
    """Plays a `TabularMDP`: observation `observations[s]`, reward r(s, a), next state drawn
    from P[s, a, ·] (or the end of the episode) by `next_states` with the env's `np_random`.
    `info["state"]` is the hidden state s (S once the episode has ended).
    """

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, mdp: TabularMDP):
        self.mdp = mdp
        low = min(0.0, float(mdp.observations.min()))
        high = max(1.0, float(mdp.observations.max()))
        self.observation_space = gym.spaces.Box(low, high, (mdp.observations.shape[1],), np.float32)
        self.action_space = gym.spaces.Discrete(mdp.num_actions)
        self._state = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.mdp.num_states, p=self.mdp.initial))
        return self.mdp.observations[self._state].copy(), {"state": self._state}

    def step(self, action):
        state, action = self._state, int(action)
        reward = float(self.mdp.rewards[state, action])
        self._state = int(
            next_states(self.mdp, np.array([state]), np.array([action]), self.np_random)[0]
        )
        terminated = self._state == self.mdp.num_states
        observation = self.mdp.observations[min(self._state, self.mdp.num_states - 1)].copy()
        return observation, reward, terminated, False, {"state": self._state}
