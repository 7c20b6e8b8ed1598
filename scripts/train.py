"""Train a policy by REINFORCE and save it as a Keras model.

python scripts/train.py                                   # CartPole-v1 → policy.keras
python scripts/train.py --env=Acrobot-v1 --seed=3 --save_path=/tmp/acrobot.keras
python scripts/train.py --resume --logdir=runs/CartPole-v1__seed0__20250101-120000

Exit status: 0 done; 1 training stopped by non-finite numbers or a failing env (the message
names the step; the last good checkpoint is kept); 2 bad input; 130 stopped by Ctrl-C or
SIGTERM after saving a checkpoint and the policy.
"""

import dataclasses
import sys
import time

import _cli  # first: it imports TensorFlow quietly
from absl import app, flags, logging

from reinforce_tf import config as config_lib
from reinforce_tf import train
from reinforce_tf.training.run_folder import load_run_config

_DEFAULTS = config_lib.TrainConfig()

_ENV = flags.DEFINE_string("env", _DEFAULTS.env, "Gymnasium environment id.")
_SEED = flags.DEFINE_integer(
    "seed", _DEFAULTS.seed, "Seeds weights, envs and sampling (>= 0); same seed, same run."
)
_TOTAL_STEPS = flags.DEFINE_integer(
    "total_steps", _DEFAULTS.total_steps, "Budget of env steps (> 0)."
)
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate",
    _DEFAULTS.learning_rate,
    "Optimizer step size α (> 0). Default: per env (README), else this.",
)
_OPTIMIZER = flags.DEFINE_enum(
    "optimizer", _DEFAULTS.optimizer, config_lib.OPTIMIZERS, "Optimizer."
)
_GAMMA = flags.DEFINE_float(
    "gamma", _DEFAULTS.gamma, "Discount γ, in [0, 1]. Default: per env (README), else this."
)
_HIDDEN_SIZES = flags.DEFINE_string(
    "hidden_sizes",
    ",".join(map(str, _DEFAULTS.hidden_sizes)),
    "Comma list of tanh hidden-layer widths, e.g. 64,64; empty for a linear policy. "
    "Default: per env (README), else this.",
)
_UPDATE = flags.DEFINE_enum(
    "update",
    _DEFAULTS.update,
    config_lib.UPDATE_MODES,
    "step: one minimize per time step (Sutton & Barto's pseudo-code); episode: one per "
    "episode on -Σ_t G_t ln π; batch: one per --batch_episodes episodes.",
)
_GAMMA_POWER = flags.DEFINE_bool(
    "gamma_power", _DEFAULTS.gamma_power, "Weight step t by γ^t, as in Sutton & Barto."
)
_BATCH_EPISODES = flags.DEFINE_integer(
    "batch_episodes", _DEFAULTS.batch_episodes, "Episodes per update with --update=batch (> 0)."
)
_NUM_ENVS = flags.DEFINE_integer(
    "num_envs",
    None,
    "Envs stepped in parallel (> 0). Default: 1 for step/episode updates, "
    f"min(batch_episodes, {config_lib.DEFAULT_BATCH_NUM_ENVS}) for batch.",
)
_NORMALIZE_RETURNS = flags.DEFINE_bool(
    "normalize_returns",
    None,
    "Standardise G_t over each update's steps. Default: on for batch, off otherwise.",
)
_TARGET_RETURN = flags.DEFINE_float(
    "target_return",
    None,
    "Stop when the mean return of the last 100 episodes reaches this. Default: the env's "
    "reward_threshold; inf never stops early.",
)
_SAVE_PATH = flags.DEFINE_string(
    "save_path", _DEFAULTS.save_path, "Where to write the policy; must end in .keras."
)
_BASELINE = flags.DEFINE_enum(
    "baseline",
    _DEFAULTS.baseline,
    config_lib.BASELINES,
    "none: pure REINFORCE; mean: subtract the mean G_t of the batch's other episodes at the "
    "same time step t (batch updates of >= 2 episodes); value: subtract a learned state "
    "value v(S_t) (Sutton & Barto 13.4). Default: per env (README), else none.",
)
_VALUE_LEARNING_RATE = flags.DEFINE_float(
    "value_learning_rate",
    None,
    "Step size of the value network with --baseline=value (> 0). Default: per env (README), "
    "else --learning_rate.",
)
_ENTROPY_COEF = flags.DEFINE_float(
    "entropy_coef",
    _DEFAULTS.entropy_coef,
    "Weight β >= 0 of the entropy bonus -β Σ_t H(π(·|S_t)) added to the loss; 0 is off.",
)
_MAX_GRAD_NORM = flags.DEFINE_float(
    "max_grad_norm",
    None,
    "Clip the policy gradient to this global norm (> 0) before each step. Default: no clipping.",
)
_NORMALIZE_OBSERVATIONS = flags.DEFINE_bool(
    "normalize_observations",
    _DEFAULTS.normalize_observations,
    "Standardise observations by running mean and variance kept inside the saved policy. "
    "Default: per env (README), else off.",
)

# Run folder, checkpoints and evaluation.
_LOGDIR = flags.DEFINE_string(
    "logdir",
    None,
    "Run folder for TensorBoard events, episodes.csv, config.json and checkpoints. "
    "Default: a new folder runs/<env>__seed<seed>__<date-time>.",
)
_CHECKPOINT_EVERY = flags.DEFINE_integer(
    "checkpoint_every",
    _DEFAULTS.checkpoint_every,
    "Env steps between checkpoints (> 0); one is also written when the run ends.",
)
_RESUME = flags.DEFINE_bool(
    "resume",
    False,
    "Continue the run in --logdir from its latest checkpoint, with its saved config; flags "
    "given override it where allowed (e.g. --total_steps).",
)
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every",
    None,
    "Env steps between greedy evaluations on a separate env (> 0); the best policy is "
    "saved as best.keras beside --save_path. Default: no evaluation.",
)
_EVAL_EPISODES = flags.DEFINE_integer(
    "eval_episodes", _DEFAULTS.eval_episodes, "Episodes per evaluation (> 0)."
)
_RUN_FLAGS = (_LOGDIR, _CHECKPOINT_EVERY, _RESUME, _EVAL_EVERY, _EVAL_EPISODES)


_FLAGS = {
    flag.name: flag
    for flag in (
        _SEED,
        _TOTAL_STEPS,
        _LEARNING_RATE,
        _OPTIMIZER,
        _GAMMA,
        _HIDDEN_SIZES,
        _UPDATE,
        _GAMMA_POWER,
        _BATCH_EPISODES,
        _NUM_ENVS,
        _NORMALIZE_RETURNS,
        _TARGET_RETURN,
        _SAVE_PATH,
        _BASELINE,
        _VALUE_LEARNING_RATE,
        _ENTROPY_COEF,
        _MAX_GRAD_NORM,
        _NORMALIZE_OBSERVATIONS,
        *_RUN_FLAGS,
    )
}


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint saver logs at INFO
    result = _cli.run_reporting_input_errors(_train)
    if result.interrupted:
        print(f"interrupted at step {result.steps:,}; policy saved to {result.save_path}")
        if result.logdir is not None:
            print(
                f"checkpoint {result.checkpoint}; continue with: python scripts/train.py "
                f"--resume --logdir={result.logdir}"
            )
        sys.exit(_cli.INTERRUPTED)
    state = "reached" if result.solved else "did not reach"
    print(
        f"{state} the target: mean return {result.mean_return:.2f} over the last "
        f"{min(result.episodes, 100)} episodes after {result.steps:,} steps "
        f"({result.episodes:,} episodes, {result.seconds:.1f}s)"
    )
    if result.logdir is not None:
        print(f"run folder {result.logdir} (tensorboard --logdir={result.logdir})")
    print(f"policy saved to {result.save_path}")


def _train():
    # Flags given on the command line override the env's defaults (config.ENV_DEFAULTS).
    given = {name: flag.value for name, flag in _FLAGS.items() if flags.FLAGS[name].present}
    if "hidden_sizes" in given:
        given["hidden_sizes"] = config_lib.parse_hidden_sizes(given["hidden_sizes"])
    if _RESUME.value:
        if _LOGDIR.value is None:
            raise _cli.InputError("needs --logdir, the run folder to continue", field="resume")
        saved = load_run_config(_LOGDIR.value)
        if flags.FLAGS["env"].present:
            given["env"] = _ENV.value
        config = config_lib.TrainConfig(**{**saved, **given})
    else:
        config = config_lib.TrainConfig.for_env(_ENV.value, **given)
        if config.logdir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            folder = f"runs/{config.env}__seed{config.seed}__{stamp}"
            config = dataclasses.replace(config, logdir=folder)
    print(f"training on {config.env} with {config}", flush=True)
    return train(config)


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
