import math

import numpy as np
import tensorflow as tf

from reinforce_tf.distributions import (
    Categorical,
    DiagGaussian,
    TanhDiagGaussian,
    log_one_minus_tanh_squared,
)


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


def test_log_one_minus_tanh_squared_is_exact_and_finite():
    # u = 0.5: tanh = 0.46211716, 1 − tanh² = 0.78644773, ln = −0.24022901.
    # u = 20: tanh rounds to 1 in float32, but 1 − tanh² = 4 e⁻⁴⁰ / (1 + e⁻⁴⁰)², ln = 2 ln 2 − 40
    # = −38.61370564; u = −20 alike (even function).
    values = log_one_minus_tanh_squared(tf.constant([0.5, 20.0, -20.0]))
    np.testing.assert_allclose(values, [-0.24022901, -38.61370564, -38.61370564], rtol=1e-6)


def test_tanh_gaussian_log_prob_includes_the_change_of_variables():
    # μ = 0, σ = 1, bounds [−2, 2] (h = 2), u = 0.5, a = 2 tanh(0.5) = 0.92423431:
    # ln N(0.5; 0, 1) = −0.125 − ½ ln 2π = −1.04393853;
    # ln π(a) = −1.04393853 − (ln(1 − tanh² 0.5) + ln 2) = −1.04393853 − (−0.24022901 + 0.69314718)
    #         = −1.49685670.
    # Second dimension: μ = 1, σ = e^−0.5, bounds [0, 1] (h = ½), u = 1:
    # ln N(1; 1, σ²) = 0.5 − ½ ln 2π = −0.41893853; ln(1 − tanh² 1) = −0.86756166 (tanh 1 =
    # 0.76159416); ln π = −0.41893853 − (−0.86756166 − 0.69314718) = 1.14177031.
    gaussian = DiagGaussian(tf.constant([[0.0, 1.0]]), tf.constant([[0.0, -0.5]]))
    squashed = TanhDiagGaussian(gaussian, tf.constant([2.0, 0.5]))
    log_prob = squashed.log_prob(tf.constant([[0.5, 1.0]]))
    np.testing.assert_allclose(log_prob, [-1.49685670 + 1.14177031], rtol=1e-6)
    # Pre-squash sampling, mode and entropy are the Gaussian's.
    np.testing.assert_array_equal(squashed.mode(), [[0.0, 1.0]])
    np.testing.assert_array_equal(squashed.entropy(), gaussian.entropy())


def test_tanh_gaussian_density_integrates_to_one_over_the_bounds():
    # π(a) over a ∈ (−2, 2) on a fine grid, through u = atanh(a/2): the Jacobian is right iff
    # the density integrates to 1 (the tails beyond |a| = 1.9999 hold < 1e-6 of the mass).
    actions = np.linspace(-1.9999, 1.9999, 200_001)
    u = np.arctanh(actions / 2)[:, None].astype(np.float32)
    gaussian = DiagGaussian(tf.constant([[0.3]]), tf.constant([[-0.4]]))
    density = np.exp(TanhDiagGaussian(gaussian, tf.constant([2.0])).log_prob(u).numpy())
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # NumPy 1.26 (our lowest) names it trapz
    assert abs(trapezoid(density, actions) - 1.0) < 1e-4


def test_tanh_gaussian_gradient_is_the_gaussians():
    # The correction depends on u only: ∇_(μ, ln σ) ln π equals the pre-squash Gaussian's.
    mean, log_std = tf.Variable([[0.2, -0.1]]), tf.Variable([[-0.5, 0.3]])
    u = tf.constant([[0.7, -1.5]])
    with tf.GradientTape(persistent=True) as tape:
        gaussian = DiagGaussian(mean, log_std)
        plain = gaussian.log_prob(u)
        squashed = TanhDiagGaussian(gaussian, tf.constant([1.0, 3.0])).log_prob(u)
    for variable in (mean, log_std):
        np.testing.assert_allclose(
            tape.gradient(squashed, variable), tape.gradient(plain, variable), rtol=1e-6
        )


def test_kl_closed_forms():
    # Categorical: π = softmax([0, ln 3]) = [1/4, 3/4] against [1/2, 1/2]:
    # ¼ ln(½) + ¾ ln(3/2) = 0.130812.
    p = Categorical(tf.constant([[0.0, math.log(3.0)]]))
    q = Categorical(tf.constant([[5.0, 5.0]]))
    np.testing.assert_allclose(
        p.kl(q).numpy(), [0.25 * math.log(0.5) + 0.75 * math.log(1.5)], rtol=1e-6
    )
    np.testing.assert_allclose(p.kl(p).numpy(), [0.0], atol=1e-7)
    # Gaussian, per dimension ln σ' − ln σ + (σ² + (μ − μ')²)/(2σ'²) − ½: N(1, 1) against
    # N(0, 2²) is ln 2 + 2/8 − ½ = 0.443147; N(0, 1) against itself 0; a row sums them.
    # A log σ of [1, D] broadcasts against [B, D] means.
    old = DiagGaussian(tf.constant([[1.0, 0.0]]), tf.constant([[0.0, 0.0]]))
    new = DiagGaussian(tf.constant([[0.0, 0.0]]), tf.constant([[math.log(2.0), 0.0]]))
    np.testing.assert_allclose(old.kl(new).numpy(), [math.log(2.0) - 0.25], rtol=1e-6)
    two_rows = DiagGaussian(tf.constant([[1.0, 0.0], [0.0, 0.0]]), tf.zeros([1, 2]))
    np.testing.assert_allclose(
        two_rows.kl(new).numpy(), [math.log(2.0) - 0.25, math.log(2.0) - 0.375], rtol=1e-6
    )
    # The squash is one to one and shared, so the squashed KL is the pre-squash Gaussians'.
    half_range = tf.constant([2.0, 2.0])
    squashed = TanhDiagGaussian(old, half_range).kl(TanhDiagGaussian(new, half_range))
    np.testing.assert_allclose(squashed.numpy(), old.kl(new).numpy())
