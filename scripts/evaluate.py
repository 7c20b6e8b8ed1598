"""Evaluate a saved policy: run episodes and print mean ± std, min and max of the returns.

python scripts/evaluate.py --policy=policy.keras --episodes=20 [--greedy]
python scripts/evaluate.py --policy=policy.keras --episodes=3 --video_dir=videos  # MP4s
"""

import _cli  # first: it imports TensorFlow quietly
import numpy as np
from absl import app, flags

from reinforce_tf import evaluate, load_policy
from reinforce_tf.training.evaluate import (
    check_video_dir,
    record_video,
    recorded_env,
    recorded_env_options,
)
from reinforce_tf.training.saving import load_metadata

_POLICY = flags.DEFINE_string("policy", "policy.keras", "The .keras policy file to load.")
_ENV = flags.DEFINE_string(
    "env",
    None,
    "Gymnasium environment id (or module:EnvId). Default: the env the policy was trained on, "
    "made with the env_kwargs and wrapper preset it was trained with.",
)
_EPISODES = flags.DEFINE_integer("episodes", 20, "Episodes to run (> 0).")
_GREEDY = flags.DEFINE_bool(
    "greedy", False, "Take the most probable action (or the mean) instead of sampling."
)
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the envs and action sampling (>= 0).")
_VIDEO_DIR = flags.DEFINE_string(
    "video_dir",
    None,
    "Record every episode as an MP4 in this folder (one env, rgb_array frames; needs "
    "moviepy, and pygame for the classic-control envs). Default: no video.",
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    env_id, returns = _cli.run_reporting_input_errors(_evaluate)
    mode = "greedy" if _GREEDY.value else "sampled"
    print(
        f"{env_id}, {len(returns)} episodes, {mode} actions: return "
        f"{returns.mean():.2f} ± {returns.std():.2f} (min {returns.min():.2f}, "
        f"max {returns.max():.2f})"
    )


def _evaluate() -> tuple[str, np.ndarray]:
    if _SEED.value < 0:
        raise _cli.InputError(f"must be an integer >= 0; got {_SEED.value}", field="seed")
    if _VIDEO_DIR.value:
        check_video_dir(_VIDEO_DIR.value)  # before loading and playing anything
    policy = load_policy(_POLICY.value)
    note = load_metadata(_POLICY.value)
    env_id = _ENV.value or recorded_env(note)
    if not env_id:
        raise _cli.InputError("the policy file does not record its env; pass --env", "env")
    options = {"greedy": _GREEDY.value, "seed": _SEED.value, "trained_on": note}
    if env_id == recorded_env(note):  # the env it was trained on, made as it was then
        options.update(recorded_env_options(note))
    if _VIDEO_DIR.value:
        returns = record_video(policy, env_id, _EPISODES.value, _VIDEO_DIR.value, **options)
        print(f"videos saved in {_VIDEO_DIR.value}")
    else:
        returns = evaluate(policy, env_id, _EPISODES.value, **options)
    return env_id, returns


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
