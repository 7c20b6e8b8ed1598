"""Every hyperparameter of a training run, declared and validated in one place.

Each option is a `TrainConfig` field whose metadata holds its help and the rule its values
obey. `scripts/train.py` makes one flag per field from them and `options_table()` renders
the README's flag table, so an option is described once. Library users build a
`TrainConfig` directly and get the same checks, each raising `InputError` naming the field.
"""

import dataclasses
import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from reinforce_tf.errors import InputError

UPDATE_MODES = ("step", "episode", "batch")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
BASELINES = ("none", "mean", "value")
VECTORIZATIONS = ("sync", "async")
# Wrapper presets (training/envs.py) and policy torsos (policy.py), named here so this module
# stays free of Gymnasium and Keras imports.
PRESETS = ("none", "atari", "flatten")
TORSOS = ("auto", "mlp", "minatar", "nature")
LR_SCHEDULES = ("constant", "linear", "kl")
ACTION_SQUASHES = ("clip", "tanh")
# How an evaluation acts: by drawing from π(·|s) or by its mode (argmax or mean).
EVAL_MODES = ("sampled", "greedy")
# Envs stepped in parallel by a `batch` update when --num_envs is not given: one compiled
# act() call costs about the same for 1 or 64 envs, so one env per episode of the batch, up
# to 64 (docs/benchmarks.md).
DEFAULT_BATCH_NUM_ENVS = 64

# `lr_schedule="kl"` aims at this mean KL(π_old ‖ π_new) per update: the value of the
# adaptive step size in Berkeley CS294-112's policy-gradient assignment (Pendulum-v1 in
# docs/mujoco_pilots.md).
DEFAULT_TARGET_KL = 0.002
# Its factor f: α shrinks by it when an update's KL is above twice the target and grows by
# it when below half ...
KL_STEP_FACTOR = 1.5
# ... within [α₀ / R, R α₀], α₀ = `--learning_rate`: batches that move π by nothing (equal
# standardised returns once every episode scores the same, say) would otherwise grow α
# without bound, and the next informative batch would take a wild step.
KL_RATE_RANGE = 100.0

# Tianshou's REINFORCE recipe for MuJoCo (examples/mujoco/mujoco_reinforce.py): no critic;
# observation and return normalisation; Adam at 1e-3 decaying linearly to 0; tanh squashing;
# ln σ = -0.5 at the start; the output layer at 0.01 of Glorot's (our generic default); here
# with 4 whole episodes per update (about Tianshou's 2,048 steps per update).
_TIANSHOU_RECIPE = {
    "hidden_sizes": (64, 64),
    "learning_rate": 0.001,
    "lr_schedule": "linear",
    "action_squash": "tanh",
    "initial_log_std": -0.5,
    "normalize_observations": True,
    "batch_episodes": 4,
}

# Per-env hyperparameters that beat the generic defaults over seeds; the tuning runs behind
# them are in docs/results.md. `TrainConfig.for_env` applies them; explicit values (flags)
# override them.
ENV_DEFAULTS: dict[str, dict] = {
    # 32 episodes per update, played by 32 envs at once: with NumPy acting, the fewest loop
    # seconds to the target of the batch sizes, env counts and step sizes tried whose saved
    # policies all act perfectly greedily (docs/results.md: 64 in 64 at α = 0.015 left seed 0's
    # greedy return at 339).
    "CartPole-v1": {
        "hidden_sizes": (64, 64),
        "learning_rate": 0.02,
        "batch_episodes": 32,
    },
    # Early batches all time out at -500: without the per-time-step mean baseline their
    # weights push π at random and some seeds never solve.
    "Acrobot-v1": {"hidden_sizes": (64, 64), "learning_rate": 0.01, "baseline": "mean"},
    # The swing-up needs the KL-adaptive step size (settings after Berkeley CS294-112's
    # policy-gradient assignment): seeds 0–4 pass a last-100 mean of −300 after 0.59–0.88M
    # steps (docs/results.md); with α fixed (0.001–0.01), or these defaults' earlier γ 0.9,
    # 64-64 units and normalised observations, they stayed near −1000. A KL target of 0.001
    # rather than 0.002 keeps the swing-up to the end of 2M steps better (seed 2's last-100
    # mean there: −178.9 against −357.6; docs/mujoco_pilots.md).
    "Pendulum-v1": {
        "gamma": 0.97,
        "hidden_sizes": (32, 32),
        "learning_rate": 0.001,
        "lr_schedule": "kl",
        "target_kl": 0.001,
        "baseline": "value",
        "batch_episodes": 13,
        "policy_init_scale": 0.05,
    },
    "InvertedPendulum-v5": {
        "hidden_sizes": (64, 64),
        "learning_rate": 0.003,
        "baseline": "value",
        "normalize_observations": True,
    },
    # One config for the five MinAtar games but the step size.
    # MinAtar's own network (one conv of 16, Dense 128, Young & Tian 2019) with a value
    # baseline, 64 episodes per update and an entropy bonus: Breakout pilots of 1M steps,
    # seed 0 (docs/pixels.md), ended at 5.21 where the value baseline alone at 16 episodes
    # ended at 1.44 (and the generic defaults at 1.61 after 5M). MinAtar registers no time
    # limit, so episodes are cut at 10,000 steps: that bounds the rollout buffers (else
    # `--env=MinAtar/Freeway-v1` alone is refused, its worst case 1,000,001 rows per env).
    # Freeway ends its own episodes at 2,500 steps; the others end at a loss, which a good
    # policy can put off past 10,000. The step size: each swept game's best last-100 mean
    # at 5M steps, 3 seeds per α (docs/minatar.md). Breakout's curve is flat over
    # 0.00025-0.008 (5.36-5.75, best at 0.002); Seaquest's rises to 6.0 at 0.008 from 2.8 at
    # 0.002. The games not swept keep Breakout's.
    **{
        f"MinAtar/{game}-v1": {
            "hidden_sizes": (128,),
            "learning_rate": learning_rate,
            "baseline": "value",
            "batch_episodes": 64,
            "entropy_coef": 0.01,
            "env_kwargs": {"max_episode_steps": 10_000},
        }
        for game, learning_rate in (
            ("Asterix", 0.002),
            ("Breakout", 0.002),
            ("Freeway", 0.002),
            ("Seaquest", 0.008),
            ("SpaceInvaders", 0.002),
        )
    },
    # The Nature DQN network (Dense 512) at Adam's usual Atari step size. Episodes may run to
    # the ALE's 27,000-step limit, so the buffers' worst case is 27,000 rows of 28 KB frames
    # per env: 16 episodes in 16 envs would need about 37 GiB and are refused; 4 need 9.
    "ALE/Pong-v5": {"hidden_sizes": (512,), "learning_rate": 0.0003, "batch_episodes": 4},
    # Pilots, seed 0, 1M steps (docs/mujoco_pilots.md): HalfCheetah best greedy evaluation
    # 850.9, last 818.2 (Tianshou's 3M mean: 884.0; the IP defaults: best 1,133.0, last
    # 507.2); Hopper best 746.5, last 671.5 (Tianshou 3M: 395.8).
    # The 3M-step table over 5 seeds: docs/mujoco.md.
    # Its 1,000-step episodes make the recipe's 4 per update 4,000 steps, twice Tianshou's
    # 2,048, so half as many updates in the budget; at 2 per update, 3M-step pilots
    # (docs/mujoco_pilots.md) reached best sampled evaluations of 1,552.0 (seed 0) and
    # 1,190.8 (seed 3) against the recipe's 974.1 and 707.0 (Tianshou's 3M: 884.0).
    "HalfCheetah-v5": {**_TIANSHOU_RECIPE, "batch_episodes": 2},
    "Hopper-v5": dict(_TIANSHOU_RECIPE),
    # The recipe alone stalled at ~275 from 250k to 3M steps (seed 0: best greedy evaluation
    # 326.7; Tianshou's 3M mean: 412.0). With a value baseline, a 1M pilot (seed 0,
    # docs/mujoco_pilots.md) reached a best greedy evaluation of 1,092.1 and a last-100 mean
    # of 735.6.
    "Walker2d-v5": {**_TIANSHOU_RECIPE, "baseline": "value"},
    # 1M pilots (seed 0): with a value baseline, best greedy evaluation 644.8 and last-100
    # mean 569.3; the recipe alone 565.8 and 491.8 (Tianshou's 3M mean: 438.2).
    "Humanoid-v5": {**_TIANSHOU_RECIPE, "baseline": "value"},
    # Swimmer's reward is a slow forward drift that γ = 0.99 barely sees (RL-Zoo's γ for it
    # is 0.9999): with the recipe, seeds 0–3 ended at best evaluations 45.2, 39.6, 26.4, 25.7;
    # with γ = 0.9999 a 1M pilot of seed 2 reached 156.7 (docs/mujoco_pilots.md).
    "Swimmer-v5": {**_TIANSHOU_RECIPE, "gamma": 0.9999},
    # With the recipe's σ = e^-0.5, Ant's sampled actions stayed far worse than its mean
    # action: 1M pilots (seed 0, docs/mujoco_pilots.md), best sampled evaluation 133.4 and last
    # 100 training episodes 95.9 (greedy 988.7); starting at ln σ = -1.5 instead: 957.7 and
    # 892.1 (greedy 1,642.9). Tianshou's 3M number, on sampled evaluations: 474.9.
    "Ant-v5": {**_TIANSHOU_RECIPE, "initial_log_std": -1.5},
    # Tianshou's one recipe for every task, as they ran it, without pilots of our own: the
    # 3M-step table (docs/mujoco.md) is their measurement.
    **{env: dict(_TIANSHOU_RECIPE) for env in ("Reacher-v5", "InvertedDoublePendulum-v5")},
}
# The best policy of the evaluations during training, written beside `save_path`.
BEST_NAME = "best.keras"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Rule(NamedTuple):
    """What a field's values must be: `check(value)` is true, else the error says
    "must be {allowed}".

    Attributes:
        check: the predicate on the field's value.
        allowed: what is allowed, completing "must be ...".
        choices: the allowed values of an enum field (a `DEFINE_enum` flag); else ().
    """

    check: Callable[[Any], bool]
    allowed: str
    choices: tuple[str, ...] = ()


def _one_of(choices: tuple[str, ...]) -> Rule:
    return Rule(lambda value: value in choices, f"one of {', '.join(choices)}", choices)


def _or_none(rule: Rule) -> Rule:
    """`rule`, or None (resolved as the field's `none` text says)."""
    return Rule(lambda value: value is None or rule.check(value), rule.allowed, rule.choices)


_INT_ABOVE_0 = Rule(lambda value: _is_int(value) and value > 0, "an integer > 0")
_NUMBER_ABOVE_0 = Rule(
    lambda value: _is_real(value) and 0 < value < math.inf, "a finite number > 0"
)
_BOOL = Rule(lambda value: isinstance(value, bool), "True or False")


def _is_ray_address(value) -> bool:
    """`auto`, or host:port with a port in [1, 65535] (an IPv6 host in brackets)."""
    if value == "auto":
        return True
    if not isinstance(value, str) or value.count(":") < 1:
        return False
    host, _, port = value.rpartition(":")
    return bool(host.strip("[]")) and port.isdigit() and 0 < int(port) < 65536


def _is_json_object(value) -> bool:
    """A dict with string keys that JSON writes and reads back unchanged (lists for tuples)."""
    if not (isinstance(value, dict) and all(isinstance(key, str) for key in value)):
        return False
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _option(default, rule: Rule, help: str, none: str = "") -> dataclasses.Field:
    """A `TrainConfig` field.

    Args:
        default: the generic default (ENV_DEFAULTS may override it per env).
        rule: what its values must be.
        help: a sentence or two with units and range, as `--helpfull` and the README show
            it (`code` in backticks); the default is added by `flag_help`.
        none: what a None value resolves to, when None is allowed.
    """
    metadata = {"help": help, "none": none, "rule": rule, "choices": rule.choices}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A REINFORCE training run: every hyperparameter, checked when the config is built.

    Each field is an option, its flag of `scripts/train.py` named after it. Its metadata
    holds its `help` (units, range and meaning), its `none` text (what None resolves to),
    its `rule` (what is allowed) and the `choices` of an enum; `flag_help` and
    `options_table` render them.

    `TrainConfig()` has the generic defaults. `TrainConfig.for_env(env, **overrides)`
    applies ENV_DEFAULTS[env] over them, then `overrides`, as the CLI does with the flags
    given. Building one, also by `dataclasses.replace`, raises `InputError` naming the first
    bad field.
    """

    env: str = _option(
        "CartPole-v1",
        Rule(lambda value: isinstance(value, str) and bool(value), "a Gymnasium id"),
        "Gymnasium environment id, or `module:EnvId` to import `module` (which registers "
        "EnvId) first. Observations: a flat Box or an image Box [height, width, channels]. "
        "Actions: Discrete or a flat Box.",
    )
    env_kwargs: dict | None = _option(  # noqa: RUF009 (a field whose default is None)
        None,
        _or_none(Rule(_is_json_object, "a JSON object (a dict of string keys and JSON values)")),
        "Keyword arguments of `gymnasium.make`, a JSON object such as "
        "`'{\"continuous\": true}'` (a dict in Python); recorded with the run and the policy.",
        none="none",
    )
    preset: str | None = _option(
        None,
        _or_none(_one_of(PRESETS)),
        "Gymnasium wrappers on each env, the same in training, evaluation and video: `none`; "
        "`atari`: AtariPreprocessing (84×84 grayscale, frame skip 4, noop starts) and "
        "FrameStackObservation (4); `flatten`: FlattenObservation (Dict, Tuple or Discrete "
        "observations to a vector).",
        none="`atari` for `ALE/` ids, else `none`",
    )
    seed: int = _option(
        0,
        Rule(lambda value: _is_int(value) and 0 <= value < 2**32, "an integer in [0, 2**32)"),
        "Seeds the weights, the envs and action sampling (an integer in [0, 2**32)); same flags "
        "and seed, same run.",
    )
    total_steps: int = _option(
        1_000_000,
        _INT_ABOVE_0,
        "Budget of env steps (> 0); an update whose episodes would pass it stops there and "
        "is not learned from.",
    )
    learning_rate: float = _option(0.01, _NUMBER_ABOVE_0, "Optimizer step size α (> 0).")
    optimizer: str = _option(
        "adam",
        _one_of(OPTIMIZERS),
        "Optimizer of the policy (and of the value network): `adam`, `sgd` or `rmsprop`.",
    )
    gamma: float = _option(
        0.99,
        Rule(lambda value: _is_real(value) and 0 <= value <= 1, "in [0, 1]"),
        "Discount γ, in [0, 1].",
    )
    hidden_sizes: tuple[int, ...] = _option(
        (32,),
        Rule(
            lambda value: (
                isinstance(value, tuple) and all(_is_int(size) and size > 0 for size in value)
            ),
            "a tuple of positive integers",
        ),
        "Widths of the hidden Dense layers (tanh; ReLU after convolutions), a comma list such "
        "as `64,64` (a tuple in Python); empty (`--hidden_sizes=`) for none.",
    )
    torso: str = _option(
        "auto",
        _one_of(TORSOS),
        "The layers before `--hidden_sizes`: `mlp` (images flattened); for images "
        "[height, width, channels], `minatar` (one 3×3 convolution of 16) or `nature` (the "
        "DQN convolutions, images >= 36×36), then ReLU Dense layers; `auto`: `mlp` for "
        "vectors, else `nature` from 36×36 up and `minatar` below.",
    )
    update: str = _option(
        "batch",
        _one_of(UPDATE_MODES),
        "`step`: one minimize per time step (Sutton & Barto's pseudo-code); `episode`: one "
        "per episode on -Σ_t G_t ln π; `batch`: one per `--batch_episodes` episodes.",
    )
    gamma_power: bool = _option(
        False, _BOOL, "Weight the step at time t by γ^t, as in Sutton & Barto's pseudo-code."
    )
    batch_episodes: int = _option(
        16, _INT_ABOVE_0, "Episodes per update with `--update=batch` (> 0)."
    )
    num_envs: int | None = _option(
        None,
        _or_none(_INT_ABOVE_0),
        "Envs stepped in parallel (> 0); with `--workers`, in each worker.",
        none=f"1 for step/episode updates; min(batch_episodes, {DEFAULT_BATCH_NUM_ENVS}) for batch "
        f"(with --workers, min(⌈batch_episodes / workers⌉, {DEFAULT_BATCH_NUM_ENVS}))",
    )
    normalize_returns: bool | None = _option(
        None,
        _or_none(_BOOL),
        "Standardise G_t over each update's steps.",
        none="on for batch updates, off otherwise",
    )
    target_return: float | None = _option(
        None,
        _or_none(
            Rule(
                lambda value: _is_real(value) and not math.isnan(value),
                "a number (inf never stops early)",
            )
        ),
        "Stop when the mean return of the last 100 episodes reaches this; `inf` never stops early.",
        none="the env's `reward_threshold`, if it has one",
    )
    save_path: str = _option(
        "policy.keras",
        Rule(
            lambda value: isinstance(value, str) and value.endswith(".keras"),
            'a path ending in ".keras"',
        ),
        "Where the trained policy is written; must end in `.keras`.",
    )
    baseline: str = _option(
        "none",
        _one_of(BASELINES),
        "`none`: pure REINFORCE; `mean`: subtract the mean G_t of the batch's other episodes "
        "at the same time step t (batch updates of >= 2 episodes); `value`: subtract a "
        "learned state value v̂(S_t, w) (Sutton & Barto 13.4).",
    )
    value_learning_rate: float | None = _option(
        None,
        _or_none(_NUMBER_ABOVE_0),
        "Step size α_w of the value network with `--baseline=value` (> 0).",
        none="`--learning_rate`",
    )
    entropy_coef: float = _option(
        0.0,
        Rule(lambda value: _is_real(value) and 0 <= value < math.inf, "a finite number >= 0"),
        "Weight β >= 0 of the entropy bonus -β Σ_t H(π(·|S_t)) added to the loss; 0 is off.",
    )
    max_grad_norm: float | None = _option(
        None,
        _or_none(_NUMBER_ABOVE_0),
        "Clip the policy gradient to this global norm (> 0) before each step.",
        none="no clipping",
    )
    normalize_observations: bool = _option(
        False,
        _BOOL,
        "Standardise observations by running mean and variance kept inside the saved policy, "
        "so the file normalises by itself.",
    )
    lr_schedule: str = _option(
        "constant",
        _one_of(LR_SCHEDULES),
        "`constant`: the step sizes stay as given; `linear`: each update at env step s takes "
        "α (1 − s/S), S = `--total_steps`, decaying to 0 by the end (and α_w alike); `kl`: "
        f"after each update α ← α/{KL_STEP_FACTOR:g} if its mean KL(π_old ‖ π_new) over the "
        f"update's states exceeds 2 `--target_kl`, α ← {KL_STEP_FACTOR:g} α if it is below "
        f"half of it, within [α₀/{KL_RATE_RANGE:g}, {KL_RATE_RANGE:g} α₀], α₀ = "
        "`--learning_rate` (α_w stays).",
    )
    target_kl: float | None = _option(
        None,
        _or_none(_NUMBER_ABOVE_0),
        "The KL per update that `--lr_schedule=kl` steers α towards (> 0).",
        none=f"{DEFAULT_TARGET_KL:g}",
    )
    action_squash: str = _option(
        "clip",
        _one_of(ACTION_SQUASHES),
        "Box actions: `clip`: the Gaussian sample u is clipped to the bounds; `tanh`: "
        "squashed into them, a = low + (high − low)(tanh(u) + 1)/2, ln π with the change of "
        "variables (finite bounds only).",
    )
    policy_init_scale: float = _option(
        0.01,
        _NUMBER_ABOVE_0,
        "The policy's output layer (logits or mean) starts with weights this many times "
        "Glorot-uniform's (> 0): small starts near uniform, or with the mean near 0.",
    )
    initial_log_std: float = _option(
        0.0,
        Rule(lambda value: _is_real(value) and math.isfinite(value), "a finite number"),
        "ln σ of a Box policy's Gaussian at the start (a finite number; 0 is σ = 1).",
    )
    logdir: str | None = _option(
        None,
        _or_none(Rule(lambda value: isinstance(value, str) and bool(value), "a folder path")),
        "Run folder for TensorBoard events, `episodes.csv`, `evaluations.csv`, `config.json` "
        "and checkpoints.",
        none="a new folder `runs/<env>__seed<seed>__<date-time>`, <env> with characters other "
        "than letters, digits, `.` and `-` as `_` (in Python: none, no files)",
    )
    checkpoint_every: int = _option(
        50_000,
        _INT_ABOVE_0,
        "Env steps between checkpoints (> 0); one is also written when the run ends. Each "
        "interval reseeds the envs, so a resumed run replays the uninterrupted one.",
    )
    resume: bool = _option(
        False,
        _BOOL,
        "Continue the run in `--logdir` from its latest checkpoint, with its saved config; "
        "flags given override it where allowed (e.g. `--total_steps`).",
    )
    eval_every: int | None = _option(
        None,
        _or_none(_INT_ABOVE_0),
        "Env steps between evaluations of `--eval_episodes` episodes that sample their actions "
        "from π, on separate envs (> 0); greedy evaluations come every `--greedy_eval_every`. "
        f"The best policy (by `--best_by`) is saved as `{BEST_NAME}` beside `--save_path`.",
        none="no evaluation",
    )
    greedy_eval_every: int | None = _option(
        None,
        _or_none(_INT_ABOVE_0),
        "Env steps between greedy evaluations (the most probable action, or the mean), beside "
        "the sampled ones of `--eval_every` (> 0; needs `--eval_every`).",
        none="`--eval_every`",
    )
    eval_episodes: int = _option(10, _INT_ABOVE_0, "Episodes per evaluation (> 0).")
    best_by: str = _option(
        "sampled",
        _one_of(EVAL_MODES),
        f"Which evaluations choose `{BEST_NAME}`: `sampled` (actions drawn from π, the "
        "return REINFORCE maximises) or `greedy`.",
    )
    final_eval_episodes: int = _option(
        10,
        Rule(lambda value: _is_int(value) and value >= 0, "an integer >= 0"),
        "Episodes of the saved policy played sampled and again greedily when the run ends; "
        "the returns are printed and recorded in the policy file's note (>= 0; 0: none).",
    )
    workers: int = _option(
        0,
        Rule(lambda value: _is_int(value) and value >= 0, "an integer >= 0"),
        "Ray actors that play each update's episodes (>= 0, at most the episodes per update), "
        "each with `--num_envs` envs and a copy of the policy; 0 plays them in this process.",
    )
    ray_address: str | None = _option(
        None,
        _or_none(Rule(_is_ray_address, "auto or host:port, such as 10.0.0.5:6379")),
        "The Ray cluster `--workers` run on: `auto` (the one `ray start` runs on this "
        "machine) or host:port of its head.",
        none="a local Ray instance started for the run, sized to this machine",
    )
    vectorization: str = _option(
        "sync",
        _one_of(VECTORIZATIONS),
        "`sync`: the envs step in one process (by the env's own vectorised step when it "
        "registers one, as CartPole does); `async`: each env in a subprocess (Gymnasium's "
        "AsyncVectorEnv), for slow envs on one machine without Ray.",
    )

    def __post_init__(self):
        for field in dataclasses.fields(self):
            rule = field.metadata["rule"]
            if not rule.check(getattr(self, field.name)):
                self._reject(field.name, rule.allowed)
        # A copy as config.json reads back (tuples become lists), None for no kwargs, so a
        # resumed run compares equal and the caller's dict can change without changing this.
        kwargs = json.loads(json.dumps(self.env_kwargs)) if self.env_kwargs else None
        object.__setattr__(self, "env_kwargs", kwargs)
        # Rules across fields, each naming the field that a user most likely got wrong.
        if self.workers > self.episodes_per_update:
            self._reject(
                "workers",
                f"at most the episodes per update ({self.episodes_per_update}), since each "
                "worker plays whole episodes of the update",
            )
        if (
            self.update == "batch"
            and self.workers
            and self.resolved_num_envs > max(self.worker_shares)
        ):
            self._reject(
                "num_envs",
                f"at most ⌈--batch_episodes / --workers⌉ ({max(self.worker_shares)}), since "
                "each env plays whole episodes of its worker's share",
            )
        if self.update == "batch" and self.resolved_num_envs > self.batch_episodes:
            self._reject(
                "num_envs",
                f"at most --batch_episodes ({self.batch_episodes}), since each env plays "
                "whole episodes of the batch",
            )
        if self.update != "batch" and self.resolved_num_envs != 1:
            self._reject(
                "num_envs",
                f"1 with --update={self.update}, since each episode must be played by the "
                "parameters it updates",
            )
        if self.baseline == "mean" and (self.update != "batch" or self.batch_episodes < 2):
            self._reject(
                "baseline",
                "none or value unless --update=batch with --batch_episodes >= 2, since the "
                "mean baseline averages the batch's other episodes",
            )
        if self.target_kl is not None and self.lr_schedule != "kl":
            self._reject("target_kl", "unset unless --lr_schedule=kl (it steers that schedule)")
        if self.ray_address is not None and not self.workers:
            self._reject("ray_address", "unset without --workers (it says where they run)")
        if self.vectorization == "async" and self.workers:
            self._reject(
                "vectorization",
                "sync with --workers (each worker is a process already: for more processes, "
                "add workers)",
            )
        if self.greedy_eval_every is not None and self.eval_every is None:
            self._reject("greedy_eval_every", "unset without --eval_every")
        if self.resume and self.logdir is None:
            self._reject("resume", "used with --logdir, the run folder to continue")
        if self.eval_every is not None and Path(self.save_path).name == BEST_NAME:
            self._reject(
                "save_path",
                f"a name other than {BEST_NAME!r} when evaluating (that name holds the best "
                "policy)",
            )

    def _reject(self, field: str, allowed: str) -> NoReturn:
        raise InputError(f"must be {allowed}; got {quoted(getattr(self, field))}", field=field)

    @classmethod
    def for_env(cls, env: str = "CartPole-v1", **overrides) -> "TrainConfig":
        """The config for `env`: generic defaults, then ENV_DEFAULTS[env] (for "module:EnvId",
        those of EnvId; its `target_kl` only if the schedule stays `kl`), then `overrides`."""
        registered = env.rpartition(":")[2]
        defaults = dict(ENV_DEFAULTS.get(registered, {}))
        if overrides.get("lr_schedule", defaults.get("lr_schedule")) != "kl":
            defaults.pop("target_kl", None)  # the env's KL target goes with its kl schedule
        return cls(env=env, **{**defaults, **overrides})

    @property
    def resolved_num_envs(self) -> int:
        """The number of parallel envs, with the default resolved."""
        if self.num_envs is not None:
            return self.num_envs
        if self.update == "batch":
            return min(max(self.worker_shares), DEFAULT_BATCH_NUM_ENVS)
        return 1

    @property
    def worker_shares(self) -> tuple[int, ...]:
        """Episodes of each update that each worker plays, as even as can be (the first
        E mod N workers one more); (E,) without workers."""
        workers = max(self.workers, 1)
        share, extra = divmod(self.episodes_per_update, workers)
        return tuple(share + (worker < extra) for worker in range(workers))

    @property
    def resolved_value_learning_rate(self) -> float:
        """The value network's step size, with the default resolved."""
        if self.value_learning_rate is None:
            return self.learning_rate
        return self.value_learning_rate

    @property
    def resolved_target_kl(self) -> float:
        """The KL per update that `lr_schedule="kl"` aims at, with the default resolved."""
        return DEFAULT_TARGET_KL if self.target_kl is None else self.target_kl

    @property
    def resolved_greedy_eval_every(self) -> int | None:
        """Env steps between greedy evaluations, with the default resolved (None: none)."""
        return self.eval_every if self.greedy_eval_every is None else self.greedy_eval_every

    @property
    def best_path(self) -> Path:
        """Where the best evaluated policy is written: `best.keras` beside `save_path`."""
        return Path(self.save_path).parent / BEST_NAME

    @property
    def episodes_per_update(self) -> int:
        return self.batch_episodes if self.update == "batch" else 1

    @property
    def resolved_normalize_returns(self) -> bool:
        """Whether returns are standardised, with the default resolved."""
        if self.normalize_returns is None:
            return self.update == "batch"
        return self.normalize_returns


def parse_hidden_sizes(text: str) -> tuple[int, ...]:
    """Parses "64,64" into (64, 64); "" gives () (a linear policy).

    Raises:
        InputError: an item that is not a positive integer.
    """
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    if not all(item.isdigit() and int(item) > 0 for item in items):
        raise InputError(
            "must be a comma list of positive integers such as 64,64 (empty for a "
            f"linear policy); got {text!r}",
            field="hidden_sizes",
        )
    return tuple(int(item) for item in items)


# JSON given as --env_kwargs, or read back from a run folder, is bounded before it is parsed:
# Python's parser recurses once per level (a RecursionError near 1,000 levels), and the text
# may be quoted in messages. Gymnasium kwargs nest a few levels in a few hundred characters.
MAX_JSON_DEPTH = 32
MAX_ENV_KWARGS_CHARS = 65_536
# A JSON string, escapes included: its brackets do not nest.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
# User text quoted in a message is cut to this many characters.
_QUOTED_CHARS = 80


def json_depth(text: str) -> int:
    """How deep the arrays and objects of JSON `text` nest (0 for a scalar, 1 for `{}`);
    brackets inside strings do not count. Linear in `len(text)`, without recursion."""
    brackets = re.sub(r"[^\[\]{}]", "", _JSON_STRING.sub("", text))
    return max(itertools.accumulate(1 if b in "[{" else -1 for b in brackets), default=0)


def quoted(value: object) -> str:
    """`value` (from the user or a file) as a message quotes it: its repr, printable, at
    most 80 characters."""
    # Imported here: this module stays free of Keras imports, and only errors quote values.
    from reinforce_tf.training.saving import printable

    text = repr(value[:_QUOTED_CHARS]) if isinstance(value, str) else repr(value)
    return printable(text, _QUOTED_CHARS)


def parse_env_kwargs(text: str) -> dict | None:
    """Parses the JSON object of --env_kwargs; "" gives None (no kwargs).

    The text is bounded before it is parsed: at most MAX_ENV_KWARGS_CHARS characters,
    nested at most MAX_JSON_DEPTH levels deep.

    Raises:
        InputError: text too long or nested too deep, not JSON (NaN and Infinity are not),
            or JSON that is not an object; the message quotes the text's start, printable.
    """
    if not text.strip():
        return None

    def refuse(allowed: str, got: str) -> NoReturn:
        raise InputError(f"must be {allowed}; got {got}", field="env_kwargs")

    example = "a JSON object such as '{\"continuous\": true}'"
    if len(text) > MAX_ENV_KWARGS_CHARS:
        refuse(
            f"a JSON object of at most {MAX_ENV_KWARGS_CHARS:,} characters",
            f"{len(text):,}, starting {quoted(text)}",
        )
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        refuse(
            f"a JSON object nested at most {MAX_JSON_DEPTH} levels deep",
            f"{depth:,} levels, starting {quoted(text)}",
        )

    def not_json(constant: str) -> NoReturn:
        refuse("a JSON object of JSON values", f"{constant}, which is not JSON")

    try:
        value = json.loads(text, parse_constant=not_json)
    except json.JSONDecodeError as error:
        refuse(example, f"{quoted(text)} ({error})")
    if not isinstance(value, dict):
        refuse(example, f"{quoted(text)}, a JSON {type(value).__name__}")
    return value


def default_text(field: dataclasses.Field, per_env: str = "per env") -> str:
    """The default of `field` in words: its value, or what None resolves to, after `per_env`
    when ENV_DEFAULTS sets the field for some env."""
    text = field.metadata["none"] if field.default is None else _show(field.default)
    return f"{per_env}, else {text}" if _set_per_env(field) else text


def flag_help(field: dataclasses.Field) -> str:
    """The help of `field`'s flag: its help text, then its default when absl's own
    "(default: ...)" would not tell it (per env, or a None that resolves)."""
    if field.default is None or _set_per_env(field):
        return f"{field.metadata['help']} Default: {default_text(field, 'per env (README)')}."
    return field.metadata["help"]


def options_table() -> str:
    """The README's table of the flags of `scripts/train.py`, one row per `TrainConfig`
    field in field order, then `--flagfile`: flag, default, meaning (Markdown)."""
    rows = ["| flag | default | meaning |", "| --- | --- | --- |"]
    for field in dataclasses.fields(TrainConfig):
        cells = (f"`--{field.name}`", default_text(field), field.metadata["help"])
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    rows.append("| `--flagfile` | | Read flags from a file, one `--flag=value` per line. |")
    return "\n".join(rows)


def _set_per_env(field: dataclasses.Field) -> bool:
    return any(field.name in defaults for defaults in ENV_DEFAULTS.values())


def _show(value) -> str:
    """A default as the table and the help write it: 1,000,000, 0.01, `adam`, `64,64`, off."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return f"`{','.join(map(str, value))}`"
    return f"`{value}`"
