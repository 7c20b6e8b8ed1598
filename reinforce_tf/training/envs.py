"""Environments: the one place an env id, its `make` keyword arguments and its wrapper preset
become an env, for training, evaluation and video alike; and sampled actions → env actions.

An id is a registered Gymnasium id ("CartPole-v1", "ALE/Pong-v5") or Gymnasium's
"module:EnvId" form, which imports `module` (whose import registers EnvId) first. Ids of two
namespaces register only when their package is imported, so they work without the module
part: "ALE/..." (ale-py) and "MinAtar/..." (minatar, whose `minatar.gym.register_envs`
registers them). A file never chooses code to import: the scripts pass a "module:EnvId"
that a policy's note or a run's config.json records through `refuse_file_import` unless the
user named it with --env.

Presets are lists of Gymnasium's own wrappers, applied to each single env:
- "none": the env as registered;
- "atari": `AtariPreprocessing` (noop starts, frame skip 4, 84×84 grayscale; the ALE env
  made with frameskip=1 as that wrapper requires), then `FrameStackObservation` of the last
  4 frames, with the stack axis moved last: uint8 [84, 84, 4], channels-last like any image;
- "flatten": `FlattenObservation`, which turns Dict, Tuple, Discrete or image observations
  into one flat vector.

Vector envs use Gymnasium's next-step autoreset: after an episode ends, the sub-env's next
`step` is a reset step (its action ignored, reward 0) that returns the new episode's first
observation.

MuJoCo (4.0.0, and 3.17.0 too) warns at every XML compile of HalfCheetah that the
compiler attribute `settotalmass` of Gymnasium's `half_cheetah.xml` is deprecated: one
stderr line per env copy, each also appended to `MUJOCO_LOG.TXT` in the working folder.
`quiet_mujoco` drops that one warning where MuJoCo raises it (its user warning hook);
every other MuJoCo warning still goes to stderr.
"""

import importlib
import math
import shlex
import sys
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from reinforce_tf import extras
from reinforce_tf.config import PRESETS
from reinforce_tf.errors import InputError, error_reason
from reinforce_tf.exact import short_corridor  # noqa: F401 (registers its id for --env)
from reinforce_tf.policy import check_spaces
from reinforce_tf.training.saving import printable

# Frames the atari preset skips per step and stacks per observation (Machado et al. 2018).
ATARI_FRAME_SKIP = 4
ATARI_STACK = 4


def _prepare_ale(ale_py, name: str) -> None:
    """ale-py registers its ids on import; keep its start-up banner off stderr (its warnings
    and errors still print), so bad input stays one line."""
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)


def _prepare_minatar(minatar_gym, name: str) -> None:
    """minatar registers its ids only through `register_envs` (an entry point of Gym's old
    plugin system, which Gymnasium 1.x no longer loads)."""
    if name not in gym.registry:
        minatar_gym.register_envs()


# Namespaces whose ids need a package: (module to import, package, its extra, what to do then).
_NAMESPACE_PACKAGES = {
    "ALE": ("ale_py", "ale-py", "atari", _prepare_ale),
    "MinAtar": ("minatar.gym", "MinAtar", "minatar", _prepare_minatar),
}


def split_env_id(env_id: str) -> tuple[str | None, str]:
    """("module", "EnvId") for "module:EnvId"; (None, env_id) for a plain id."""
    module, colon, name = env_id.rpartition(":")
    return (module, name) if colon else (None, env_id)


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of `env_id`, importing the module of a "module:EnvId" id (or the
    package of an ALE or MinAtar id) first, as `gymnasium.make` does.

    Raises:
        InputError: the module does not import, or the id is not registered.
    """
    module, name = split_env_id(env_id)
    if module is not None:
        _import(module, env_id)
    _prepare_namespace(name)
    try:
        return gym.spec(name)
    except gym.error.Error as error:
        if module is not None:
            raise InputError(
                f"importing {module!r} registered no environment {name!r} ({error}); check the "
                "id that module passes to gymnasium.register",
                field="env",
            ) from None
        raise InputError(
            f"unknown environment id {env_id!r} ({error}); use a registered Gymnasium id "
            "such as CartPole-v1, Acrobot-v1 or Pendulum-v1, or module:EnvId to import the "
            "module that registers yours",
            field="env",
        ) from None


def refuse_file_import(env_id: str, source: str) -> None:
    """Refuses an env id read from a file (`source`, such as "the policy file") that has a
    module part: importing it would run code the file chose. The user allows it by naming
    the same id on their own command line (--env), which the message spells out.

    Raises:
        InputError: (field env) `env_id` is "module:EnvId"; both are quoted printable.
    """
    module, _ = split_env_id(env_id)
    if module is not None:
        raise InputError(
            f"{source} records the env {printable(repr(env_id))}, which would import the "
            f"module {printable(repr(module))}; a file never chooses code to import: if you "
            f"trust that module, add --env={printable(shlex.quote(env_id))}",
            field="env",
        )


def _import(module: str, env_id: str) -> None:
    """Imports `module`; any failure (missing, a syntax error, an exception it raises, a
    `sys.exit`) is a one-line `InputError`. A KeyboardInterrupt (Ctrl-C) goes on as the
    interruption it is."""
    try:
        importlib.import_module(module)
    except SystemExit as error:  # not an Exception: it would end the script, status and all
        raise InputError(
            f"importing module {module!r} of {env_id!r} called sys.exit"
            f"({printable(repr(error.code), 80)}); an env module must only define and "
            "register its envs",
            field="env",
        ) from None
    except Exception as error:  # noqa: BLE001 (a user's module may raise anything)
        raise InputError(
            f"cannot import module {module!r} of {env_id!r} ({type(error).__name__}: "
            f"{error_reason(error)}); it must be importable (on PYTHONPATH) and register the id",
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
    try:
        import mujoco  # here: only MuJoCo envs need it (and import it anyway)
    except ImportError:
        raise extras.missing(f"{spec.id!r} needs MuJoCo", "mujoco", field="env") from None

    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(mujoco_warning)


def mujoco_warning(message: str) -> None:
    """MuJoCo's warning hook: the `settotalmass` deprecation is dropped, any other warning
    is one stderr line, as MuJoCo prints it ("WARNING: ...")."""
    if MUJOCO_DEPRECATION not in message:
        print(f"WARNING: {message}", file=sys.stderr, flush=True)


def _prepare_namespace(name: str) -> None:
    """Imports and prepares the package of `name`'s namespace (ALE, MinAtar), if it has one.

    Raises:
        InputError: the package is not installed.
    """
    namespace = name.partition("/")[0] if "/" in name else None
    if namespace not in _NAMESPACE_PACKAGES:
        return
    module, package, extra, prepare = _NAMESPACE_PACKAGES[namespace]
    try:
        imported = importlib.import_module(module)
    except ImportError:
        raise extras.missing(f"{name!r} needs {package}", extra, field="env") from None
    prepare(imported, name)


def resolved_preset(env_id: str, preset: str | None) -> str:
    """`preset`, or when None the default: "atari" for ALE ids, else "none".

    Raises:
        InputError: a preset that is not one of PRESETS.
    """
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(f"must be one of {', '.join(PRESETS)}; got {preset!r}", field="preset")
        return preset
    return "atari" if split_env_id(env_id)[1].startswith("ALE/") else "none"


def _wrappers(preset: str) -> list[Callable[[gym.Env], gym.Env]]:
    """The preset's wrappers, innermost first."""
    if preset == "atari":
        return [
            lambda env: gym.wrappers.AtariPreprocessing(env, frame_skip=ATARI_FRAME_SKIP),
            lambda env: gym.wrappers.FrameStackObservation(env, ATARI_STACK),
            _stack_axis_last,
        ]
    if preset == "flatten":
        return [gym.wrappers.FlattenObservation]
    return []


def _stack_axis_last(env: gym.Env) -> gym.Env:
    """[K, H, W] frame stacks as [H, W, K] images (channels-last, as the conv torso reads)."""
    space = env.observation_space
    stacked = gym.spaces.Box(
        np.moveaxis(space.low, 0, -1), np.moveaxis(space.high, 0, -1), dtype=space.dtype
    )
    return gym.wrappers.TransformObservation(env, _move_first_axis_last, stacked)


def _move_first_axis_last(observation: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(observation, 0, -1))


def _make_kwargs(preset: str, env_kwargs: dict | None) -> dict:
    """`gymnasium.make`'s keyword arguments: the preset's, then the user's over them."""
    base = {"frameskip": 1} if preset == "atari" else {}  # AtariPreprocessing skips frames
    return {**base, **(env_kwargs or {})}


def _time_limit(spec, preset: str, kwargs: dict) -> int | None:
    """The most steps an episode can take: `max_episode_steps` given or registered, else for
    the atari preset the ALE's own frame limit over the frame skip; None if unbounded."""
    limit = kwargs.get("max_episode_steps", spec.max_episode_steps)
    frames = {**spec.kwargs, **kwargs}.get("max_num_frames_per_episode")
    if limit is None and preset == "atari" and frames:
        limit = math.ceil(frames / ATARI_FRAME_SKIP)
    return limit if isinstance(limit, int) and limit > 0 else None


def make_env(
    env_id: str,
    env_kwargs: dict | None = None,
    preset: str | None = None,
    render_mode: str | None = None,
) -> gym.Env:
    """One env of `env_id`, made with `env_kwargs` and wrapped by `preset` (see the module
    docstring); the same env each sub-env of `make_vector_env` is.

    Raises:
        InputError: as `env_spec`, `make` rejecting the kwargs, a missing optional
            dependency, or an unsupported space.
    """
    preset = resolved_preset(env_id, preset)
    spec = env_spec(env_id)
    quiet_mujoco(spec)
    kwargs = _make_kwargs(preset, env_kwargs)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode

    def make():
        env = gym.make(spec, **kwargs)
        for wrapper in _wrappers(preset):
            env = wrapper(env)
        return env

    env = _made(env_id, env_kwargs, preset, make)
    _check(env, env.observation_space, env.action_space)
    return env


def make_vector_env(
    env_id: str,
    num_envs: int,
    env_kwargs: dict | None = None,
    preset: str | None = None,
    vectorization: str = "sync",
) -> gym.vector.VectorEnv:
    """`num_envs` copies of `env_id` stepped as one, in next-step autoreset mode.

    `sync` uses the env's own vectorised implementation when it registers one and no kwargs
    or wrappers are asked for (CartPole does: one NumPy step for all copies), else copies in
    one process, each made and wrapped as `make_env` makes it; `async` puts each copy in a
    subprocess (Gymnasium's AsyncVectorEnv, forked), stepped in parallel. Copy i is seeded
    with seed + i either way, so `sync` and `async` play the same episodes unless the env
    has its own vectorised implementation. The vector env's
    `spec.max_episode_steps` is the time limit in force (`max_episode_steps` in the kwargs,
    or the ALE's frame limit under the atari preset), which bounds the rollout buffers.

    Raises:
        InputError: as `make_env`, or an env that does not autoreset on the next step.
    """
    preset = resolved_preset(env_id, preset)
    spec = env_spec(env_id)
    quiet_mujoco(spec)
    kwargs = _make_kwargs(preset, env_kwargs)
    wrappers = _wrappers(preset)
    own = spec.vector_entry_point and not kwargs and not wrappers
    mode = "vector_entry_point" if own and vectorization == "sync" else vectorization
    env = _made(
        env_id,
        env_kwargs,
        preset,
        lambda: gym.make_vec(
            spec, num_envs=num_envs, vectorization_mode=mode, wrappers=wrappers, **kwargs
        ),
    )
    autoreset = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if autoreset != gym.vector.AutoresetMode.NEXT_STEP:
        env.close()
        raise InputError(f"{env_id!r} uses autoreset mode {autoreset}; NEXT_STEP is needed")
    _check(env, env.single_observation_space, env.single_action_space)
    if env.spec is not None:
        env.spec.max_episode_steps = _time_limit(spec, preset, kwargs)
    return env


def _made(env_id: str, env_kwargs: dict | None, preset: str, make: Callable):
    """`make()`, with the ways a user's id, kwargs or preset make it fail as `InputError`."""
    try:
        return make()
    except gym.error.DependencyNotInstalled as error:
        raise InputError(f"{env_id!r} needs an extra package: {error}", field="env") from None
    except (Exception, SystemExit) as error:  # noqa: BLE001 (a constructor may raise or exit)
        field = "env_kwargs" if env_kwargs else "preset" if preset != "none" else "env"
        with_what = f" with env_kwargs {env_kwargs}" if env_kwargs else ""
        raise InputError(
            f"making {env_id!r}{with_what} (preset {preset}) failed: {type(error).__name__}: "
            f"{error_reason(error)}",
            field=field,
        ) from None


def _check(env, observation_space: gym.Space, action_space: gym.Space) -> None:
    """`check_spaces`, closing `env` when it refuses."""
    try:
        check_spaces(observation_space, action_space)
    except InputError:
        env.close()
        raise


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
    """Maps sampled actions to what the env accepts (`env_action_map`, for one call)."""
    return env_action_map(action_space, squash)(actions)


def env_action_map(action_space: gym.Space, squash: str = "clip") -> Callable:
    """The map from sampled actions to what the env accepts, its constants computed once.

    Discrete: index i → start + i. Box, `squash="clip"`: u clipped to [low, high]; `"tanh"`:
    a = c + h ⊙ tanh(u) in float32, c = (high + low)/2, h = (high − low)/2 (then clipped,
    for the last bit of rounding). Either way the sample u is what the log-probability is
    taken of, so clipping never biases the gradient and the squash's Jacobian is exact
    (`distributions.TanhDiagGaussian`).

    Args:
        action_space: the env's single action space.
        squash: "clip" or "tanh" (Box only; ignored for Discrete).

    Returns:
        A function of [B] int32 indices or [B, D] float32 samples u.
    """
    if isinstance(action_space, gym.spaces.Discrete):
        dtype, start = action_space.dtype, action_space.start
        return lambda actions: actions.astype(dtype) + start
    low, high, dtype = action_space.low, action_space.high, action_space.dtype
    if squash != "tanh":
        return lambda actions: np.clip(actions, low, high).astype(dtype)
    center = ((high.astype(np.float64) + low) / 2).astype(np.float32)
    half_range = tanh_half_range(action_space)

    def squash(actions: np.ndarray) -> np.ndarray:
        # In float32 and in place: this runs once per vector step.
        squashed = np.tanh(actions, dtype=np.float32)  # [B, D]
        squashed *= half_range
        squashed += center
        return np.clip(squashed, low, high, out=squashed).astype(dtype, copy=False)

    return squash
