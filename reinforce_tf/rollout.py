"""Collect complete episodes from a vector env, acting for all envs in one call per step.

Shapes: T = vector steps of the collection, B = envs, O = observation size.

Unbiased batches: every collection starts all envs from a reset, env b plays exactly
`episodes_per_env[b]` whole episodes with the current policy, then idles (its later steps
are stepped but not counted). The number of episodes is fixed in advance, so short
episodes are not favoured, and no episode spans two parameter versions.
"""

from collections.abc import Callable
from typing import NamedTuple

import gymnasium as gym
import numpy as np

from reinforce_tf.envs import to_env_actions


class Rollout(NamedTuple):
    """Time-major arrays of one collection.

    Attributes:
        observations: [T, B, O] float32 S_t.
        actions: [T, B] int32 or [T, B, D] float32 A_t as sampled (before clipping).
        rewards: [T, B] float32 R_{t+1}.
        dones: [T, B] bool, True at an episode's last step.
        valid: [T, B] bool, True at steps of counted episodes (False at the reset steps of
            next-step autoreset and while an env idles).
        time_steps: [T, B] int32 t within the episode.
        episode_returns: [E] float64 undiscounted return of each finished episode.
        episode_lengths: [E] int64 steps of each finished episode.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    valid: np.ndarray
    time_steps: np.ndarray
    episode_returns: np.ndarray
    episode_lengths: np.ndarray

    @property
    def num_steps(self) -> int:
        """Env steps of the counted episodes."""
        return int(self.valid.sum())


class RolloutCollector:
    """Plays whole episodes in `env` with `act` (observations [B, O] → actions).

    The first collection resets the envs with `seed` (env b gets seed + b); later ones
    continue the envs' random streams, so a seeded run is reproducible.
    """

    def __init__(
        self, env: gym.vector.VectorEnv, act: Callable[[np.ndarray], np.ndarray], seed: int
    ):
        self.env = env
        self.act = act
        self._seed = seed
        self._buffers: dict[str, np.ndarray] = {}

    def collect(self, episodes_per_env: np.ndarray) -> Rollout:
        """Plays `episodes_per_env[b]` episodes in env b, all with the current policy.

        Args:
            episodes_per_env: [B] non-negative ints.
        """
        num_envs = self.env.num_envs
        observation, _ = self.env.reset(seed=self._seed)
        self._seed = None
        remaining = np.asarray(episodes_per_env, np.int64).copy()  # [B]
        resetting = np.zeros(num_envs, bool)  # this step is a next-step autoreset step
        time_step = np.zeros(num_envs, np.int32)
        running_return = np.zeros(num_envs, np.float64)
        episode_returns, episode_lengths = [], []
        t = 0
        while remaining.any():
            action = self.act(observation)
            next_observation, reward, terminated, truncated, _ = self.env.step(
                to_env_actions(action, self.env.single_action_space)
            )
            valid = (remaining > 0) & ~resetting
            done = (terminated | truncated) & valid
            self._write(t, observation, action, reward, done, valid, time_step)
            running_return += np.where(valid, reward, 0.0)
            time_step = np.where(valid, time_step + 1, time_step)
            for b in np.flatnonzero(done):
                episode_returns.append(running_return[b])
                episode_lengths.append(time_step[b])
            running_return[done] = 0.0
            time_step[done] = 0
            remaining -= done
            resetting = terminated | truncated
            observation = next_observation
            t += 1
        return Rollout(
            **{name: buffer[:t].copy() for name, buffer in self._buffers.items()},
            episode_returns=np.asarray(episode_returns, np.float64),
            episode_lengths=np.asarray(episode_lengths, np.int64),
        )

    def _write(self, t: int, observation, action, reward, done, valid, time_step) -> None:
        """Stores step t; buffers are reused across collections and doubled when full."""
        row = {
            "observations": np.asarray(observation, np.float32),
            "actions": action,
            "rewards": np.asarray(reward, np.float32),
            "dones": done,
            "valid": valid,
            "time_steps": time_step,
        }
        if not self._buffers or t == len(self._buffers["valid"]):
            capacity = max(256, 2 * t)
            self._buffers = {
                name: _grown(self._buffers.get(name), capacity, value)
                for name, value in row.items()
            }
        for name, value in row.items():
            self._buffers[name][t] = value


def split_episodes(episodes: int, num_envs: int) -> np.ndarray:
    """Shares `episodes` among `num_envs` envs as evenly as possible; [B] int64.

    E.g. 10 episodes over 4 envs → [3, 3, 2, 2].
    """
    extra = np.arange(num_envs) < episodes % num_envs
    return episodes // num_envs + extra.astype(np.int64)


def _grown(buffer: np.ndarray | None, capacity: int, row: np.ndarray) -> np.ndarray:
    """A [capacity, *row.shape] array holding `buffer`'s rows first."""
    grown = np.zeros((capacity, *np.shape(row)), np.asarray(row).dtype)
    if buffer is not None:
        grown[: len(buffer)] = buffer
    return grown
