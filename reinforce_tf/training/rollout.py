"""Collect complete episodes from a vector env, acting for all envs in one call per step.

Shapes: T = vector steps of the collection, B = envs, O = observation size.

No idle envs while episodes remain: a collection of E episodes starts all envs from a
reset; env b < min(B, E) starts episode b, and an env that finishes an episode starts the
next not-yet-started one of the E (after its autoreset step), the lowest env first when
several finish at once. Once all E have started, an env that finishes idles (not stepped
when the vector env is a SyncVectorEnv, `stepping.PlayingStepper`; else stepped but not
counted), and the collection ends when the E started episodes have. So envs play different
numbers of episodes, and only the last episodes' tail is idle instead of every env waiting
for the batch's longest episode.

Unbiased batches: the decision to start an episode is made before it is played (from the
lengths of earlier episodes only) and every started episode is used, so the E episodes are
E independent draws of the policy's episode distribution: short episodes are not favoured
(as keeping the first E to finish would), and no episode spans two parameter versions
(docs/gradient.md). A collection that would pass the run's step budget, or that a signal
interrupts, ends at once and is dropped whole, so the budget and Ctrl-C hold inside an
update however large.

Speed: the hot loop is one `act` call (`acting.training_actor`: NumPy for MLP policies,
else a compiled function of the [B, O] batch), one step of the playing envs, and a few
whole-array NumPy operations on buffers allocated once; no per-env Python of its own
(handing out episodes is a cumulative sum over the envs that just ended).
Buffers hold the longest collection the env's time limit and the budget allow
(`collection_rows`), so memory is known before training and does not grow as it runs.
"""

import math
import threading
from collections.abc import Callable
from typing import NamedTuple

import gymnasium as gym
import numpy as np

from reinforce_tf.policy import observation_dtype
from reinforce_tf.training.envs import env_action_map
from reinforce_tf.training.stepping import PlayingStepper

# Steps a collection is first given room for when the env has no time limit (it doubles).
_UNLIMITED_CAPACITY = 1024


class Rollout(NamedTuple):
    """Time-major arrays of one collection.

    Attributes:
        observations: [T, B, O] float32 S_t (images [T, B, H, W, C], uint8 or bool kept
            as the env gives them: `policy.observation_dtype`).
        actions: [T, B] int32 or [T, B, D] float32 A_t as sampled (before clipping or
            squashing).
        rewards: [T, B] float32 R_{t+1}.
        dones: [T, B] bool, True at an episode's last step.
        valid: [T, B] bool, True at steps of counted episodes (False at the reset steps of
            next-step autoreset and while an env idles).
        time_steps: [T, B] int32 t within the episode.
        episode_returns: [E] float64 undiscounted return of each finished episode, ordered
            by the step it ended at, then by env.
        episode_lengths: [E] int64 steps of each finished episode, in the same order.
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
    continue the envs' random streams, so a seeded run is reproducible. Box actions reach
    the env clipped or tanh-squashed (`squash`, see `envs.env_action_map`); the rollout
    keeps them as sampled. An `act` with a `sync()` method (`acting.NumpyActor`, which
    copies the policy's parameters) is synced at the start of every collection; a wrapper
    of such an actor must pass its `sync` on, or it acts with stale parameters.
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        act: Callable[[np.ndarray], np.ndarray],
        seed: int,
        squash: str = "clip",
    ):
        self.env = env
        self.act = act
        self._to_env = env_action_map(env.single_action_space, squash)
        self._seed = seed
        self._stepper = PlayingStepper(env)
        self._buffers: _Buffers | None = None

    def collect(
        self,
        num_episodes: int,
        *,
        max_steps: int | None = None,
        stop: threading.Event | None = None,
    ) -> Rollout | None:
        """Plays `num_episodes` whole episodes, all with the current policy, handing them out
        to the envs as they free up (see the module docstring).

        Args:
            num_episodes: E >= 0, the episodes of the collection.
            max_steps: the most counted steps the collection may take (the run's remaining
                budget); None for no limit.
            stop: when set (a signal asked the run to stop), the collection ends at once.

        Returns:
            The rollout; None when `max_steps` was passed or `stop` was set before every
            episode finished. Its episodes are then dropped whole: learning from the
            finished ones alone would favour short episodes.
        """
        num_envs = self.env.num_envs
        budget = math.inf if max_steps is None else max_steps
        if hasattr(self.act, "sync"):
            self.act.sync()
        observation = self._stepper.reset(self._seed)
        self._seed = None
        buffers = self._buffers_for(num_episodes, budget)
        # [B] env b plays a started episode (or is at the reset step before one).
        playing = np.arange(num_envs) < num_episodes
        unstarted = num_episodes - int(playing.sum())  # episodes not handed out yet
        ended = np.zeros(num_envs, bool)  # the last step ended an episode: this is a reset step
        valid = np.zeros(num_envs, bool)  # [B] the last row's counted steps
        # The counted steps are at most num_envs per row: counted only once that bound could
        # pass the budget (then row by row), so most rows skip the count.
        checked_rows = int(budget // num_envs) if math.isfinite(budget) else math.inf
        counted = None
        t = 0
        while playing.any():
            if stop is not None and stop.is_set():
                return None
            if t >= checked_rows:
                counted = buffers.valid[:t].sum() if counted is None else counted + valid.sum()
                if counted > budget:
                    return None
            if t == buffers.capacity:
                buffers.grow()
            action = self.act(observation)
            next_observation, reward, terminated, truncated = self._stepper.step(
                self._to_env(action), playing
            )
            valid = playing & ~ended
            ended = terminated | truncated
            done = ended & valid
            buffers.observations[t] = observation
            buffers.actions[t] = action
            buffers.rewards[t] = reward
            buffers.dones[t] = done
            buffers.valid[t] = valid
            if done.any():  # most steps end no episode: skip the bookkeeping of ends
                # The envs that just finished take the next unstarted episodes, lowest env
                # first; the rest idle. Decided from this step's ends only, before those
                # episodes play.
                starts = done & (np.cumsum(done) <= unstarted)
                unstarted -= int(starts.sum())
                playing = (playing & ~done) | starts
            observation = next_observation
            t += 1
        return None if buffers.valid[:t].sum() > budget else buffers.rollout(t)

    def _buffers_for(self, episodes: int, max_steps: float = math.inf) -> "_Buffers":
        """Buffers with room for a collection of `episodes`, allocated once."""
        capacity = collection_rows(self.env.spec, episodes, self.env.num_envs, max_steps)
        if self._buffers is None or self._buffers.capacity < capacity:
            self._buffers = _Buffers(
                capacity,
                self.env.num_envs,
                self.env.single_observation_space,
                self.env.single_action_space,
            )
        return self._buffers


def collection_rows(spec, episodes: int, num_envs: int, max_steps: float = math.inf) -> int:
    """The most rows (vector steps) a collection of E = `episodes` in B = `num_envs` envs
    can take.

    With a time limit of L steps: if E <= B, each env plays at most one episode, L rows.
    Else let r be the row at which the last episode is handed out (its env's previous
    episode ended there). Up to r no env idles, so the B·(r + 1) env-rows 0 … r are all
    steps or reset steps of the first E − 1 episodes: at most L steps each, plus one reset
    step for each of the E − 1 − B that follow another episode in their env (the first B
    start from the collection's reset). So r + 2 <= (E − 1)(L + 1)/B, and every episode,
    handed out at row r at the latest, ends by row r + 1 + L (a reset step, then L steps):
    rows 0 … r + 1 + L, at most ⌊(E − 1)(L + 1)/B⌋ + L of them. (B = 1 gives E(L + 1) − 1:
    E episodes and the E − 1 reset steps between them.)

    A budget of `max_steps` counted steps ends the collection too: every row counts at least
    one step, except rows where every playing env is at a reset step (at most one per reset,
    E − B of them); after the row that passes the budget the collection stops, so at most
    max_steps + 1 + max(E − B, 0) rows. Without either bound the buffers start at
    `_UNLIMITED_CAPACITY` rows and double as needed.
    """
    limit = getattr(spec, "max_episode_steps", None)
    bounds = []
    if limit:
        many = episodes > num_envs
        bounds.append((episodes - 1) * (limit + 1) // num_envs + limit if many else limit)
    if math.isfinite(max_steps):
        bounds.append(int(max_steps) + 1 + max(episodes - num_envs, 0))
    return min(bounds) if bounds else _UNLIMITED_CAPACITY


def buffer_bytes(rows: int, num_envs: int, observation_space, action_space) -> int:
    """Bytes of the preallocated buffers for `rows` rows of `num_envs` envs."""
    return _Buffers.row_bytes(num_envs, observation_space, action_space) * rows


class _Buffers:
    """Preallocated [capacity, B, ...] arrays that a collection writes step by step."""

    _ARRAYS = ("observations", "actions", "rewards", "dones", "valid")

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        observation_space: gym.spaces.Box,
        action_space: gym.Space,
    ):
        self.capacity = capacity
        rows = (capacity, num_envs)
        shape, dtype = observation_space.shape, observation_dtype(observation_space)
        self.observations = np.zeros((*rows, *shape), dtype)
        if isinstance(action_space, gym.spaces.Discrete):
            self.actions = np.zeros(rows, np.int32)  # action indices, before `start`
        else:
            self.actions = np.zeros((*rows, *action_space.shape), np.float32)
        # float64 as the envs give them: episode returns are summed from these.
        self.rewards = np.zeros((capacity, num_envs), np.float64)
        self.dones = np.zeros((capacity, num_envs), bool)
        self.valid = np.zeros((capacity, num_envs), bool)

    @staticmethod
    def row_bytes(num_envs: int, observation_space: gym.Space, action_space: gym.Space) -> int:
        """Bytes of one row of every array: observations (float32, or uint8 or bool frames),
        float32 actions, float64 reward, two bools; and of the int32 time steps and float64
        returns `rollout` derives."""
        itemsize = observation_dtype(observation_space).itemsize
        observation = itemsize * int(np.prod(observation_space.shape))
        action = 4 * int(np.prod(action_space.shape)) if action_space.shape else 4
        return num_envs * (observation + action + 8 + 1 + 1 + 4 + 8)

    def grow(self) -> None:
        """Doubles the capacity (only for envs without a time limit)."""
        for name in _Buffers._ARRAYS:
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        self.capacity *= 2

    def rollout(self, steps: int) -> Rollout:
        """Copies of the first `steps` rows, so the buffers can be reused, with each step's
        time t within its episode and each episode's undiscounted return."""
        valid, ends = self.valid[:steps], self.dones[:steps]  # [T, B]
        time_steps, returns = _episode_sums(valid, ends, self.rewards[:steps])
        return Rollout(
            observations=self.observations[:steps].copy(),
            actions=self.actions[:steps].copy(),
            rewards=self.rewards[:steps].astype(np.float32),
            dones=ends.copy(),
            valid=valid.copy(),
            time_steps=time_steps,
            episode_returns=returns,  # by end step, then env
            episode_lengths=time_steps[ends].astype(np.int64) + 1,
        )


def _episode_sums(valid: np.ndarray, ends: np.ndarray, rewards: np.ndarray):
    """([T, B] int32 t within the episode at each counted step, 0 off counted steps;
    [E] float64 the undiscounted return of each finished episode, ordered by end step then
    env, as `ends[ends]` is).

    `valid`, `ends` [T, B] bool, `rewards` [T, B] float64. Time steps are running counts
    over each env's counted steps less their value at the env's previous episode end
    (integers: exact). Returns are summed episode by episode (`np.add.reduceat` over the
    counted rewards in env-major order), never as differences of running totals, which
    would lose a small episode's return after one with huge rewards.
    """
    if len(valid) == 0:
        return np.zeros(valid.shape, np.int32), np.zeros(0)
    rows = np.arange(len(valid))[:, None]  # [T, 1]
    last_end = np.maximum.accumulate(np.where(ends, rows, -1), axis=0)  # [T, B]: at or before t
    previous = np.vstack([np.full((1, valid.shape[1]), -1), last_end[:-1]])  # [T, B]: before t
    counts = np.cumsum(valid, axis=0, dtype=np.int64)
    at_previous = np.take_along_axis(counts, np.maximum(previous, 0), axis=0)
    time_steps = counts - np.where(previous >= 0, at_previous, 0) - 1
    # Episodes in env-major order: each env's counted steps in time order, cut after each end.
    counted = np.flatnonzero(valid.T)  # [N] positions b·T + t
    if len(counted) == 0:
        return np.zeros(valid.shape, np.int32), np.zeros(0)
    env = counted // len(valid)
    finished = ends.T.ravel()[counted]  # [N]
    starts = np.flatnonzero(np.r_[True, finished[:-1] | (env[1:] != env[:-1])])
    sums = np.add.reduceat(rewards.T.ravel()[counted], starts)  # [episodes, even unfinished]
    last = np.r_[starts[1:], len(counted)] - 1
    done = finished[last]
    order = np.lexsort((env[last][done], counted[last][done] % len(valid)))  # by t, then env
    return np.where(valid, time_steps, 0).astype(np.int32), sums[done][order]
