import math

import numpy as np
import tensorflow as tf

from reinforce_tf.distributions import Categorical, DiagGaussian


def test_categorical_log_prob_and_entropy_closed_form():
    # logits [0, ln 3] → π = [1/4, 3/4]; ln π(1) = ln 0.75; H = −(¼ ln ¼ + ¾ ln ¾) = 0.562335.
    distribution = Categorical(tf.constant([[0.0, math.log(3.0)]] * 2))
    np.testing.assert_allclose(
        distribution.log_prob(tf.constant([1, 0])), [math.log(0.75), math.log(0.25)], rtol=1e-6
    )
    np.testing.assert_allclose(distribution.entropy(), [0.5623351] * 2, rtol=1e-6)
    np.testing.assert_array_equal(distribution.mode(), [1, 1])


def test_categorical_log_prob_is_finite_for_extreme_logits():
    # log-softmax, not log(softmax): π(0) = e^-200 / (1 + e^-200) → ln π(0) ≈ −200.
    distribution = Categorical(tf.constant([[-200.0, 0.0]]))
    np.testing.assert_allclose(distribution.log_prob(tf.constant([0])), [-200.0], rtol=1e-6)


def test_categorical_sample_frequencies():
    # π = [0.1, 0.2, 0.7]; 20000 draws: each frequency within 4 standard errors.
    probabilities = np.array([0.1, 0.2, 0.7])
    logits = tf.constant(np.log(np.tile(probabilities, (20000, 1))), tf.float32)
    samples = Categorical(logits).sample(tf.random.Generator.from_seed(1)).numpy()
    frequencies = np.bincount(samples, minlength=3) / samples.size
    tolerance = 4 * np.sqrt(probabilities * (1 - probabilities) / samples.size)
    assert np.all(np.abs(frequencies - probabilities) < tolerance)


def test_gaussian_log_prob_and_entropy_closed_form():
    # μ = [0, 1], σ = [1, 2], a = [1, 1]:
    # ln N(1; 0, 1) = −½ − ½ ln 2π;  ln N(1; 1, 2²) = −ln 2 − ½ ln 2π;
    # H = Σ_d ln σ_d + ½ ln(2πe) each = ln 2 + ln(2πe).
    log_2pi = math.log(2 * math.pi)
    distribution = DiagGaussian(tf.constant([[0.0, 1.0]]), tf.constant([[0.0, math.log(2.0)]]))
    expected = (-0.5 - 0.5 * log_2pi) + (-math.log(2.0) - 0.5 * log_2pi)
    np.testing.assert_allclose(
        distribution.log_prob(tf.constant([[1.0, 1.0]])), [expected], rtol=1e-6
    )
    np.testing.assert_allclose(
        distribution.entropy(), [math.log(2.0) + math.log(2 * math.pi * math.e)], rtol=1e-6
    )
    np.testing.assert_array_equal(distribution.mode(), [[0.0, 1.0]])


def test_gaussian_samples_have_the_right_moments():
    distribution = DiagGaussian(
        tf.fill([20000, 2], 3.0), tf.constant([[math.log(0.5), math.log(2.0)]])
    )
    samples = distribution.sample(tf.random.Generator.from_seed(2)).numpy()
    # Standard error of the mean is σ/√n ≤ 2/141 = 0.014; of the std about σ/√(2n) ≤ 0.01.
    np.testing.assert_allclose(samples.mean(axis=0), [3.0, 3.0], atol=0.06)
    np.testing.assert_allclose(samples.std(axis=0), [0.5, 2.0], atol=0.05)
