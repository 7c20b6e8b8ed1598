"""Evaluate a saved policy: run episodes with sampled actions and with greedy ones, and print
mean ± std, min and max of each mode's returns (and which mode to use when they differ a lot).

python scripts/evaluate.py --policy=policy.keras --episodes=20 [--mode=sampled|greedy]
python scripts/evaluate.py --policy=policy.keras --episodes=3 --video_dir=videos  # MP4s
python scripts/evaluate.py --policy=policy.onnx   # an export, in its own runtime
"""

from reinforce_tf.cli import common  # first: it imports TensorFlow quietly

# isort: split
import numpy as np
from absl import app, flags

from reinforce_tf.config import EVAL_MODES
from reinforce_tf.training.envs import refuse_file_import
from reinforce_tf.training.evaluate import (
    check_video_dir,
    describe_returns,
    evaluate_modes,
    mode_advice,
    record_video,
    recorded_env,
    recorded_env_options,
    recorded_squash,
)
from reinforce_tf.training.exported import load_any_policy

_POLICY = flags.DEFINE_string(
    "policy",
    "policy.keras",
    "The policy to play: a .keras file, or an export of one (scripts/export.py), told by "
    "its path: a SavedModel folder, a .tflite or an .onnx file, run by its own runtime.",
)
_ENV = flags.DEFINE_string(
    "env",
    None,
    "Gymnasium environment id (or module:EnvId). Default: the env the policy was trained on, "
    "made with the env_kwargs and wrapper preset it was trained with; when that id is "
    "module:EnvId, give it here to import the module (a file never chooses code to import).",
)
_EPISODES = flags.DEFINE_integer("episodes", 20, "Episodes to run (> 0).")
_MODE = flags.DEFINE_enum(
    "mode",
    "both",
    ["both", *EVAL_MODES],
    "How the policy acts: `sampled` (actions drawn from its distribution, as REINFORCE trained "
    "it), `greedy` (the most probable action, or the mean), or `both`, one after the other on "
    "the same start states. A greedy export can only act greedily.",
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
        common.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    env_id, returns = common.run_reporting_input_errors(_evaluate)
    for mode, values in returns.items():
        print(describe_returns(env_id, mode, values))
    advice = mode_advice(returns)
    if advice:
        print(advice)


def _evaluate() -> tuple[str, dict[str, np.ndarray]]:
    if _SEED.value < 0:
        raise common.InputError(f"must be an integer >= 0; got {_SEED.value}", field="seed")
    if _VIDEO_DIR.value:
        check_video_dir(_VIDEO_DIR.value)  # before loading and playing anything
    with common.stderr_silenced():  # LiteRT prints a line as it loads
        policy, note = load_any_policy(_POLICY.value)
    env_id = _ENV.value or recorded_env(note)
    if not env_id:
        raise common.InputError("the policy file does not record its env; pass --env", "env")
    if not _ENV.value:
        refuse_file_import(env_id, "the policy file")
    modes = EVAL_MODES if _MODE.value == "both" else (_MODE.value,)
    if _MODE.value == "both" and getattr(policy, "kind", None) == "action":
        print(f"{_POLICY.value} is a greedy export (it outputs the action): greedy only")
        modes = ("greedy",)
    options = {
        "seed": _SEED.value,
        "trained_on": note,
        "action_squash": recorded_squash(note),  # greedy tanh: squash(mean)
    }
    if env_id == recorded_env(note):  # the env it was trained on, made as it was then
        options.update(recorded_env_options(note))
    if not _VIDEO_DIR.value:
        return env_id, evaluate_modes(policy, env_id, _EPISODES.value, modes, **options)
    returns = {
        mode: record_video(
            policy, env_id, _EPISODES.value, _VIDEO_DIR.value, greedy=mode == "greedy", **options
        )
        for mode in modes
    }
    print(f"videos saved in {_VIDEO_DIR.value}")
    return env_id, returns


def run() -> None:
    """The console script's entry point: parses the flags, then `main`."""
    app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
    run()
