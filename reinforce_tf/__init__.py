"""REINFORCE (Williams 1992; Sutton & Barto ch. 13) in TensorFlow 2 / Keras 3 on Gymnasium."""

from reinforce_tf.agent import Reinforce, reinforce_loss
from reinforce_tf.config import TrainConfig
from reinforce_tf.distributions import Categorical, DiagGaussian
from reinforce_tf.errors import InputError
from reinforce_tf.evaluate import evaluate
from reinforce_tf.optimizers import make_optimizer
from reinforce_tf.policy import build_policy, make_actor
from reinforce_tf.returns import discounted_returns
from reinforce_tf.saving import load_policy, save_policy
from reinforce_tf.short_corridor import ShortCorridor  # registers reinforce_tf/ShortCorridor-v0
from reinforce_tf.train import TrainResult, train

__all__ = [
    "Categorical",
    "DiagGaussian",
    "InputError",
    "Reinforce",
    "ShortCorridor",
    "TrainConfig",
    "TrainResult",
    "build_policy",
    "discounted_returns",
    "evaluate",
    "load_policy",
    "make_actor",
    "make_optimizer",
    "reinforce_loss",
    "save_policy",
    "train",
]
