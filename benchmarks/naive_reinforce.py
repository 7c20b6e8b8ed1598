"""The naive reference: REINFORCE acting as tutorials do, learning as the trainer does.

One env, one episode at a time, an eager `policy(observation[None])` call per step and a
NumPy draw from the probabilities it returns. Every `episodes_per_update` episodes, the
episodes go one after another into one [T, 1] `Rollout` and through the trainer's own
update (`update_from_rollout`, agent from `make_agent`): same returns, normalisation,
baseline and compiled step. So against the trainer only acting differs.

Shapes: T = steps of the batch's episodes, L = steps of one episode, O = observation size.
"""

import collections
import time
from typing import NamedTuple

import gymnasium as gym
import keras
import numpy as np

from reinforce_tf.agent import Reinforce
from reinforce_tf.config import TrainConfig
from reinforce_tf.errors import InputError
from reinforce_tf.training.envs import to_env_actions
from reinforce_tf.training.learner import make_agent, target_return, update_from_rollout
from reinforce_tf.training.loop import SOLVED_WINDOW
from reinforce_tf.training.rollout import Rollout

# One episode: observations [L, O] float32, actions [L] int32, rewards [L] float32.
Episode = tuple[np.ndarray, np.ndarray, np.ndarray]


class NaiveResult(NamedTuple):
    steps: int  # env steps of the episodes played
    seconds: float  # wall time of the loop
    solved: bool  # the mean return of the last 100 episodes reached the target


def check_discrete(action_space: gym.Space) -> None:
    """Raises `InputError` unless actions are Discrete (the draw is from probabilities)."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise InputError(
            "must have Discrete actions: the naive reference samples from probabilities",
            field="env",
        )


def play_episode(
    env: gym.Env, policy: keras.Model, rng: np.random.Generator, seed: int | None = None
) -> Episode:
    """One episode, acting with an eager policy call and a NumPy draw per step."""
    observation, _ = env.reset(seed=seed)
    observations, actions, rewards = [], [], []
    done = False
    while not done:
        probabilities = policy(observation[None].astype(np.float32)).numpy()[0]  # [A]
        action = rng.choice(len(probabilities), p=probabilities / probabilities.sum())
        observations.append(observation)
        actions.append(action)
        env_action = to_env_actions(np.int32(action), env.action_space)
        observation, reward, terminated, truncated, _ = env.step(env_action)
        rewards.append(reward)
        done = terminated or truncated
    return (
        np.asarray(observations, np.float32),
        np.asarray(actions, np.int32),
        np.asarray(rewards, np.float32),
    )


def as_rollout(episodes: list[Episode]) -> Rollout:
    """The episodes one after another in one column: a [T, 1] `Rollout`."""
    observations, actions, rewards = (np.concatenate(part)[:, None] for part in zip(*episodes))
    lengths = np.array([len(episode[2]) for episode in episodes], np.int64)
    dones = np.zeros(rewards.shape, bool)
    dones[np.cumsum(lengths) - 1] = True  # each episode's last step
    time_steps = np.concatenate([np.arange(length, dtype=np.int32) for length in lengths])
    return Rollout(
        observations=observations,
        actions=actions,
        rewards=rewards,
        dones=dones,
        valid=np.ones(rewards.shape, bool),
        time_steps=time_steps[:, None],
        episode_returns=np.array([episode[2].sum(dtype=np.float64) for episode in episodes]),
        episode_lengths=lengths,
    )


def train(
    config: TrainConfig, max_seconds: float = 0.0, agent: Reinforce | None = None
) -> NaiveResult:
    """Trains until the target return (mean of the last 100 episodes), `config.total_steps`
    or `max_seconds` of wall time (checked after each episode; 0 means no limit).

    Args:
        agent: the agent to train; None makes one with `make_agent(config, ...)`.

    Returns:
        A `NaiveResult`. A batch cut short by the time budget is not learned from.
    """
    env = gym.make(config.env)
    try:
        check_discrete(env.action_space)
        if agent is None:
            agent = make_agent(config, env.observation_space, env.action_space)
        rng = np.random.default_rng(config.seed)
        target, recent = target_return(config), collections.deque(maxlen=SOLVED_WINDOW)
        steps, solved, seed = 0, False, config.seed  # the env is seeded once, at the start
        start = time.perf_counter()

        def out_of_time() -> bool:
            return bool(max_seconds) and time.perf_counter() - start > max_seconds

        while steps < config.total_steps and not solved and not out_of_time():
            batch = []  # checked per episode: a batch can take minutes when acting naively
            while len(batch) < config.episodes_per_update and not out_of_time():
                batch.append(play_episode(env, agent.policy, rng, seed))
                steps, seed = steps + len(batch[-1][2]), None
            if len(batch) < config.episodes_per_update:
                break
            rollout = as_rollout(batch)
            update_from_rollout(agent, rollout, config)
            recent.extend(rollout.episode_returns)
            solved = len(recent) == SOLVED_WINDOW and np.mean(recent) >= target
        return NaiveResult(steps, time.perf_counter() - start, bool(solved))
    finally:
        env.close()
