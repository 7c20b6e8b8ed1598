"""Run a policy (sampled or greedy) for whole episodes and report the returns; record video.

The policy is a Keras model (a `.keras` file) or an export read by its own runtime
(`exported.ExportedPolicy`: a SavedModel folder, a `.tflite` or an `.onnx` file).
"""

import glob
import math
import os
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import keras
import numpy as np

from reinforce_tf import extras
from reinforce_tf.config import ACTION_SQUASHES, EVAL_MODES, PRESETS
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
# Sampled and greedy returns of one policy "differ a lot" (`preferred_mode`) when their means
# differ by more than this fraction of the larger magnitude, and by more than this many
# standard errors of the difference.
MODES_DIFFER_FRACTION = 0.1
MODES_DIFFER_ERRORS = 2.0


class Play(NamedTuple):
    """How a policy plays: the keyword arguments of `evaluate` and `record_video`.

    Attributes:
        greedy: act by the mode (argmax / mean) instead of sampling.
        seed: seeds the envs (episode i of env b: see `RolloutCollector`) and the sampling.
        trained_on: the policy file's note (`saving.load_metadata`), to name the spaces the
            policy was trained on when they do not fit.
        env_kwargs, preset: as the policy was trained with (`envs.make_vector_env`); the
            note records both.
        action_squash: how Box actions reach the env, as the policy was trained ("clip" or
            "tanh"; `envs.to_env_actions`): greedy tanh acts by squash(mean).
    """

    greedy: bool = False
    seed: int = 0
    trained_on: dict | None = None
    env_kwargs: dict | None = None
    preset: str | None = None
    action_squash: str = "clip"


def evaluate(
    policy: keras.Model | ExportedPolicy, env_id: str, episodes: int, **play
) -> np.ndarray:
    """Plays `episodes` whole episodes of `env_id` with `policy`, as `play` says (the
    fields of `Play`: greedy, seed, trained_on, env_kwargs, preset, action_squash).

    Returns:
        [episodes] float64 undiscounted returns.

    Raises:
        InputError: a bad env id, a non-positive count, or a policy whose input or output
            does not fit the env's spaces.
    """
    play = Play(**play)
    _check_episodes(episodes)
    num_envs = min(episodes, EVAL_NUM_ENVS)
    env = make_vector_env(env_id, num_envs, play.env_kwargs, play.preset)
    try:
        check_fits(policy, env.single_observation_space, env.single_action_space, play.trained_on)
        act = _actor(policy, env.single_action_space, play.greedy, play.seed)
        squash = _env_squash(policy, play.action_squash)
        return RolloutCollector(env, act, play.seed, squash).collect(episodes).episode_returns
    finally:
        env.close()


def evaluate_modes(
    policy: keras.Model | ExportedPolicy,
    env_id: str,
    episodes: int,
    modes: tuple[str, ...] = EVAL_MODES,
    **options,
) -> dict[str, np.ndarray]:
    """`evaluate` once per mode: {"sampled": [episodes], "greedy": [episodes]} returns.

    Both modes play the same start states (the same env seeds). `options` are `evaluate`'s
    keyword arguments but `greedy`.
    """
    return {
        mode: evaluate(policy, env_id, episodes, greedy=mode == "greedy", **options)
        for mode in modes
    }


def preferred_mode(sampled: np.ndarray, greedy: np.ndarray) -> str | None:
    """The mode to act by, when one policy's sampled and greedy returns differ a lot.

    A lot: |mean_s − mean_g| exceeds both MODES_DIFFER_FRACTION of max(|mean_s|, |mean_g|)
    and MODES_DIFFER_ERRORS standard errors of the difference, √(s_s²/n_s + s_g²/n_g)
    (s the population std of each mode's returns, n its episodes).

    Returns:
        "sampled" or "greedy", the mode with the higher mean; None when they are close.
    """
    means = float(np.mean(sampled)), float(np.mean(greedy))
    gap = abs(means[0] - means[1])
    error = math.sqrt(np.var(sampled) / len(sampled) + np.var(greedy) / len(greedy))
    if gap > MODES_DIFFER_FRACTION * max(map(abs, means)) and gap > MODES_DIFFER_ERRORS * error:
        return EVAL_MODES[int(means[1] > means[0])]
    return None


def describe_returns(what: str, mode: str, returns: np.ndarray) -> str:
    """One line: "<what>, 20 episodes, sampled actions: return 9.50 ± 0.50 (min 9.00, max
    10.00)", `what` such as the env id."""
    return (
        f"{what}, {len(returns)} episodes, {mode} actions: return {np.mean(returns):.2f} ± "
        f"{np.std(returns):.2f} (min {np.min(returns):.2f}, max {np.max(returns):.2f})"
    )


def mode_advice(returns: dict[str, np.ndarray]) -> str | None:
    """A line telling which mode to act by when `preferred_mode` picks one; else None.

    Args:
        returns: {"sampled": [n], "greedy": [m]} returns of one policy.
    """
    if set(returns) != set(EVAL_MODES):
        return None
    better = preferred_mode(returns["sampled"], returns["greedy"])
    if better is None:
        return None
    worse = EVAL_MODES[better == "sampled"]
    how = (
        "draw its actions from the distribution it outputs, as REINFORCE trained it"
        if better == "sampled"
        else "take its most probable action (the mean for a Box)"
    )
    return (
        f"this policy scores {np.mean(returns[better]):.2f} with {better} actions against "
        f"{np.mean(returns[worse]):.2f} with {worse} ones: {how}"
    )


def evaluation_note(returns: dict[str, np.ndarray]) -> dict:
    """What a policy file's note records of an evaluation by mode: {"episodes": n, mode:
    {"mean", "std"} for each mode, "preferred_mode": "sampled", "greedy" or None}."""
    note: dict = {"episodes": len(next(iter(returns.values())))}
    for mode, values in returns.items():
        note[mode] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    if set(returns) == set(EVAL_MODES):
        note["preferred_mode"] = preferred_mode(returns["sampled"], returns["greedy"])
    return note


def record_video(
    policy: keras.Model | ExportedPolicy,
    env_id: str,
    episodes: int,
    video_dir: str | os.PathLike,
    **play,
) -> np.ndarray:
    """Plays `episodes` episodes in one env, as `play` says (`Play`'s fields, as for
    `evaluate`), and saves each as an MP4 in `video_dir`.

    The env is `envs.make_env`'s, wrapped as in training; frames come from its
    `render_mode="rgb_array"` (the full-size screen, not the policy's preprocessed input).
    Gymnasium's `RecordVideo` writes them with moviepy (an extra dependency, only needed
    here), as `<env>-<sampled or greedy>-episode-<i>.mp4`. Episode i resets with seed + i.

    Returns:
        [episodes] float64 undiscounted returns.

    Raises:
        InputError: moviepy or the env's renderer is missing, `video_dir` could not be
            written (checked before playing), or as `evaluate`.
    """
    play = Play(**play)
    _check_episodes(episodes)
    # A bad id, kwargs or space: before all else.
    make_env(env_id, play.env_kwargs, play.preset).close()
    check_video_dir(video_dir)
    try:
        import moviepy  # noqa: F401 (RecordVideo imports it lazily, after playing)
    except ImportError:
        raise extras.missing("recording needs moviepy", "video", field="video_dir") from None
    # Render off-screen without a display or a sound card, and keep pygame's banner quiet.
    for name, value in (
        ("SDL_VIDEODRIVER", "dummy"),
        ("SDL_AUDIODRIVER", "dummy"),
        ("PYGAME_HIDE_SUPPORT_PROMPT", "1"),
    ):
        os.environ.setdefault(name, value)
    env = make_env(env_id, play.env_kwargs, play.preset, render_mode="rgb_array")
    try:
        check_fits(policy, env.observation_space, env.action_space, play.trained_on)
        mode = "-greedy" if play.greedy else "-sampled"
        prefix = re.sub(r"[^A-Za-z0-9.-]", "_", env_id) + mode
        with warnings.catch_warnings():
            if not any(Path(video_dir).glob(f"{glob.escape(prefix)}-episode-*")):
                # RecordVideo warns of "overwriting" whenever the folder exists, though it
                # replaces only files of its own names: here there are none.
                warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
            env = gym.wrappers.RecordVideo(
                env,
                str(Path(video_dir)),
                episode_trigger=lambda _: True,
                name_prefix=prefix,
                disable_logger=True,
            )
        act = _actor(policy, env.action_space, play.greedy, play.seed)
        squash = _env_squash(policy, play.action_squash)
        return np.array([_play(env, act, play.seed + i, squash) for i in range(episodes)])
    except gym.error.DependencyNotInstalled as error:
        if "pygame" in str(error):  # Gymnasium's classic-control renderer
            raise extras.missing(
                f"rendering {env_id!r} needs pygame", "video", "video_dir"
            ) from None
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
