"""The training loop: rollout → returns → REINFORCE update → progress → stop rule → save."""

import collections
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import tensorflow as tf

from reinforce_tf.agent import Reinforce
from reinforce_tf.config import TrainConfig
from reinforce_tf.envs import make_vector_env
from reinforce_tf.optimizers import make_optimizer
from reinforce_tf.policy import (
    build_policy,
    build_value,
    make_actor,
    update_observation_statistics,
)
from reinforce_tf.returns import gamma_powers, loss_weights
from reinforce_tf.rollout import Rollout, RolloutCollector, split_episodes
from reinforce_tf.saving import check_save_path, save_policy

# The stop rule's window, as in Gymnasium's definition of "solved".
SOLVED_WINDOW = 100


class TrainResult(NamedTuple):
    """What a run did.

    Attributes:
        steps: env steps of counted episodes.
        episodes: finished episodes.
        seconds: wall time of the loop (envs, acting and updates; not start-up or saving).
        mean_return: mean return of the last (up to) 100 episodes.
        solved: the mean of the last 100 episodes reached the target return.
        save_path: where the policy was written.
        episode_returns: [episodes] every episode's return, in order.
    """

    steps: int
    episodes: int
    seconds: float
    mean_return: float
    solved: bool
    save_path: Path
    episode_returns: np.ndarray


def train(
    config: TrainConfig,
    progress: Callable[[str], None] | None = print,
    progress_seconds: float = 2.0,
) -> TrainResult:
    """Trains a policy on `config.env` by REINFORCE and saves it to `config.save_path`.

    Stops when the mean return of the last 100 episodes reaches the target, or after
    `config.total_steps` env steps.

    Args:
        config: the run's hyperparameters.
        progress: receives a progress line every `progress_seconds` and a last one; None
            for silence.

    Raises:
        InputError: a bad env id, space or save path (found before training starts).
    """
    check_save_path(config.save_path)
    env = make_vector_env(config.env, config.envs)
    try:
        policy = build_policy(
            env.single_observation_space,
            env.single_action_space,
            config.hidden_sizes,
            seed=config.seed,
            normalize_observations=config.normalize_observations,
        )
        value = value_optimizer = None
        if config.baseline == "value":
            value = build_value(policy, config.hidden_sizes, seed=config.seed)
            value_optimizer = make_optimizer(config.optimizer, config.value_lr)
        agent = Reinforce(
            policy,
            make_optimizer(config.optimizer, config.learning_rate),
            value=value,
            value_optimizer=value_optimizer,
            entropy_coef=config.entropy_coef,
            max_grad_norm=config.max_grad_norm,
        )
        collector = RolloutCollector(env, make_actor(policy, seed=config.seed), config.seed)
        target = _target_return(config, env.spec)
        result = _loop(config, agent, collector, target, progress, progress_seconds)
        metadata = {
            "env": config.env,
            "observation_space": str(env.single_observation_space),
            "action_space": str(env.single_action_space),
            "config": dataclasses.asdict(config),
        }
    finally:
        env.close()
    save_policy(policy, config.save_path, metadata)
    return result


def _target_return(config: TrainConfig, spec: gym.envs.registration.EnvSpec | None) -> float:
    if config.target_return is not None:
        return config.target_return
    threshold = spec.reward_threshold if spec is not None else None
    return math.inf if threshold is None else float(threshold)


def _loop(config, agent, collector, target, progress, progress_seconds) -> TrainResult:
    episodes_per_env = split_episodes(config.episodes_per_update, collector.env.num_envs)
    returns: list[float] = []
    recent = collections.deque(maxlen=SOLVED_WINDOW)
    steps, solved = 0, False
    start = last_report = time.perf_counter()

    def report() -> None:
        seconds = time.perf_counter() - start
        mean = np.mean(recent) if recent else math.nan
        progress(
            f"episodes {len(returns):>6,}  steps {steps:>10,}  "
            f"return(last {len(recent)}) {mean:9.2f}  "
            f"steps/s {steps / max(seconds, 1e-9):>8,.0f}  time {seconds:6.1f}s"
        )

    while steps < config.total_steps and not solved:
        rollout = collector.collect(episodes_per_env)
        _update(agent, rollout, config)
        steps += rollout.num_steps
        returns.extend(rollout.episode_returns)
        recent.extend(rollout.episode_returns)
        solved = len(recent) == SOLVED_WINDOW and np.mean(recent) >= target
        if progress and time.perf_counter() - last_report >= progress_seconds:
            report()
            last_report = time.perf_counter()
    if progress:
        report()
    return TrainResult(
        steps=steps,
        episodes=len(returns),
        seconds=time.perf_counter() - start,
        mean_return=float(np.mean(recent)) if recent else math.nan,
        solved=bool(solved),
        save_path=Path(config.save_path),
        episode_returns=np.asarray(returns),
    )


def _update(agent: Reinforce, rollout: Rollout, config: TrainConfig) -> dict[str, float]:
    """Turns a rollout into the loss's (S_t, A_t, G_t, γ^t) and takes the configured update.

    Observation statistics (when the policy normalises) are merged in after the gradient
    step, so the gradient is taken at exactly the parameters that played the episodes.

    Returns:
        Scalar metrics: policy_loss, entropy, grad_norm and, with a value baseline,
        value_loss. For per-step updates: losses summed over the steps (the episode's
        loss), entropy and grad_norm averaged.
    """
    returns = loss_weights(
        rollout.rewards,
        rollout.dones,
        rollout.valid,
        rollout.time_steps,
        config.gamma,
        normalize_returns=config.normalize,
        gamma_power=False,
        mean_baseline=config.baseline == "mean",
    )
    valid = rollout.valid  # [T, B]; boolean indexing keeps time order within each env
    observations = rollout.observations[valid]  # [N, O]
    inputs = (
        tf.constant(observations),
        tf.constant(rollout.actions[valid]),  # [N] or [N, D]
        tf.constant(returns[valid]),  # [N] G_t
    )
    powers = None  # [N] γ^t, or None for 1
    if config.gamma_power:
        powers = tf.constant(gamma_powers(config.gamma, rollout.time_steps)[valid])
    if config.update == "step":
        per_step = agent.update_per_step(*inputs, powers)  # each [T]
        averaged = ("entropy", "grad_norm")
        metrics = {
            name: float(tf.reduce_mean(v) if name in averaged else tf.reduce_sum(v))
            for name, v in per_step.items()
        }
    else:
        num_episodes = tf.constant(len(rollout.episode_returns), tf.float32)
        metrics = agent.update(*inputs, num_episodes, powers)
        metrics = {name: float(value) for name, value in metrics.items()}
    if config.normalize_observations:
        update_observation_statistics(agent.policy, observations)
    return metrics
