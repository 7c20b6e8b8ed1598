import dataclasses
import math
import re

import pytest

from reinforce_tf.config import (
    TrainConfig,
    flag_help,
    options_table,
    parse_env_kwargs,
    parse_hidden_sizes,
)
from reinforce_tf.errors import InputError


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("gamma", 1.5, "in [0, 1]"),
        ("gamma", -0.1, "in [0, 1]"),
        ("learning_rate", 0.0, "a finite number > 0"),
        ("learning_rate", -1e-3, "a finite number > 0"),
        ("learning_rate", math.inf, "a finite number > 0"),
        ("total_steps", 0, "an integer > 0"),
        ("batch_episodes", -2, "an integer > 0"),
        ("num_envs", 0, "an integer > 0"),
        ("seed", -1, "an integer in [0, 2**32)"),
        ("seed", 2**32, "an integer in [0, 2**32)"),
        ("optimizer", "adagrad", "one of adam, sgd, rmsprop"),
        ("update", "epoch", "one of step, episode, batch"),
        ("hidden_sizes", (64, 0), "a tuple of positive integers"),
        ("target_return", math.nan, "a number (inf never stops early)"),
        ("save_path", "policy.h5", 'a path ending in ".keras"'),
        ("baseline", "median", "one of none, mean, value"),
        ("value_learning_rate", 0.0, "a finite number > 0"),
        ("entropy_coef", -0.01, "a finite number >= 0"),
        ("entropy_coef", math.inf, "a finite number >= 0"),
        ("max_grad_norm", 0.0, "a finite number > 0"),
        ("normalize_observations", 1, "True or False"),
        ("gamma_power", 1, "True or False"),
        ("normalize_returns", "yes", "True or False"),
        ("resume", 0, "True or False"),
        ("env", "", "a Gymnasium id"),
        ("save_path", None, 'a path ending in ".keras"'),
        ("lr_schedule", "cosine", "one of constant, linear, kl"),
        ("target_kl", 0.0, "a finite number > 0"),
        ("action_squash", "sigmoid", "one of clip, tanh"),
        ("policy_init_scale", 0.0, "a finite number > 0"),
        ("initial_log_std", math.nan, "a finite number"),
        ("initial_log_std", -math.inf, "a finite number"),
        ("workers", -1, "an integer >= 0"),
        ("workers", 1.0, "an integer >= 0"),
        ("ray_address", "head", "auto or host:port, such as 10.0.0.5:6379"),
        ("ray_address", "head:99999", "auto or host:port, such as 10.0.0.5:6379"),
        ("vectorization", "fork", "one of sync, async"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(field, value, allowed):
    with pytest.raises(InputError) as error:
        TrainConfig(**{field: value})
    assert error.value.field == field
    assert str(error.value) == f"{field}: must be {allowed}; got {value!r}"


def test_num_envs_must_fit_the_update():
    with pytest.raises(InputError, match="num_envs: must be 1 with --update=episode"):
        TrainConfig(update="episode", num_envs=4)
    with pytest.raises(InputError, match=r"num_envs: must be at most --batch_episodes \(8\)"):
        TrainConfig(batch_episodes=8, num_envs=9)


def test_defaults_resolve_by_update_mode():
    batch = TrainConfig(batch_episodes=100)  # more episodes than DEFAULT_BATCH_NUM_ENVS = 64
    assert (
        batch.resolved_num_envs,
        batch.resolved_normalize_returns,
        batch.episodes_per_update,
    ) == (64, True, 100)
    assert TrainConfig(batch_episodes=4).resolved_num_envs == 4
    step = TrainConfig(update="step")
    assert (step.resolved_num_envs, step.resolved_normalize_returns, step.episodes_per_update) == (
        1,
        False,
        1,
    )
    assert TrainConfig(update="episode", normalize_returns=True).resolved_normalize_returns


def test_workers_share_the_update_and_take_num_envs_each():
    # 64 episodes on 3 workers: 22, 21, 21; each worker's envs default to its largest share.
    config = TrainConfig(batch_episodes=64, workers=3)
    assert config.worker_shares == (22, 21, 21)
    assert config.resolved_num_envs == 22
    assert TrainConfig(batch_episodes=64).worker_shares == (64,)
    assert TrainConfig(update="episode", workers=1).worker_shares == (1,)
    with pytest.raises(InputError, match=r"workers: must be at most the episodes per update \(1\)"):
        TrainConfig(update="episode", workers=2)
    with pytest.raises(
        InputError, match=r"num_envs: must be at most ⌈--batch_episodes / --workers⌉ \(22\)"
    ):
        TrainConfig(batch_episodes=64, workers=3, num_envs=23)
    with pytest.raises(
        InputError, match=r"ray_address: must be unset without --workers \(it says where"
    ):
        TrainConfig(ray_address="auto")
    with pytest.raises(InputError, match="vectorization: must be sync with --workers"):
        TrainConfig(workers=2, vectorization="async")
    assert TrainConfig(workers=2, ray_address="[::1]:6379").ray_address == "[::1]:6379"
    with pytest.raises(InputError, match="target_kl: must be unset unless --lr_schedule=kl"):
        TrainConfig(target_kl=0.01)
    assert TrainConfig(lr_schedule="kl").resolved_target_kl == 0.002
    assert TrainConfig(lr_schedule="kl", target_kl=0.01).resolved_target_kl == 0.01
    # An env's KL target goes with its kl schedule: another schedule drops it.
    assert TrainConfig.for_env("Pendulum-v1").target_kl == 0.001
    assert TrainConfig.for_env("Pendulum-v1", lr_schedule="linear").target_kl is None
    assert TrainConfig.for_env("Pendulum-v1", target_kl=0.01).target_kl == 0.01


def test_parse_hidden_sizes():
    assert parse_hidden_sizes("64,64") == (64, 64)
    assert parse_hidden_sizes(" 32 ") == (32,)
    assert parse_hidden_sizes("") == ()
    for text in ("64,", "a,b", "0", "-4", "1.5"):
        with pytest.raises(InputError, match="hidden_sizes: must be a comma list"):
            parse_hidden_sizes(text)


def test_mean_baseline_needs_other_episodes_in_the_batch():
    TrainConfig(baseline="mean", batch_episodes=2)
    for overrides in ({"update": "episode"}, {"batch_episodes": 1}):
        with pytest.raises(InputError, match="baseline: must be none or value unless"):
            TrainConfig(baseline="mean", **overrides)


def test_value_learning_rate_defaults_to_the_policy_one():
    assert TrainConfig(learning_rate=0.02).resolved_value_learning_rate == 0.02
    assert (
        TrainConfig(learning_rate=0.02, value_learning_rate=0.1).resolved_value_learning_rate == 0.1
    )


def test_options_are_off_by_default():
    config = TrainConfig()
    assert (config.baseline, config.entropy_coef, config.max_grad_norm) == ("none", 0.0, None)
    assert not config.normalize_observations
    # The recipe options keep the policy and schedule as they were before they existed.
    assert (config.lr_schedule, config.action_squash) == ("constant", "clip")
    assert (config.policy_init_scale, config.initial_log_std) == (0.01, 0.0)


FIELDS = {field.name: field for field in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_documents_itself(name):
    field = FIELDS[name]
    assert field.metadata["help"].endswith("."), name
    # A None default resolves to something the help must say.
    assert bool(field.metadata["none"]) == (field.default is None), name
    for choice in field.metadata["choices"]:
        assert f"`{choice}`" in field.metadata["help"], (name, choice)
    assert field.metadata["rule"].check(field.default), name


def test_flag_help_adds_the_default_absl_cannot_show():
    # learning_rate is in ENV_DEFAULTS (CartPole-v1 0.02), so absl's "(default: 0.01)" is
    # only the fallback; max_grad_norm's None means something; eval_episodes is plain 10.
    assert flag_help(FIELDS["learning_rate"]) == (
        "Optimizer step size α (> 0). Default: per env (README), else 0.01."
    )
    assert flag_help(FIELDS["max_grad_norm"]).endswith(" before each step. Default: no clipping.")
    assert flag_help(FIELDS["eval_episodes"]) == "Episodes per evaluation (> 0)."


def test_options_table_has_a_row_per_field_then_flagfile():
    rows = options_table().splitlines()
    assert rows[:2] == ["| flag | default | meaning |", "| --- | --- | --- |"]
    flags = [row.split(" | ")[0].removeprefix("| ") for row in rows[2:]]
    assert flags == [f"`--{name}`" for name in FIELDS] + ["`--flagfile`"]
    assert "| `--eval_episodes` | 10 | Episodes per evaluation (> 0). |" in rows
    assert "| `--hidden_sizes` | per env, else `32` | " in options_table()
    # A pipe inside a cell is escaped, or Markdown would split the cell: π(·|S_t).
    assert r"H(π(·\|S_t))" in options_table()
    assert all(len(re.findall(r"(?<!\\)\|", row)) == 4 for row in rows)  # 3 cells


def nested(depth: int) -> str:
    """A JSON object `depth` levels deep: {"a": {"a": ... 1 ...}}."""
    return '{"a": ' * depth + "1" + "}" * depth


# Quoted text is its repr cut to 80 characters, the last "…": the quote and 78 more.
LIKE = "a JSON object such as '{\"continuous\": true}'"


@pytest.mark.parametrize(
    "text, reason",
    [
        # Python's parser recurses: about 1,000 levels raised RecursionError (a traceback).
        (
            "[" * 10_000 + "]" * 10_000,
            (
                "must be a JSON object nested at most 32 levels deep; got 10,000 levels, "
                f"starting '{'[' * 78}…"
            ),
        ),
        (
            nested(33),
            (
                "must be a JSON object nested at most 32 levels deep; got 33 levels, starting "
                f"'{('{' + chr(34) + 'a' + chr(34) + ': ') * 13}…"
            ),
        ),
        # A 22 MB string was echoed whole.
        (
            '{"a": "' + "x" * 22_000_000 + '"}',
            (
                "must be a JSON object of at most 65,536 characters; got 22,000,009, starting "
                f'\'{{"a": "{"x" * 71}…'
            ),
        ),
        # A terminal escape is shown, not sent.
        (
            "\x1b[2J" + "z" * 200,
            f"must be {LIKE}; got '\\x1b[2J{'z' * 71}… (Expecting value: line 1 column 1 (char 0))",
        ),
        ("[" + "1," * 1_000 + "1]", f"must be {LIKE}; got '[{'1,' * 38}1…, a JSON list"),
        # Python's parser takes NaN, which no JSON holds (and the config would refuse).
        ('{"a": NaN}', "must be a JSON object of JSON values; got NaN, which is not JSON"),
    ],
)
def test_env_kwargs_are_bounded_and_echoed_short(text, reason):
    with pytest.raises(InputError) as error:
        parse_env_kwargs(text)
    assert error.value.field == "env_kwargs"
    assert error.value.reason == reason


def test_env_kwargs_within_the_bounds_are_parsed():
    kwargs = parse_env_kwargs(nested(32))
    assert TrainConfig(env_kwargs=kwargs).env_kwargs == kwargs
    # Brackets inside strings do not nest.
    assert parse_env_kwargs('{"map": "' + "[" * 100 + '"}') == {"map": "[" * 100}
    assert parse_env_kwargs(" ") is None


def test_deeply_nested_env_kwargs_in_a_flagfile_is_one_line(tmp_path, script):
    # Before: a RecursionError traceback, exit 1.
    (tmp_path / "flags.txt").write_text("--env_kwargs=" + "[" * 10_000 + "]" * 10_000 + "\n")
    done = script("train.py", "--flagfile=flags.txt", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: --env_kwargs: must be a JSON object nested at most 32 levels deep; got 10,000 "
    )
    assert len(done.stderr.splitlines()) == 1 and len(done.stderr) < 300
    assert sorted(path.name for path in tmp_path.iterdir()) == ["flags.txt"]
