"""Run a policy (sampled or greedy) for whole episodes and report the returns; record video.

The policy is a Keras model (a `.keras` file) or an export read by its own runtime
(`exported.ExportedPolicy`: a SavedModel folder, a `.tflite` or an `.onnx` file).
"""

import os
import re
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np

from reinforce_tf.config import ACTION_SQUASHES, PRESETS
from reinforce_tf.errors import InputError
from reinforce_tf.policy import distribution_model, make_actor
from reinforce_tf.training.acting import greedy_actor
from reinforce_tf.training.envs import env_action_map, make_env, make_vector_env
from reinforce_tf.training.exported import ExportedPolicy
from reinforce_tf.training.rollout import RolloutCollector
from reinforce_tf.training.saving import nearest_existing, printable

# What a Gymnasium id can hold: [module:][namespace/]name[-vN], each part of word characters,
# dots and dashes (gymnasium.envs.registration's ENV_ID_RE, loosened), at most 200 of them.
ENV_ID = re.compile(r"[\w.:/-]{1,200}", re.ASCII)

# Envs stepped in parallel while evaluating; each takes the next episode as it frees up.
EVAL_NUM_ENVS = 16


def evaluate(
    policy: keras.Model | ExportedPolicy,
    env_id: str,
    episodes: int,
    *,
    greedy: bool = False,
    seed: int = 0,
    trained_on: dict | None = None,
    env_kwargs: dict | None = None,
    preset: str | None = None,
    action_squash: str = "clip",
) -> np.ndarray:
    """Plays `episodes` whole episodes of `env_id` with `policy`.

    Args:
        greedy: act by the mode (argmax / mean) instead of sampling.
        action_squash: how Box actions reach the env, as the policy was trained
            ("clip" or "tanh"; `envs.to_env_actions`): greedy tanh acts by squash(mean).
        trained_on: the policy file's note (`saving.load_metadata`), to name the spaces the
            policy was trained on when they do not fit.
        env_kwargs, preset: as the policy was trained with (`envs.make_vector_env`); the
            note records both.

    Returns:
        [episodes] float64 undiscounted returns.

    Raises:
        InputError: a bad env id, a non-positive count, or a policy whose input or output
            does not fit the env's spaces.
    """
    _check_episodes(episodes)
    num_envs = min(episodes, EVAL_NUM_ENVS)
    env = make_vector_env(env_id, num_envs, env_kwargs, preset)
    try:
        check_fits(policy, env.single_observation_space, env.single_action_space, trained_on)
        act = _actor(policy, env.single_action_space, greedy, seed)
        collector = RolloutCollector(env, act, seed, _env_squash(policy, action_squash))
        return collector.collect(episodes).episode_returns
    finally:
        env.close()


def record_video(
    policy: keras.Model | ExportedPolicy,
    env_id: str,
    episodes: int,
    video_dir: str | os.PathLike,
    *,
    greedy: bool = False,
    seed: int = 0,
    trained_on: dict | None = None,
    env_kwargs: dict | None = None,
    preset: str | None = None,
    action_squash: str = "clip",
) -> np.ndarray:
    """Plays `episodes` episodes in one env and saves each as an MP4 in `video_dir`.

    The env is `envs.make_env`'s, wrapped as in training; frames come from its
    `render_mode="rgb_array"` (the full-size screen, not the policy's preprocessed input).
    Gymnasium's `RecordVideo` writes them with moviepy (an extra dependency, only needed
    here). Episode i resets with seed + i.

    Returns:
        [episodes] float64 undiscounted returns.

    Raises:
        InputError: moviepy or the env's renderer is missing, `video_dir` could not be
            written (checked before playing), or as `evaluate`.
    """
    _check_episodes(episodes)
    make_env(env_id, env_kwargs, preset).close()  # a bad id, kwargs or space: before all else
    check_video_dir(video_dir)
    try:
        import moviepy  # noqa: F401 (RecordVideo imports it lazily, after playing)
    except ImportError:
        raise InputError(
            "recording needs moviepy, which is not installed: pip install moviepy",
            field="video_dir",
        ) from None
    # Render off-screen without a display or a sound card, and keep pygame's banner quiet.
    for name, value in (
        ("SDL_VIDEODRIVER", "dummy"),
        ("SDL_AUDIODRIVER", "dummy"),
        ("PYGAME_HIDE_SUPPORT_PROMPT", "1"),
    ):
        os.environ.setdefault(name, value)
    env = make_env(env_id, env_kwargs, preset, render_mode="rgb_array")
    try:
        check_fits(policy, env.observation_space, env.action_space, trained_on)
        env = gym.wrappers.RecordVideo(
            env,
            str(Path(video_dir)),
            episode_trigger=lambda _: True,
            name_prefix=re.sub(r"[^A-Za-z0-9.-]", "_", env_id),
            disable_logger=True,
        )
        act = _actor(policy, env.action_space, greedy, seed)
        squash = _env_squash(policy, action_squash)
        return np.array([_play(env, act, seed + episode, squash) for episode in range(episodes)])
    except gym.error.DependencyNotInstalled as error:
        raise InputError(
            f"rendering {env_id!r} needs an extra package: {error}", field="video_dir"
        ) from None
    finally:
        env.close()


def check_video_dir(video_dir: str | os.PathLike) -> None:
    """Fails before playing if `video_dir` is not, and cannot be made, a writable folder.

    Nothing is created here: `RecordVideo` makes the missing folders when it starts.

    Raises:
        InputError: naming `video_dir` and what is in the way.
    """
    path = Path(video_dir)
    existing = nearest_existing(path)
    if not existing.is_dir():
        kind = "a file" if existing.is_file() else "not a folder"
        made = "" if existing == path else f"; cannot make the folder {str(path)!r} in it"
        raise InputError(f"{str(existing)!r} is {kind}{made}", field="video_dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        made = "" if existing == path else f"; cannot make the folder {str(path)!r} in it"
        raise InputError(f"folder {str(existing)!r} is not writable{made}", field="video_dir")


def recorded_env(note: dict) -> str | None:
    """The env id a policy file's note records; None when it records none.

    Raises:
        InputError: the note's env is not text that could be a Gymnasium id (such as
            "CartPole-v1" or "ale_py:ALE/Pong-v5"); it is quoted printable, never raw.
    """
    env = note.get("env")
    if env is None or env == "":
        return None
    if not (isinstance(env, str) and ENV_ID.fullmatch(env)):
        raise InputError(
            f"the policy file records the env {printable(repr(env), 80)}, which is not a "
            "Gymnasium id; pass --env",
            field="policy",
        )
    return env


def recorded_env_options(note: dict) -> dict:
    """The env kwargs and preset a policy file's note records, as `evaluate`'s keyword
    arguments ({} for a note from before they were recorded).

    Raises:
        InputError: the note's kwargs are not a JSON object, or its preset is unknown; quoted
            printable, never raw.
    """
    options = {}
    kwargs, preset = note.get("env_kwargs"), note.get("preset")
    if kwargs is not None:
        if not (isinstance(kwargs, dict) and all(isinstance(key, str) for key in kwargs)):
            raise InputError(
                f"the policy file records env_kwargs {printable(repr(kwargs), 80)}, which is "
                "not a JSON object; pass --env",
                field="policy",
            )
        options["env_kwargs"] = kwargs or None
    if preset is not None:
        if preset not in PRESETS:
            raise InputError(
                f"the policy file records the preset {printable(repr(preset), 80)}, which is "
                f"not one of {', '.join(PRESETS)}; pass --env",
                field="policy",
            )
        options["preset"] = preset
    return options


def _actor(policy: keras.Model | ExportedPolicy, action_space: gym.Space, greedy: bool, seed: int):
    """observations [B, *O] → actions [B] or [B, D], before `to_env_actions`."""
    if isinstance(policy, ExportedPolicy):
        return policy.actor(action_space, greedy=greedy, seed=seed)
    # Greedy actions have no randomness: NumPy gives the same mode, ~20× faster for an MLP.
    return greedy_actor(policy) if greedy else make_actor(policy, seed=seed)


def recorded_squash(note: dict) -> str:
    """How the policy file's note says Box actions reach the env: "clip" (also for files
    that record none, written before tanh squashing existed) or "tanh".

    Raises:
        InputError: the note records something else (quoted printable).
    """
    squash = note.get("action_squash", "clip")
    if squash not in ACTION_SQUASHES:
        raise InputError(
            f"the policy file records the action squash {printable(repr(squash), 80)}, not one "
            f"of {', '.join(ACTION_SQUASHES)}",
            field="policy",
        )
    return squash


def _env_squash(policy: keras.Model | ExportedPolicy, action_squash: str) -> str:
    """The squash `to_env_actions` applies to `_actor`'s actions: `action_squash`, except
    "clip" for a greedy export, whose action is already the env's (squashed when trained
    with tanh: `export.ServingModel`), so clipping leaves it as it is."""
    if isinstance(policy, ExportedPolicy) and policy.kind == "action":
        return "clip"
    return action_squash


def _play(env: gym.Env, act, seed: int, squash: str) -> float:
    """One episode in a single env; its undiscounted return."""
    to_env = env_action_map(env.action_space, squash)
    observation, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action = to_env(act(observation[None]))[0]  # a batch of 1
        observation, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total


def check_fits(
    policy: keras.Model | ExportedPolicy,
    observation_space: gym.Space,
    action_space: gym.Space,
    trained_on: dict | None = None,
) -> None:
    """Raises `InputError` naming both sides when the policy was made for other spaces.

    Args:
        policy: a Keras policy, or an export (whose sizes its runtime reports; a greedy
            export of a Discrete policy does not tell its number of actions).
        trained_on: the policy file's note; when it records the spaces, the message names
            them, else the sizes read from the model.
    """
    if isinstance(policy, ExportedPolicy):
        observation_shape = policy.observation_shape
        discrete, action_size = policy.discrete, policy.action_size
    else:
        parameters = distribution_model(policy).output  # logits, or {"mean", "log_std"}; checks
        observation_shape = tuple(policy.input_shape[1:])
        discrete = not isinstance(parameters, dict)
        action_size = (parameters if discrete else parameters["mean"]).shape[-1]
    env_discrete = isinstance(action_space, gym.spaces.Discrete)
    expected_actions = int(action_space.n) if env_discrete else action_space.shape[0]
    if (
        observation_shape == tuple(observation_space.shape)
        and action_size in (None, expected_actions)
        and discrete == env_discrete
    ):
        return
    trained_on = trained_on or {}
    if "observation_space" in trained_on and "action_space" in trained_on:
        # The note is text from a file: quote it printable and short, never raw.
        env, observations, actions = (
            printable(trained_on.get(key, "an env"))
            for key in ("env", "observation_space", "action_space")
        )
        made = (
            f"was trained on {env} with observation space {observations} and action space {actions}"
        )
    else:
        kind = "discrete" if discrete else "continuous"
        size = (
            f"size {observation_shape[0]}"
            if len(observation_shape) == 1
            else f"shape {observation_shape}"
        )
        outputs = f"{action_size} action outputs ({kind})" if action_size else f"{kind} actions"
        made = f"was made for observations of {size} and {outputs}"
    raise InputError(
        f"{made}; the env has observation space {observation_space} and action space "
        f"{action_space}",
        field="policy",
    )


def _check_episodes(episodes: int) -> None:
    if episodes <= 0:
        raise InputError(f"must be an integer > 0; got {episodes!r}", field="episodes")
