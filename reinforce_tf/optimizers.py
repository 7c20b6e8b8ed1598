"""Keras 3 optimizers with the classic TF/Keras `minimize(loss, var_list, tape=None)`.

Keras 3 dropped `Optimizer.minimize`; the recipe we follow ("TensorFlow has a minimize()
method ... so just include a negative sign") needs it. `Minimize` restores it, with the
signature of `tf.keras.optimizers.Optimizer.minimize`, for every optimizer we offer.
"""

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from reinforce_tf.errors import InputError


class Minimize:
    """Mixin giving a Keras 3 optimizer the classic `minimize`."""

    def minimize(
        self,
        loss: tf.Tensor | Callable[[], tf.Tensor],
        var_list: Sequence[tf.Variable] | Callable[[], Sequence[tf.Variable]],
        tape: tf.GradientTape | None = None,
        clip_norm: float | None = None,
    ) -> tf.Tensor:
        """One descent step on `loss`: θ ← update(θ, ∇_θ loss), for θ in `var_list`.

        With `clip_norm`, the gradient g is first clipped by its global norm
        (`tf.clip_by_global_norm`): g ← g · c / max(‖g‖, c), ‖g‖² = Σ over all variables of
        the squared entries; its direction is kept.

        Args:
            loss: a scalar tensor computed under `tape`, or a zero-argument callable that
                returns it (then the gradient is recorded here).
            var_list: the variables to update, or a callable returning them.
            tape: the `tf.GradientTape` that recorded a tensor `loss`.
            clip_norm: the largest global norm of the applied gradient; None for no clipping.

        Returns:
            ‖∇_θ loss‖, the global norm of the gradient before clipping (scalar).

        Raises:
            ValueError: a tensor `loss` without its `tape`.
        """
        if not callable(loss) and tape is None:
            raise ValueError("`tape` is required when a `Tensor` loss is passed.")
        if callable(loss):
            tape = tape if tape is not None else tf.GradientTape()
            with tape:
                loss = loss()
        if callable(var_list):
            var_list = var_list()
        gradients = tape.gradient(loss, var_list)
        norm = tf.linalg.global_norm(gradients)
        if clip_norm is not None:
            gradients, _ = tf.clip_by_global_norm(gradients, clip_norm, use_norm=norm)
        self.apply_gradients(zip(gradients, var_list))
        return norm


class Adam(Minimize, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with `minimize`."""


class SGD(Minimize, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with `minimize`."""


class RMSprop(Minimize, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with `minimize`."""


OPTIMIZER_CLASSES = {"adam": Adam, "sgd": SGD, "rmsprop": RMSprop}


def make_optimizer(name: str, learning_rate: float) -> Minimize:
    """The optimizer called `name` (adam, sgd or rmsprop) with step size `learning_rate`.

    Raises:
        InputError: an unknown name.
    """
    if name not in OPTIMIZER_CLASSES:
        raise InputError(
            f"must be one of {', '.join(OPTIMIZER_CLASSES)}; got {name!r}", field="optimizer"
        )
    return OPTIMIZER_CLASSES[name](learning_rate=learning_rate)
