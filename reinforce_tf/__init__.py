"""REINFORCE (Williams 1992; Sutton & Barto ch. 13) in TensorFlow 2 / Keras 3 on Gymnasium.

The algorithm's core is this folder (config, distributions, policy, returns, optimizers,
agent); `training/` holds the trainer's plumbing and `exact/` the exact-gradient tools. The
public names below are importable from `reinforce_tf` itself.
"""

from reinforce_tf.agent import Reinforce, reinforce_loss
from reinforce_tf.config import TrainConfig
from reinforce_tf.distributions import Categorical, DiagGaussian
from reinforce_tf.errors import InputError, TrainingError
from reinforce_tf.exact.short_corridor import ShortCorridor  # registers ShortCorridor-v0
from reinforce_tf.optimizers import make_optimizer
from reinforce_tf.policy import build_policy, make_actor
from reinforce_tf.returns import discounted_returns
from reinforce_tf.training.evaluate import evaluate
from reinforce_tf.training.export import export_policy
from reinforce_tf.training.exported import load_exported
from reinforce_tf.training.learner import make_agent, update_from_rollout
from reinforce_tf.training.loop import TrainResult, train
from reinforce_tf.training.saving import load_policy, save_policy

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
