"""Every hyperparameter of a training run, validated in one place.

The CLI (`scripts/train.py`) only parses flags into a `TrainConfig`; library users build
one directly. Both get the same checks, each raising `InputError` naming the field.
"""

import dataclasses
import math
from pathlib import Path

from reinforce_tf.errors import InputError

UPDATE_MODES = ("step", "episode", "batch")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
BASELINES = ("none", "mean", "value")
# Envs stepped in parallel by a `batch` update when --num_envs is not given: one compiled
# act() call costs about the same for 1 or 64 envs, so one env per episode of the batch, up
# to 64 (docs/benchmarks.md).
DEFAULT_BATCH_NUM_ENVS = 64

# Per-env hyperparameters that beat the generic defaults, measured over seeds (README,
# docs/benchmarks.md).
# `TrainConfig.for_env` applies them; explicit values (flags) override them.
ENV_DEFAULTS: dict[str, dict] = {
    # 64 episodes per update in 64 envs: 2.8x fewer act() calls to the target than 16 in 16
    # (median over seeds 0-4), every seed of 0-9 solving; lr 0.02 lost a seed.
    "CartPole-v1": {
        "hidden_sizes": (64, 64),
        "learning_rate": 0.015,
        "batch_episodes": 64,
    },
    # Early batches all time out at -500: without the per-time-step mean baseline their
    # weights push pi at random and seeds 1 and 2 of 0-2 never solved (1,000,000 steps).
    "Acrobot-v1": {"hidden_sizes": (64, 64), "learning_rate": 0.01, "baseline": "mean"},
    "Pendulum-v1": {
        "gamma": 0.9,
        "hidden_sizes": (64, 64),
        "learning_rate": 0.003,
        "baseline": "value",
        "normalize_observations": True,
    },
    "InvertedPendulum-v5": {
        "hidden_sizes": (64, 64),
        "learning_rate": 0.003,
        "baseline": "value",
        "normalize_observations": True,
    },
}
# The best policy of the evaluations during training, written beside `save_path`.
BEST_NAME = "best.keras"


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


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A REINFORCE training run.

    Attributes:
        env: Gymnasium environment id.
        seed: seeds the weights, the envs and action sampling; same seed, same run.
        total_steps: budget of env steps (steps of counted episodes).
        learning_rate: optimizer step size α, > 0.
        optimizer: one of OPTIMIZERS.
        gamma: discount γ in [0, 1].
        hidden_sizes: widths of the tanh hidden layers; () is a linear policy.
        update: "step" (one minimize per time step), "episode" (one per episode) or
            "batch" (one per `batch_episodes` episodes).
        gamma_power: weight the step at time t by γ^t, as in Sutton & Barto's pseudo-code.
        batch_episodes: episodes per update in `batch` mode.
        num_envs: envs stepped in parallel; None picks 1 for step/episode updates and
            min(batch_episodes, DEFAULT_BATCH_NUM_ENVS) for batch.
        normalize_returns: standardise G over the update's steps; None means on for
            `batch`, off otherwise.
        target_return: stop when the mean return of the last 100 episodes reaches it;
            None takes the env spec's reward_threshold (no early stop if it has none).
        save_path: where the trained policy is written; must end in ".keras".
        baseline: "none" (pure REINFORCE), "mean" (each step's G_t minus the mean G_t of
            the batch's other episodes at the same t; batch updates of ≥ 2 episodes) or
            "value" (a learned state value v̂(S_t, w), Sutton & Barto §13.4).
        value_learning_rate: the value network's step size α_w, > 0; None takes
            `learning_rate`. Used only with baseline "value".
        entropy_coef: β ≥ 0 of the entropy bonus −β Σ_t H(π(·|S_t)); 0 turns it off.
        max_grad_norm: clip the policy gradient to this global norm (> 0); None: no clipping.
        normalize_observations: standardise observations by running statistics stored in
            the policy model (so the saved file normalises by itself).
        logdir: the run folder for TensorBoard events, `episodes.csv`, `config.json` and
            checkpoints; None writes none of them (the CLI defaults to a new folder under
            `runs/`).
        checkpoint_every: env steps between checkpoints (> 0). Every such interval also
            reseeds the envs from (seed, interval number), so a run resumed from a periodic
            checkpoint replays the uninterrupted run exactly.
        resume: continue the run saved in `logdir` from its latest checkpoint.
        eval_every: env steps between greedy evaluations on a separate env, the best
            policy kept as `best.keras` beside `save_path`; None never evaluates.
        eval_episodes: episodes per evaluation (> 0).
    """

    env: str = "CartPole-v1"
    seed: int = 0
    total_steps: int = 1_000_000
    learning_rate: float = 0.01
    optimizer: str = "adam"
    gamma: float = 0.99
    hidden_sizes: tuple[int, ...] = (32,)
    update: str = "batch"
    gamma_power: bool = False
    batch_episodes: int = 16
    num_envs: int | None = None
    normalize_returns: bool | None = None
    target_return: float | None = None
    save_path: str = "policy.keras"
    baseline: str = "none"
    value_learning_rate: float | None = None
    entropy_coef: float = 0.0
    max_grad_norm: float | None = None
    normalize_observations: bool = False
    logdir: str | None = None
    checkpoint_every: int = 50_000
    resume: bool = False
    eval_every: int | None = None
    eval_episodes: int = 10

    def __post_init__(self):
        def check(ok: bool, field: str, allowed: str):
            if not ok:
                value = getattr(self, field)
                raise InputError(f"must be {allowed}; got {value!r}", field=field)

        check(isinstance(self.env, str) and bool(self.env), "env", "a Gymnasium id")
        check(_is_int(self.seed) and self.seed >= 0, "seed", "an integer >= 0")
        check(_is_int(self.total_steps) and self.total_steps > 0, "total_steps", "an integer > 0")
        check(
            _is_real(self.learning_rate) and 0 < self.learning_rate < math.inf,
            "learning_rate",
            "a finite number > 0",
        )
        check(self.optimizer in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}")
        check(_is_real(self.gamma) and 0 <= self.gamma <= 1, "gamma", "in [0, 1]")
        check(
            isinstance(self.hidden_sizes, tuple)
            and all(_is_int(size) and size > 0 for size in self.hidden_sizes),
            "hidden_sizes",
            "a tuple of positive integers",
        )
        check(self.update in UPDATE_MODES, "update", f"one of {', '.join(UPDATE_MODES)}")
        check(
            _is_int(self.batch_episodes) and self.batch_episodes > 0,
            "batch_episodes",
            "an integer > 0",
        )
        check(
            self.num_envs is None or (_is_int(self.num_envs) and self.num_envs > 0),
            "num_envs",
            "an integer > 0",
        )
        if self.update == "batch":
            check(
                self.resolved_num_envs <= self.batch_episodes,
                "num_envs",
                f"at most --batch_episodes ({self.batch_episodes}), since each env "
                "plays whole episodes of the batch",
            )
        else:
            check(
                self.resolved_num_envs == 1,
                "num_envs",
                f"1 with --update={self.update}, since each episode must be played by "
                "the parameters it updates",
            )
        check(
            self.target_return is None
            or (_is_real(self.target_return) and not math.isnan(self.target_return)),
            "target_return",
            "a number (inf never stops early)",
        )
        check(self.save_path.endswith(".keras"), "save_path", 'a path ending in ".keras"')
        check(self.baseline in BASELINES, "baseline", f"one of {', '.join(BASELINES)}")
        if self.baseline == "mean":
            check(
                self.update == "batch" and self.batch_episodes >= 2,
                "baseline",
                "none or value unless --update=batch with --batch_episodes >= 2, since the "
                "mean baseline averages the batch's other episodes",
            )
        check(
            self.value_learning_rate is None
            or (_is_real(self.value_learning_rate) and 0 < self.value_learning_rate < math.inf),
            "value_learning_rate",
            "a finite number > 0",
        )
        check(
            _is_real(self.entropy_coef) and 0 <= self.entropy_coef < math.inf,
            "entropy_coef",
            "a finite number >= 0",
        )
        check(
            self.max_grad_norm is None
            or (_is_real(self.max_grad_norm) and 0 < self.max_grad_norm < math.inf),
            "max_grad_norm",
            "a finite number > 0",
        )
        check(
            isinstance(self.normalize_observations, bool),
            "normalize_observations",
            "True or False",
        )
        check(
            self.logdir is None or (isinstance(self.logdir, str) and bool(self.logdir)),
            "logdir",
            "a folder path",
        )
        check(
            _is_int(self.checkpoint_every) and self.checkpoint_every > 0,
            "checkpoint_every",
            "an integer > 0",
        )
        check(
            not self.resume or self.logdir is not None,
            "resume",
            "used with --logdir, the run folder to continue",
        )
        check(
            self.eval_every is None or (_is_int(self.eval_every) and self.eval_every > 0),
            "eval_every",
            "an integer > 0",
        )
        check(
            _is_int(self.eval_episodes) and self.eval_episodes > 0,
            "eval_episodes",
            "an integer > 0",
        )
        check(
            self.eval_every is None or Path(self.save_path).name != BEST_NAME,
            "save_path",
            f"a name other than {BEST_NAME!r} when evaluating (that name holds the best policy)",
        )

    @classmethod
    def for_env(cls, env: str = "CartPole-v1", **overrides) -> "TrainConfig":
        """The config for `env`: generic defaults, then ENV_DEFAULTS[env], then `overrides`."""
        return cls(env=env, **{**ENV_DEFAULTS.get(env, {}), **overrides})

    @property
    def resolved_num_envs(self) -> int:
        """The number of parallel envs, with the default resolved."""
        if self.num_envs is not None:
            return self.num_envs
        if self.update == "batch":
            return min(self.batch_episodes, DEFAULT_BATCH_NUM_ENVS)
        return 1

    @property
    def resolved_value_learning_rate(self) -> float:
        """The value network's step size, with the default resolved."""
        if self.value_learning_rate is None:
            return self.learning_rate
        return self.value_learning_rate

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


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
