"""`minimize(loss, var_list, tape=None)` on every optimizer we offer, against hand values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from reinforce_tf.errors import InputError
from reinforce_tf.optimizers import make_optimizer

# Loss (x − 3)² at x = 1: gradient g = 2(x − 3) = −4.
# SGD: x ← x − α g = 1 + 0.1·4 = 1.4.
# Adam, first step: m̂ = g, v̂ = g² → x ← x − α g/(|g| + ε) ≈ 1 + 0.1 = 1.1.
# RMSprop (ρ = 0.9), first step: v = 0.1 g² → x ← x − α g/√v = 1 + 0.1/√0.1 = 1.316228.
FIRST_STEP = {"sgd": 1.4, "adam": 1.1, "rmsprop": 1 + 0.1 / math.sqrt(0.1)}


@pytest.mark.parametrize("name", sorted(FIRST_STEP))
def test_minimize_with_tensor_loss_and_tape(name):
    optimizer = make_optimizer(name, 0.1)
    x = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        loss = (x - 3.0) ** 2
    optimizer.minimize(loss, [x], tape=tape)
    np.testing.assert_allclose(x.numpy(), FIRST_STEP[name], rtol=1e-5)
    assert int(optimizer.iterations) == 1


@pytest.mark.parametrize("name", sorted(FIRST_STEP))
def test_minimize_with_callable_loss_and_var_list(name):
    optimizer = make_optimizer(name, 0.1)
    x = tf.Variable(1.0)
    optimizer.minimize(lambda: (x - 3.0) ** 2, lambda: [x])
    np.testing.assert_allclose(x.numpy(), FIRST_STEP[name], rtol=1e-5)


def test_minimize_converges():
    optimizer = make_optimizer("sgd", 0.1)
    x = tf.Variable(1.0)
    for _ in range(100):
        optimizer.minimize(lambda: (x - 3.0) ** 2, [x])
    np.testing.assert_allclose(x.numpy(), 3.0, atol=1e-6)


def test_tensor_loss_without_tape_is_refused():
    x = tf.Variable(1.0)
    with pytest.raises(ValueError, match="tape"):
        make_optimizer("adam", 0.1).minimize(x * 2.0, [x])


def test_unknown_optimizer_name():
    with pytest.raises(InputError, match="optimizer: must be one of adam, sgd, rmsprop"):
        make_optimizer("adagrad", 0.1)


def test_minimize_clips_by_global_norm_and_returns_the_norm_before():
    # Loss 3x + 4y: gradient (3, 4), global norm 5. Clip at 1 → (0.6, 0.8);
    # SGD α = 0.1 from (0, 0): (−0.06, −0.08).
    x, y = tf.Variable(0.0), tf.Variable(0.0)
    with tf.GradientTape() as tape:
        loss = 3.0 * x + 4.0 * y
    norm = make_optimizer("sgd", 0.1).minimize(loss, [x, y], tape=tape, clip_norm=1.0)
    np.testing.assert_allclose(norm, 5.0, rtol=1e-6)
    np.testing.assert_allclose([x.numpy(), y.numpy()], [-0.06, -0.08], rtol=1e-6)
    # A bound above the norm leaves the gradient alone: (−0.3, −0.4).
    x.assign(0.0), y.assign(0.0)
    with tf.GradientTape() as tape:
        loss = 3.0 * x + 4.0 * y
    make_optimizer("sgd", 0.1).minimize(loss, [x, y], tape=tape, clip_norm=10.0)
    np.testing.assert_allclose([x.numpy(), y.numpy()], [-0.3, -0.4], rtol=1e-6)
