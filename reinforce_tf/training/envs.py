"""Environments: make the vector env for an id, refusing spaces the policy does not support
(`policy.check_spaces`), and map sampled actions to what the env accepts.

Vector envs use Gymnasium's next-step autoreset: after an episode ends, the sub-env's next
`step` is a reset step (its action ignored, reward 0) that returns the new episode's first
observation.

MuJoCo (4.0.0, and 3.17.0 too) warns at every XML compile of HalfCheetah that the
compiler attribute `settotalmass` of Gymnasium's `half_cheetah.xml` is deprecated: one
stderr line per env copy, each also appended to `MUJOCO_LOG.TXT` in the working folder.
`quiet_mujoco` drops that one warning where MuJoCo raises it (its user warning hook);
every other MuJoCo warning still goes to stderr.
"""

import sys

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


# The deprecation MuJoCo raises for Gymnasium's own half_cheetah.xml (see the module docstring).
MUJOCO_DEPRECATION = "compiler attribute 'settotalmass' is deprecated"


def quiet_mujoco(spec: gym.envs.registration.EnvSpec) -> None:
    """Before making a Gymnasium MuJoCo env: hands MuJoCo's warnings to `mujoco_warning`.

    MuJoCo calls its user warning hook instead of printing and writing MUJOCO_LOG.TXT.
    Other envs do nothing here (MuJoCo is not imported for them).
    """
    if not str(spec.entry_point).startswith("gymnasium.envs.mujoco"):
        return
    import mujoco  # here: only MuJoCo envs need it (and import it anyway)

    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(mujoco_warning)


def mujoco_warning(message: str) -> None:
    """MuJoCo's warning hook: the `settotalmass` deprecation is dropped, any other warning
    is one stderr line, as MuJoCo prints it ("WARNING: ...")."""
    if MUJOCO_DEPRECATION not in message:
        print(f"WARNING: {message}", file=sys.stderr, flush=True)


def make_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """`num_envs` copies of `env_id` stepped as one, in next-step autoreset mode.

    Uses the env's own vectorised implementation when it registers one (CartPole does:
    one NumPy step for all copies), else copies in one process.

    Raises:
        InputError: unknown id, a missing optional dependency, or an unsupported space.
    """
    spec = env_spec(env_id)
    quiet_mujoco(spec)
    mode = "vector_entry_point" if spec.vector_entry_point else "sync"
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


def tanh_half_range(action_space: gym.Space) -> np.ndarray:
    """[D] float32 h = (high − low)/2 of a Box with finite bounds, into which tanh squashes.

    Raises:
        InputError: (field action_squash) not a Box, or a bound that is not finite.
    """
    box = isinstance(action_space, gym.spaces.Box)
    if not (box and np.all(np.isfinite(action_space.low) & np.isfinite(action_space.high))):
        raise InputError(
            f"must be clip for action space {action_space}; tanh squashes into the finite "
            "bounds of a Box",
            field="action_squash",
        )
    return ((action_space.high.astype(np.float64) - action_space.low) / 2).astype(np.float32)


def to_env_actions(
    actions: np.ndarray, action_space: gym.Space, squash: str = "clip"
) -> np.ndarray:
    """Maps sampled actions to what the env accepts.

    Discrete: index i → start + i. Box, `squash="clip"`: u clipped to [low, high]; `"tanh"`:
    a = c + h ⊙ tanh(u), c = (high + low)/2, h = (high − low)/2 (then clipped, for the last
    bit of rounding). Either way the sample u is what the log-probability is taken of, so
    clipping never biases the gradient and the squash's Jacobian is exact
    (`distributions.TanhDiagGaussian`).

    Args:
        actions: [B] int32 indices or [B, D] float32 samples u.
        squash: "clip" or "tanh" (Box only; ignored for Discrete).
    """
    if isinstance(action_space, gym.spaces.Discrete):
        return actions.astype(action_space.dtype) + action_space.start
    low, high = action_space.low, action_space.high
    if squash == "tanh":
        center = (high.astype(np.float64) + low) / 2
        actions = center + tanh_half_range(action_space) * np.tanh(actions.astype(np.float64))
    return np.clip(actions, low, high).astype(action_space.dtype)
