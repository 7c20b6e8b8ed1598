"""The REINFORCE step against hand-derived values for a tiny linear softmax policy.

Policy: logits = s·W + b, π = softmax(logits), so ∇_W ln π(a|s) = s ⊗ (onehot(a) − π) and
∇_b ln π(a|s) = onehot(a) − π (the answer's equation (4) needs exactly these).
"""

import math

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from reinforce_tf.agent import Reinforce, reinforce_loss, value_loss
from reinforce_tf.optimizers import SGD, Adam
from reinforce_tf.policy import build_policy, build_value

OBSERVATION_SPACE = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
ACTION_SPACE = gym.spaces.Discrete(2)


def linear_policy(kernel, bias):
    policy = build_policy(OBSERVATION_SPACE, ACTION_SPACE, hidden_sizes=())
    policy.get_layer("logits").set_weights(
        [np.asarray(kernel, np.float32), np.asarray(bias, np.float32)]
    )
    return policy


def linear_value(policy, kernel, bias):
    value = build_value(policy, hidden_sizes=())
    value.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])
    return value


def softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_loss_value_for_uniform_policy():
    # Zero logits (π = ½), actions [0, 1, 0], returns [2.71, 1.9, 1.0], sum reduction:
    # L = −Σ G_t ln ½ = ln 2 · 5.61 = 3.888563.
    agent = Reinforce(linear_policy(np.zeros((2, 2)), np.zeros(2)), SGD(0.1))
    observations = tf.constant([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    log_probs = agent.log_prob(observations, tf.constant([0, 1, 0]))
    loss = reinforce_loss(log_probs, tf.constant([2.71, 1.9, 1.0]))
    np.testing.assert_allclose(loss, math.log(2) * 5.61, rtol=1e-6)


def test_gradient_is_minus_return_times_grad_log_pi():
    # Non-trivial weights; the hand gradient of L = −Σ_t G_t ln π(a_t|s_t) is
    # ∂L/∂W = −Σ_t G_t s_t ⊗ (onehot(a_t) − π_t),  ∂L/∂b = −Σ_t G_t (onehot(a_t) − π_t).
    kernel = np.array([[0.3, -0.2], [0.1, 0.4]])
    bias = np.array([0.05, -0.1])
    observations = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    actions = np.array([0, 1, 1])
    returns = np.array([2.0, -1.5, 0.5])
    pi = softmax(observations @ kernel + bias)  # [3, 2]
    score = np.eye(2)[actions] - pi  # onehot(a) − π
    expected_kernel_grad = -np.einsum("t,ti,tj->ij", returns, observations, score)
    expected_bias_grad = -np.einsum("t,tj->j", returns, score)
    expected_loss = -np.sum(returns * np.log(pi[np.arange(3), actions]))

    policy = linear_policy(kernel, bias)
    agent = Reinforce(policy, SGD(0.1))
    with tf.GradientTape() as tape:
        loss = reinforce_loss(
            agent.log_prob(tf.constant(observations, tf.float32), tf.constant(actions)),
            tf.constant(returns, tf.float32),
        )
    kernel_grad, bias_grad = tape.gradient(loss, policy.get_layer("logits").trainable_variables)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(kernel_grad, expected_kernel_grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias_grad, expected_bias_grad, rtol=1e-5, atol=1e-6)


def test_returns_are_not_differentiated():
    weights = tf.Variable([2.0])
    log_probs = tf.Variable([-0.5])
    with tf.GradientTape() as tape:
        loss = reinforce_loss(log_probs, weights * 1.0)
    grad_weights, grad_log_probs = tape.gradient(loss, [weights, log_probs])
    assert grad_weights is None
    np.testing.assert_allclose(grad_log_probs, [-2.0])


def test_one_sgd_update_moves_theta_by_alpha_g_grad_log_pi():
    # Zero weights: π = ½. s = [1, 2], a = 0, G = 3, α = 0.1:
    # ∇_W ln π = s ⊗ (e_0 − π) = [[0.5, −0.5], [1, −1]], ∇_b ln π = [0.5, −0.5];
    # θ ← θ + α G ∇ln π: W = [[0.15, −0.15], [0.3, −0.3]], b = [0.15, −0.15].
    policy = linear_policy(np.zeros((2, 2)), np.zeros(2))
    agent = Reinforce(policy, SGD(0.1))
    metrics = agent.update(
        tf.constant([[1.0, 2.0]]), tf.constant([0]), tf.constant([3.0]), tf.constant(1.0)
    )
    assert set(metrics) == {"policy_loss", "entropy", "grad_norm"}
    np.testing.assert_allclose(metrics["policy_loss"], 3 * math.log(2), rtol=1e-6)
    np.testing.assert_allclose(metrics["entropy"], math.log(2), rtol=1e-6)
    kernel, bias = policy.get_layer("logits").get_weights()
    np.testing.assert_allclose(kernel, [[0.15, -0.15], [0.3, -0.3]], rtol=1e-6)
    np.testing.assert_allclose(bias, [0.15, -0.15], rtol=1e-6)


def test_batch_update_averages_over_episodes():
    # The same single step counted as from 2 episodes halves the SGD step: W[0,0] = 0.075.
    policy = linear_policy(np.zeros((2, 2)), np.zeros(2))
    Reinforce(policy, SGD(0.1)).update(
        tf.constant([[1.0, 2.0]]), tf.constant([0]), tf.constant([3.0]), tf.constant(2.0)
    )
    np.testing.assert_allclose(policy.get_layer("logits").get_weights()[0][0, 0], 0.075, rtol=1e-6)


def test_per_step_updates_follow_sutton_barto_loop():
    # Two steps, each updated at the θ left by the one before; reference in NumPy.
    observations = np.array([[1.0, 2.0], [-1.0, 0.5]])
    actions = np.array([0, 1])
    weights = np.array([3.0, -2.0])
    alpha = 0.1
    kernel, bias = np.zeros((2, 2)), np.zeros(2)
    for s, a, w in zip(observations, actions, weights):
        score = np.eye(2)[a] - softmax(s @ kernel + bias)
        kernel = kernel + alpha * w * np.outer(s, score)
        bias = bias + alpha * w * score

    policy = linear_policy(np.zeros((2, 2)), np.zeros(2))
    metrics = Reinforce(policy, SGD(alpha)).update_per_step(
        tf.constant(observations, tf.float32),
        tf.constant(actions),
        tf.constant(weights, tf.float32),
    )
    assert {name: series.shape for name, series in metrics.items()} == {
        "policy_loss": (2,),
        "entropy": (2,),
        "grad_norm": (2,),
    }
    # Step 0 at π = ½: loss −3 ln ½.
    np.testing.assert_allclose(metrics["policy_loss"][0], 3 * math.log(2), rtol=1e-6)
    got_kernel, got_bias = policy.get_layer("logits").get_weights()
    np.testing.assert_allclose(got_kernel, kernel, rtol=1e-5)
    np.testing.assert_allclose(got_bias, bias, rtol=1e-5)
    # One step at a time differs from one summed update (θ moved in between).
    summed = linear_policy(np.zeros((2, 2)), np.zeros(2))
    Reinforce(summed, SGD(alpha)).update(
        tf.constant(observations, tf.float32),
        tf.constant(actions),
        tf.constant(weights, tf.float32),
        tf.constant(1.0),
    )
    assert not np.allclose(summed.get_layer("logits").get_weights()[0], kernel)


def test_gaussian_policy_gradient_of_the_mean():
    # Linear Gaussian: μ = s·W + b, σ = 1. ∂ ln N(a; μ, 1)/∂μ = a − μ, so for W = 0, b = 0,
    # s = [1, 2], a = [0.5], G = 2: ∂L/∂W = −G s (a − μ) = [[−1], [−2]].
    policy = build_policy(OBSERVATION_SPACE, gym.spaces.Box(-1.0, 1.0, (1,)), hidden_sizes=())
    policy.get_layer("mean").set_weights([np.zeros((2, 1), np.float32), np.zeros(1, np.float32)])
    agent = Reinforce(policy, SGD(0.1))
    with tf.GradientTape() as tape:
        loss = reinforce_loss(
            agent.log_prob(tf.constant([[1.0, 2.0]]), tf.constant([[0.5]])), tf.constant([2.0])
        )
    kernel_grad = tape.gradient(loss, policy.get_layer("mean").kernel)
    np.testing.assert_allclose(kernel_grad, [[-1.0], [-2.0]], rtol=1e-6)
    # ∂L/∂ln σ = −G ((a − μ)² − 1) = −2 (0.25 − 1) = 1.5, through the log_std bias.
    with tf.GradientTape() as tape:
        loss = reinforce_loss(
            agent.log_prob(tf.constant([[1.0, 2.0]]), tf.constant([[0.5]])), tf.constant([2.0])
        )
    log_std_grad = tape.gradient(loss, policy.get_layer("log_std").bias)
    np.testing.assert_allclose(log_std_grad, [1.5], rtol=1e-6)


@pytest.mark.parametrize("optimizer_class", [SGD, Adam])
def test_update_traces_once_for_new_lengths(optimizer_class):
    policy = linear_policy(np.zeros((2, 2)), np.zeros(2))
    agent = Reinforce(policy, optimizer_class(0.01))
    for steps in (3, 5, 8, 13):
        agent.update(
            tf.zeros((steps, 2)), tf.zeros(steps, tf.int32), tf.ones(steps), tf.constant(1.0)
        )
        agent.update_per_step(
            tf.zeros((steps, 2)), tf.zeros(steps, tf.int32), tf.ones(steps), tf.ones(steps)
        )
    assert agent.update.experimental_get_tracing_count() == 1
    assert agent.update_per_step.experimental_get_tracing_count() == 1


def test_entropy_bonus_step_matches_hand_gradient():
    # b = [0, ln 3] → π = [¼, ¾], H = −(¼ ln ¼ + ¾ ln ¾) = 0.562335.
    # ∂H/∂z_j = −π_j (ln π_j + H): ∂H/∂z = [0.205990, −0.205990].
    # G = 0 leaves only the bonus: L = −β H; SGD α = 0.1, β = 0.5, s = [1, 2]:
    # b ← b + αβ ∂H/∂z = [0.0102995, ln 3 − 0.0102995]; W ← αβ s ⊗ ∂H/∂z.
    entropy, dh = 0.562335, 0.205990
    policy = linear_policy(np.zeros((2, 2)), [0.0, math.log(3.0)])
    agent = Reinforce(policy, SGD(0.1), entropy_coef=0.5)
    metrics = agent.update(
        tf.constant([[1.0, 2.0]]), tf.constant([1]), tf.constant([0.0]), tf.constant(1.0)
    )
    np.testing.assert_allclose(metrics["entropy"], entropy, rtol=1e-5)
    np.testing.assert_allclose(metrics["policy_loss"], 0.0, atol=1e-7)
    kernel, bias = policy.get_layer("logits").get_weights()
    step = 0.1 * 0.5 * dh
    np.testing.assert_allclose(bias, [step, math.log(3.0) - step], rtol=1e-4)
    np.testing.assert_allclose(kernel, [[step, -step], [2 * step, -2 * step]], rtol=1e-4)


def test_entropy_bonus_is_summed_over_steps_and_averaged_over_episodes():
    # Two identical steps counted as 2 episodes give the step of one: L's bonus is
    # −β (1/E) Σ_t H_t, like its REINFORCE term.
    one = linear_policy(np.zeros((2, 2)), [0.0, math.log(3.0)])
    Reinforce(one, SGD(0.1), entropy_coef=0.5).update(
        tf.constant([[1.0, 2.0]]), tf.constant([1]), tf.constant([0.0]), tf.constant(1.0)
    )
    two = linear_policy(np.zeros((2, 2)), [0.0, math.log(3.0)])
    Reinforce(two, SGD(0.1), entropy_coef=0.5).update(
        tf.constant([[1.0, 2.0]] * 2), tf.constant([1, 1]), tf.constant([0.0] * 2), tf.constant(2.0)
    )
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_gradient_is_clipped_to_the_global_norm():
    # Zero weights, s = [1, 2], a = 0, G = 3: ∂L/∂W = [[−1.5, 1.5], [−3, 3]],
    # ∂L/∂b = [−1.5, 1.5]; ‖g‖² = 4.5 + 18 + 4.5 = 27. Clipped to 1 and SGD α = 0.1:
    # W = 0.1 [[1.5, −1.5], [3, −3]] / √27, b = 0.1 [1.5, −1.5] / √27.
    policy = linear_policy(np.zeros((2, 2)), np.zeros(2))
    metrics = Reinforce(policy, SGD(0.1), max_grad_norm=1.0).update(
        tf.constant([[1.0, 2.0]]), tf.constant([0]), tf.constant([3.0]), tf.constant(1.0)
    )
    np.testing.assert_allclose(metrics["grad_norm"], math.sqrt(27), rtol=1e-6)
    kernel, bias = policy.get_layer("logits").get_weights()
    np.testing.assert_allclose(kernel, 0.1 * np.array([[1.5, -1.5], [3, -3]]) / math.sqrt(27))
    np.testing.assert_allclose(bias, 0.1 * np.array([1.5, -1.5]) / math.sqrt(27), rtol=1e-6)
    # A bound above the norm changes nothing: the unclipped step of the test above.
    unclipped = linear_policy(np.zeros((2, 2)), np.zeros(2))
    Reinforce(unclipped, SGD(0.1), max_grad_norm=6.0).update(
        tf.constant([[1.0, 2.0]]), tf.constant([0]), tf.constant([3.0]), tf.constant(1.0)
    )
    np.testing.assert_allclose(unclipped.get_layer("logits").get_weights()[1], [0.15, -0.15])


def test_value_baseline_step_matches_sutton_barto():
    # v̂(s) = s·u + c with u = [0.5, 0], c = 0: v̂([1, 2]) = 0.5; G = 3 → δ = 2.5.
    # θ ← θ + α δ ∇ln π, α = 0.1: W = 0.25 [[0.5, −0.5], [1, −1]], b = [0.125, −0.125].
    # w ← w + α_w δ ∇v̂, α_w = 0.2: u = [0.5, 0] + 0.5 [1, 2] = [1, 1], c = 0.5.
    # Value loss ½ δ² = 3.125.
    policy = linear_policy(np.zeros((2, 2)), np.zeros(2))
    value = linear_value(policy, [[0.5], [0.0]], [0.0])
    agent = Reinforce(policy, SGD(0.1), value=value, value_optimizer=SGD(0.2))
    metrics = agent.update(
        tf.constant([[1.0, 2.0]]), tf.constant([0]), tf.constant([3.0]), tf.constant(1.0)
    )
    np.testing.assert_allclose(metrics["value_loss"], 3.125, rtol=1e-6)
    np.testing.assert_allclose(metrics["policy_loss"], 2.5 * math.log(2), rtol=1e-6)
    kernel, bias = policy.get_layer("logits").get_weights()
    np.testing.assert_allclose(kernel, [[0.125, -0.125], [0.25, -0.25]], rtol=1e-6)
    np.testing.assert_allclose(bias, [0.125, -0.125], rtol=1e-6)
    u, c = value.get_weights()
    np.testing.assert_allclose(u, [[1.0], [1.0]], rtol=1e-6)
    np.testing.assert_allclose(c, [0.5], rtol=1e-6)


def test_value_loss_is_half_squared_error():
    # G = [3, −1], v̂ = [1, 1]: ½ (2² + 2²) = 4.
    np.testing.assert_allclose(value_loss(tf.constant([1.0, 1.0]), tf.constant([3.0, -1.0])), 4.0)


def test_per_step_baseline_with_gamma_power_follows_sutton_barto():
    # The book's REINFORCE-with-baseline loop, in NumPy, for two steps: δ = G − v̂(S_t, w);
    # w ← w + α_w δ ∇v̂; θ ← θ + α γ^t δ ∇ln π, each at the parameters left by step t − 1.
    observations = np.array([[1.0, 2.0], [-1.0, 0.5]])
    actions = np.array([0, 1])
    returns = np.array([3.0, -2.0])
    powers = np.array([1.0, 0.9])
    alpha, alpha_w = 0.1, 0.05
    kernel, bias = np.zeros((2, 2)), np.zeros(2)
    u, c = np.array([0.3, -0.2]), 0.1
    for s, a, g, p in zip(observations, actions, returns, powers):
        delta = g - (s @ u + c)
        u, c = u + alpha_w * delta * s, c + alpha_w * delta
        score = np.eye(2)[a] - softmax(s @ kernel + bias)
        kernel = kernel + alpha * p * delta * np.outer(s, score)
        bias = bias + alpha * p * delta * score

    policy = linear_policy(np.zeros((2, 2)), np.zeros(2))
    value = linear_value(policy, [[0.3], [-0.2]], [0.1])
    agent = Reinforce(policy, SGD(alpha), value=value, value_optimizer=SGD(alpha_w))
    metrics = agent.update_per_step(
        tf.constant(observations, tf.float32),
        tf.constant(actions),
        tf.constant(returns, tf.float32),
        tf.constant(powers, tf.float32),
    )
    assert metrics["value_loss"].shape == (2,)
    got_kernel, got_bias = policy.get_layer("logits").get_weights()
    np.testing.assert_allclose(got_kernel, kernel, rtol=1e-5)
    np.testing.assert_allclose(got_bias, bias, rtol=1e-5)
    got_u, got_c = value.get_weights()
    np.testing.assert_allclose(got_u[:, 0], u, rtol=1e-5)
    np.testing.assert_allclose(got_c, [c], rtol=1e-5)


def test_value_without_its_optimizer_is_refused():
    policy = linear_policy(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="value_optimizer"):
        Reinforce(policy, SGD(0.1), value=build_value(policy, ()))


def test_tanh_squashed_log_prob_and_its_step():
    # The same linear Gaussian, actions squashed into [−2, 2] (h = 2); s = [1, 2], u = 0.5:
    # ln π = ln N(0.5; 0, 1) − ln(2 (1 − tanh² 0.5)) = −1.04393853 − 0.45291817 = −1.49685670.
    # The Jacobian term is constant in θ: one SGD step equals the unsquashed agent's,
    # W ← W − α ∂L/∂W = 0.1 · G s (u − μ) = [[0.1], [0.2]] for G = 2.
    box = gym.spaces.Box(-2.0, 2.0, (1,))
    agents = []
    for half_range in (None, np.array([2.0], np.float32)):
        policy = build_policy(OBSERVATION_SPACE, box, hidden_sizes=())
        policy.get_layer("mean").set_weights([np.zeros((2, 1), np.float32), np.zeros(1)])
        agents.append(Reinforce(policy, SGD(0.1), squash_half_range=half_range))
    plain, squashed = agents
    s, u = tf.constant([[1.0, 2.0]]), tf.constant([[0.5]])
    np.testing.assert_allclose(squashed.log_prob(s, u), [-1.49685670], rtol=1e-6)
    for agent in agents:
        agent.update(s, u, tf.constant([2.0]), tf.constant(1.0))
    kernel = squashed.policy.get_layer("mean").get_weights()[0]
    np.testing.assert_allclose(kernel, [[0.1], [0.2]], rtol=1e-6)
    for got, want in zip(squashed.policy.get_weights(), plain.policy.get_weights()):
        np.testing.assert_array_equal(got, want)
