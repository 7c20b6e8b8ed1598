"""Train a policy by REINFORCE and save it as a Keras model.

python scripts/train.py                                   # CartPole-v1 → policy.keras
python scripts/train.py --env=Acrobot-v1 --seed=3 --save_path=/tmp/acrobot.keras
python scripts/train.py --resume --logdir=runs/CartPole-v1__seed0__20250101-120000
PYTHONPATH=. python scripts/train.py --env=mygame:Toy-v0 --env_kwargs='{"size": 5}'

Exit status: 0 done; 1 training stopped by non-finite numbers or a failing env (the message
names the step; the last good checkpoint is kept); 2 bad input; 130 stopped by Ctrl-C or
SIGTERM after saving a checkpoint and the policy.
"""

import dataclasses
import json
import shlex
import sys
import time
import types
import typing
from pathlib import Path

from reinforce_tf.cli import common  # first: it imports TensorFlow quietly

# isort: split
from absl import app, flags, logging

from reinforce_tf import config as config_lib
from reinforce_tf import train
from reinforce_tf.training.envs import refuse_file_import, split_env_id
from reinforce_tf.training.evaluate import describe_returns, mode_advice
from reinforce_tf.training.run_folder import CONFIG_NAME, default_run_folder, load_run_config

# The flag of each field type; a tuple of ints is a comma string such as "64,64".
_DEFINE_BY_TYPE = {
    str: flags.DEFINE_string,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    bool: flags.DEFINE_bool,
    tuple[int, ...]: flags.DEFINE_string,
    dict: flags.DEFINE_string,  # a JSON object, such as '{"continuous": true}'
}


def _define_flag(field: dataclasses.Field, annotation) -> flags.FlagHolder:
    """Defines the flag of a `TrainConfig` field: same name, default and help."""
    help_text = config_lib.flag_help(field)
    if field.metadata["choices"]:
        return flags.DEFINE_enum(field.name, field.default, field.metadata["choices"], help_text)
    if isinstance(annotation, types.UnionType):  # `int | None` is an int flag, default None
        (annotation,) = (arg for arg in typing.get_args(annotation) if arg is not type(None))
    default = field.default
    if isinstance(default, tuple):
        default = ",".join(map(str, default))
    return _DEFINE_BY_TYPE[annotation](field.name, default, help_text)


_TYPES = typing.get_type_hints(config_lib.TrainConfig)
_FLAGS = {
    field.name: _define_flag(field, _TYPES[field.name])
    for field in dataclasses.fields(config_lib.TrainConfig)
}
_ENV = _FLAGS["env"]
_LOGDIR = _FLAGS["logdir"]
_RESUME = _FLAGS["resume"]


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        common.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint saver logs at INFO
    result = common.run_reporting_input_errors(
        _train, interrupted="interrupted; nothing saved since the last checkpoint"
    )
    if result.interrupted:
        print(f"interrupted at step {result.steps:,}; policy saved to {result.save_path}")
        if result.logdir is not None:
            print(
                f"checkpoint {result.checkpoint}; continue with: {common.invoked_as()} "
                f"--resume --logdir={result.logdir}{_module_env()}"
            )
        sys.exit(common.INTERRUPTED)
    state = "reached" if result.solved else "did not reach"
    print(
        f"{state} the target: mean return {result.mean_return:.2f} over the last "
        f"{min(result.episodes, 100)} episodes after {result.steps:,} steps "
        f"({result.episodes:,} episodes, {result.seconds:.1f}s)"
    )
    if result.logdir is not None:
        print(f"run folder {result.logdir} (tensorboard --logdir={result.logdir})")
    print(f"policy saved to {result.save_path}")
    if result.final_evaluation:
        for mode, returns in result.final_evaluation.items():
            print(describe_returns("the saved policy", mode, returns))
        advice = mode_advice(result.final_evaluation)
        if advice:
            print(advice)


def _module_env() -> str:
    """What a resume command must add for a run that imports a module: its --env, since
    the run's config.json alone never imports one (`refuse_file_import`); else ""."""
    module, _ = split_env_id(_ENV.value)
    return f" --env={shlex.quote(_ENV.value)}" if module is not None else ""


def _train():
    # Flags given on the command line override the env's defaults (config.ENV_DEFAULTS).
    given = {
        name: flag.value
        for name, flag in _FLAGS.items()
        if flags.FLAGS[name].present and name != "env"
    }
    if "hidden_sizes" in given:
        given["hidden_sizes"] = config_lib.parse_hidden_sizes(given["hidden_sizes"])
    if "env_kwargs" in given:
        given["env_kwargs"] = config_lib.parse_env_kwargs(given["env_kwargs"])
    if _RESUME.value:
        if _LOGDIR.value is None:
            raise common.InputError("needs --logdir, the run folder to continue", field="resume")
        saved = load_run_config(_LOGDIR.value)
        if flags.FLAGS["env"].present:
            given["env"] = _ENV.value
        else:
            refuse_file_import(saved["env"], repr(str(Path(_LOGDIR.value) / CONFIG_NAME)))
        config = config_lib.TrainConfig(**{**saved, **given})
    else:
        config = config_lib.TrainConfig.for_env(_ENV.value, **given)
        if config.logdir is None:
            folder = default_run_folder(config.env, config.seed, time.strftime("%Y%m%d-%H%M%S"))
            config = dataclasses.replace(config, logdir=folder)
    print(summary(config), flush=True)
    return train(config)


def summary(config: config_lib.TrainConfig) -> str:
    """The run in one line: the env, the options that differ from its defaults (as flags),
    the run folder. The whole config is in the folder's config.json and in TensorBoard."""
    defaults = config_lib.TrainConfig.for_env(config.env)
    changed = [
        _as_flag(field.name, getattr(config, field.name))
        for field in dataclasses.fields(config)
        if field.name not in ("env", "logdir", "resume")
        and getattr(config, field.name) != getattr(defaults, field.name)
    ]
    verb = "resuming" if config.resume else "training"
    options = f"its defaults and {' '.join(changed)}" if changed else "its defaults"
    where = f"; run folder {config.logdir}" if config.logdir else ""
    return f"{verb} on {config.env} with {options}{where}"


def _as_flag(name: str, value) -> str:
    """`--name=value` as it is typed: --gamma_power / --nogamma_power, --hidden_sizes=64,64,
    --env_kwargs='{"a": 1}'."""
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    if isinstance(value, tuple):
        value = ",".join(map(str, value))
    elif isinstance(value, dict):
        value = json.dumps(value)
    return f"--{name}={shlex.quote(str(value))}"


def run() -> None:
    """The console script's entry point: parses the flags, then `main`."""
    app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
    run()
