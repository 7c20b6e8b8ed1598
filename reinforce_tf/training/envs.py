"""Environments: make the vector env for an id, refusing spaces the policy does not support
(`policy.check_spaces`), and map sampled actions to what the env accepts.

Vector envs use Gymnasium's next-step autoreset: after an episode ends, the sub-env's next
`step` is a reset step (its action ignored, reward 0) that returns the new episode's first
observation.
"""

import gymnasium as gym
import numpy as np

from reinforce_tf.errors import InputError
from reinforce_tf.policy import check_spaces


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of `env_id`.

    Raises:
        InputError: the id is not registered.
    """
    try:
        return gym.spec(env_id)
    except gym.error.Error as error:
        raise InputError(
            f"unknown environment id {env_id!r} ({error}); use a registered Gymnasium id "
            "such as CartPole-v1, Acrobot-v1 or Pendulum-v1",
            field="env",
        ) from None


def make_vector_env(
    env_id: str, num_envs: int, vectorization: str = "sync"
) -> gym.vector.VectorEnv:
    """`num_envs` copies of `env_id` stepped as one, in next-step autoreset mode.

    `sync` uses the env's own vectorised implementation when it registers one (CartPole
    does: one NumPy step for all copies), else copies in one process; `async` puts each copy
    in a subprocess (Gymnasium's AsyncVectorEnv, forked), stepped in parallel. Copy i is
    seeded with seed + i either way, so `sync` and `async` play the same episodes unless the
    env has its own vectorised implementation.

    Raises:
        InputError: unknown id, a missing optional dependency, or an unsupported space.
    """
    spec = env_spec(env_id)
    mode = vectorization
    if vectorization == "sync" and spec.vector_entry_point:
        mode = "vector_entry_point"
    try:
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    except gym.error.DependencyNotInstalled as error:
        raise InputError(f"{env_id!r} needs an extra package: {error}", field="env") from None
    autoreset = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if autoreset != gym.vector.AutoresetMode.NEXT_STEP:
        env.close()
        raise InputError(f"{env_id!r} uses autoreset mode {autoreset}; NEXT_STEP is needed")
    try:
        check_spaces(env.single_observation_space, env.single_action_space)
    except InputError:
        env.close()
        raise
    return env


def to_env_actions(actions: np.ndarray, action_space: gym.Space) -> np.ndarray:
    """Maps sampled actions to what the env accepts.

    Discrete: index i → start + i. Box: clipped to [low, high]; the unclipped sample is
    what the log-probability is taken of, so clipping never biases the gradient.

    Args:
        actions: [B] int32 indices or [B, D] float32 samples.
    """
    if isinstance(action_space, gym.spaces.Discrete):
        return actions.astype(action_space.dtype) + action_space.start
    return np.clip(actions, action_space.low, action_space.high).astype(action_space.dtype)
