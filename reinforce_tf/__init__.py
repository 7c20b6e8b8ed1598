"""REINFORCE (Williams 1992; Sutton & Barto ch. 13) in TensorFlow 2 / Keras 3 on Gymnasium.

The algorithm's core is this folder (config, distributions, policy, returns, optimizers,
agent); `training/` holds the trainer's plumbing, `exact/` the exact-gradient tools and
`cli/` the command-line tools. The public names below are importable from `reinforce_tf`
itself; each is imported when first used, so `import reinforce_tf` does not load TensorFlow
(the command-line tools load it first, quietly).
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("reinforce_tf")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"


# Each public name → the module that defines it.
_PUBLIC = {
    "Categorical": "reinforce_tf.distributions",
    "DiagGaussian": "reinforce_tf.distributions",
    "InputError": "reinforce_tf.errors",
    "Reinforce": "reinforce_tf.agent",
    "ShortCorridor": "reinforce_tf.exact.short_corridor",
    "TrainConfig": "reinforce_tf.config",
    "TrainResult": "reinforce_tf.training.loop",
    "TrainingError": "reinforce_tf.errors",
    "build_policy": "reinforce_tf.policy",
    "discounted_returns": "reinforce_tf.returns",
    "evaluate": "reinforce_tf.training.evaluate",
    "export_policy": "reinforce_tf.training.export",
    "load_exported": "reinforce_tf.training.exported",
    "load_policy": "reinforce_tf.training.saving",
    "make_actor": "reinforce_tf.policy",
    "make_agent": "reinforce_tf.training.learner",
    "make_optimizer": "reinforce_tf.optimizers",
    "reinforce_loss": "reinforce_tf.agent",
    "save_policy": "reinforce_tf.training.saving",
    "train": "reinforce_tf.training.loop",
    "update_from_rollout": "reinforce_tf.training.learner",
}
__all__ = [
    "Categorical",
    "DiagGaussian",
    "InputError",
    "Reinforce",
    "ShortCorridor",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "build_policy",
    "discounted_returns",
    "evaluate",
    "export_policy",
    "load_exported",
    "load_policy",
    "make_actor",
    "make_agent",
    "make_optimizer",
    "reinforce_loss",
    "save_policy",
    "train",
    "update_from_rollout",
]


def __getattr__(name: str):
    """Imports a public name's module the first time the name is asked for."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'reinforce_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


if TYPE_CHECKING:  # for type checkers and IDEs: the names, as plain imports
    from reinforce_tf.agent import Reinforce, reinforce_loss
    from reinforce_tf.config import TrainConfig
    from reinforce_tf.distributions import Categorical, DiagGaussian
    from reinforce_tf.errors import InputError, TrainingError
    from reinforce_tf.exact.short_corridor import ShortCorridor
    from reinforce_tf.optimizers import make_optimizer
    from reinforce_tf.policy import build_policy, make_actor
    from reinforce_tf.returns import discounted_returns
    from reinforce_tf.training.evaluate import evaluate
    from reinforce_tf.training.export import export_policy
    from reinforce_tf.training.exported import load_exported
    from reinforce_tf.training.learner import make_agent, update_from_rollout
    from reinforce_tf.training.loop import TrainResult, train
    from reinforce_tf.training.saving import load_policy, save_policy
