"""Run a policy (sampled or greedy) for whole episodes and report the returns."""

import keras
import numpy as np

from reinforce_tf.envs import make_vector_env
from reinforce_tf.errors import InputError
from reinforce_tf.policy import distribution_model, make_actor
from reinforce_tf.rollout import RolloutCollector, split_episodes

# Envs stepped in parallel while evaluating; each plays its share of the episodes.
EVAL_NUM_ENVS = 16


def evaluate(
    policy: keras.Model,
    env_id: str,
    episodes: int,
    greedy: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Plays `episodes` whole episodes of `env_id` with `policy`.

    Args:
        greedy: act by the mode (argmax / mean) instead of sampling.

    Returns:
        [episodes] float64 undiscounted returns.

    Raises:
        InputError: a bad env id, a non-positive count, or a policy whose input or output
            does not fit the env's spaces.
    """
    if episodes <= 0:
        raise InputError(f"must be an integer > 0; got {episodes!r}", field="episodes")
    num_envs = min(episodes, EVAL_NUM_ENVS)
    env = make_vector_env(env_id, num_envs)
    try:
        check_fits(policy, env.single_observation_space, env.single_action_space)
        collector = RolloutCollector(env, make_actor(policy, greedy=greedy, seed=seed), seed)
        return collector.collect(split_episodes(episodes, num_envs)).episode_returns
    finally:
        env.close()


def check_fits(policy: keras.Model, observation_space, action_space) -> None:
    """Raises `InputError` naming both sides when the policy was made for other spaces."""
    observation_size = policy.input_shape[-1]
    parameters = distribution_model(policy).output  # logits, or {"mean", "log_std"}
    action_size = (parameters["mean"] if isinstance(parameters, dict) else parameters).shape[-1]
    expected_actions = getattr(action_space, "n", None) or action_space.shape[0]
    if (observation_size, action_size) != (observation_space.shape[0], expected_actions):
        raise InputError(
            f"was made for observations of size {observation_size} and {action_size} "
            f"action outputs; the env has observation space {observation_space} and action "
            f"space {action_space}",
            field="policy",
        )
