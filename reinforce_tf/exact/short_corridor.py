"""Sutton & Barto's short corridor with switched actions (Example 13.1).

Three non-terminal states s₀, s₁, s₂ in a row, the goal to the right of s₂. Action 0 moves
left, action 1 moves right, except in s₁ where they are switched; moving left from s₀ stays
in s₀. Every step gives reward −1. All states look the same: the observation is always [1.0],
so a policy can only choose a probability p = π(right) that is the same everywhere.

With γ = 1 the Bellman equations
    v₀ = −1 + (1 − p) v₀ + p v₁,   v₁ = −1 + p v₀ + (1 − p) v₂,   v₂ = −1 + (1 − p) v₁
give v(s₀) = (2p − 4) / (p (1 − p)), maximal at p* = 2 − √2 ≈ 0.586 with v* ≈ −11.657.
"""

import math

import gymnasium as gym
import numpy as np

from reinforce_tf.exact.tabular import TabularEnv, TabularMDP

ENV_ID = "reinforce_tf/ShortCorridor-v0"
LEFT, RIGHT = 0, 1


def corridor_mdp() -> TabularMDP:
    """The corridor's tables: P[s, a, s'] with the goal as the missing mass of (s₂, right)."""
    next_state = {0: (0, 1), 1: (2, 0), 2: (1, None)}  # s → (after left, after right)
    transitions = np.zeros((3, 2, 3))
    for state, targets in next_state.items():
        for action, target in enumerate(targets):
            if target is not None:
                transitions[state, action, target] = 1.0
    return TabularMDP(
        transitions=transitions,
        rewards=-np.ones((3, 2)),
        initial=np.array([1.0, 0.0, 0.0]),
        observations=np.ones((3, 1), np.float32),
    )


def corridor_value(p: float | np.ndarray) -> float | np.ndarray:
    """v(s₀) = (2p − 4) / (p (1 − p)) for p = π(right) in (0, 1); −∞ at 0 and 1."""
    return (2.0 * p - 4.0) / (p * (1.0 - p))


def optimal_probability() -> float:
    """p* = 2 − √2, the root in (0, 1) of dv/dp ∝ p² − 4p + 2."""
    return 2.0 - math.sqrt(2.0)


OPTIMAL_VALUE = corridor_value(optimal_probability())  # −11.6569


class ShortCorridor(TabularEnv):
    """The corridor as a Gymnasium env: observation [1.0], actions 0 = left, 1 = right."""

    def __init__(self):
        super().__init__(corridor_mdp())


gym.register(ENV_ID, entry_point=ShortCorridor)
