"""From a config to an agent, and from a rollout to an update: the trainer's glue, public.

The training loop, the gradient check, the benchmark and the tests all go through these
functions, so what they check is what trains. Shapes: T = time steps of a rollout, B = envs,
N = valid steps of the rollout.
"""

import math

import gymnasium as gym
import numpy as np
import tensorflow as tf

from reinforce_tf.agent import Reinforce
from reinforce_tf.config import KL_RATE_RANGE, KL_STEP_FACTOR, TrainConfig
from reinforce_tf.optimizers import make_optimizer
from reinforce_tf.policy import build_policy, build_value, update_observation_statistics
from reinforce_tf.returns import gamma_powers, loss_weights
from reinforce_tf.training.envs import env_spec, tanh_half_range
from reinforce_tf.training.rollout import Rollout


def make_agent(
    config: TrainConfig, observation_space: gym.Space, action_space: gym.Space
) -> Reinforce:
    """The agent `config` asks for: its policy (and value network with `baseline="value"`)
    initialised from `config.seed`, each with its optimizer.

    Raises:
        InputError: a space the policy does not support, a torso that cannot read it, or
            `action_squash="tanh"` for actions other than a Box with finite bounds.
    """
    squash = tanh_half_range(action_space) if config.action_squash == "tanh" else None
    policy = build_policy(
        observation_space,
        action_space,
        config.hidden_sizes,
        seed=config.seed,
        normalize_observations=config.normalize_observations,
        torso=config.torso,
        output_scale=config.policy_init_scale,
        initial_log_std=config.initial_log_std,
    )
    value = value_optimizer = None
    if config.baseline == "value":
        value = build_value(
            policy,
            config.hidden_sizes,
            seed=config.seed,
            observation_space=observation_space,
            torso=config.torso,
        )
        value_optimizer = make_optimizer(config.optimizer, config.resolved_value_learning_rate)
    return Reinforce(
        policy,
        make_optimizer(config.optimizer, config.learning_rate),
        value=value,
        value_optimizer=value_optimizer,
        entropy_coef=config.entropy_coef,
        max_grad_norm=config.max_grad_norm,
        squash_half_range=squash,
    )


def learning_rate_factor(config: TrainConfig, steps: int) -> float:
    """The schedule's factor of the step sizes for the update at env step counter s =
    `steps`: 1 − s/S with `lr_schedule="linear"`, S = total_steps (so α reaches 0 at the end
    of the budget; an update starts at s < S, so its factor is > 0); 1 with the others.
    """
    if config.lr_schedule != "linear":
        return 1.0
    return 1.0 - steps / config.total_steps


def schedule_learning_rates(agent: Reinforce, config: TrainConfig, steps: int) -> None:
    """Sets the optimizers' step sizes for the update at env step counter `steps`:
    α · `learning_rate_factor` (and α_w alike). A constant schedule leaves them untouched.

    The rates are a function of the step counter alone, so a resumed run sets the same ones
    as the uninterrupted run (and checkpoints hold them too, as optimizer variables). The
    `kl` schedule sets α after each update instead (`adapt_learning_rate`).
    """
    if config.lr_schedule != "linear":
        return
    factor = learning_rate_factor(config, steps)
    agent.optimizer.learning_rate = config.learning_rate * factor
    if agent.value_optimizer is not None:
        agent.value_optimizer.learning_rate = config.resolved_value_learning_rate * factor


def adapt_learning_rate(agent: Reinforce, config: TrainConfig, kl: float) -> None:
    """The `kl` schedule's step: α ← α / f if kl > 2κ, α ← f α if kl < κ/2, else unchanged,
    then clipped to [α₀ / R, R α₀]; f = KL_STEP_FACTOR, R = KL_RATE_RANGE (config.py), κ =
    `config.resolved_target_kl`, α₀ = `config.learning_rate`. α_w stays. α lives in the
    optimizer's variable, so checkpoints carry it and a resumed run continues with it.

    Args:
        agent: its optimizer's step size is α.
        config: the run's config (κ and α₀).
        kl: the update's mean KL(π_old ‖ π_new) over its states.
    """
    target, alpha = config.resolved_target_kl, float(agent.optimizer.learning_rate)
    if kl > 2.0 * target:
        alpha /= KL_STEP_FACTOR
    elif kl < 0.5 * target:
        alpha *= KL_STEP_FACTOR
    low, high = config.learning_rate / KL_RATE_RANGE, config.learning_rate * KL_RATE_RANGE
    agent.optimizer.learning_rate = min(max(alpha, low), high)


def rollout_weights(rollout: Rollout, config: TrainConfig) -> np.ndarray:
    """The rollout's returns as `config` weighs them (`returns.loss_weights`: G_t, standardised
    and minus the mean baseline when asked); [T, B] float32, 0 at invalid steps."""
    return loss_weights(
        rollout.rewards,
        rollout.dones,
        rollout.valid,
        rollout.time_steps,
        config.gamma,
        normalize_returns=config.resolved_normalize_returns,
        mean_baseline=config.baseline == "mean",
    )


def rollout_gamma_powers(rollout: Rollout, config: TrainConfig) -> np.ndarray | None:
    """[T, B] γ^t of each step with `config.gamma_power`, else None (a factor of 1)."""
    if not config.gamma_power:
        return None
    return gamma_powers(config.gamma, rollout.time_steps)


def update_from_rollout(
    agent: Reinforce, rollout: Rollout, config: TrainConfig
) -> dict[str, float]:
    """Turns a rollout into the loss's (S_t, A_t, G_t, γ^t) and takes the configured update.

    Observation statistics (when the policy normalises) are merged in after the gradient
    step, so the gradient is taken at exactly the parameters that played the episodes.

    With `lr_schedule="kl"` it then measures the update's mean KL(π_old ‖ π_new) over the
    rollout's states (two more forward passes, eager) and adapts α (`adapt_learning_rate`).
    Clipped Box actions get the Gaussians' KL, an upper bound on that of the clipped actions.

    Returns:
        Scalar metrics: policy_loss, entropy, grad_norm and, with a value baseline,
        value_loss. For per-step updates: losses summed over the steps (the episode's
        loss), entropy and grad_norm averaged. With the `kl` schedule also kl and
        learning_rate (the α this update took).
    """
    valid = rollout.valid  # [T, B]; boolean indexing keeps time order within each env
    observations = rollout.observations[valid]  # [N, O]
    inputs = (
        tf.constant(observations),
        tf.constant(rollout.actions[valid]),  # [N] or [N, D]
        tf.constant(rollout_weights(rollout, config)[valid]),  # [N] G_t
    )
    powers = rollout_gamma_powers(rollout, config)
    powers = None if powers is None else tf.constant(powers[valid])  # [N] γ^t
    adaptive = config.lr_schedule == "kl"
    if adaptive:
        before = agent.distribution(inputs[0])
        learning_rate = float(agent.optimizer.learning_rate)
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
    if adaptive:  # before the observation statistics move: π_old and π_new see one input
        kl = float(tf.reduce_mean(before.kl(agent.distribution(inputs[0]))))
        metrics.update(kl=kl, learning_rate=learning_rate)
        adapt_learning_rate(agent, config, kl)
    if config.normalize_observations:
        update_observation_statistics(agent.policy, observations)
    return metrics


def target_return(config: TrainConfig) -> float:
    """The stop rule's target: `config.target_return`, else the env's registered
    `reward_threshold`, else inf (never stop early)."""
    if config.target_return is not None:
        return config.target_return
    threshold = env_spec(config.env).reward_threshold
    return math.inf if threshold is None else float(threshold)
