"""The policy model, its file, and the spaces it refuses."""

import re

import gymnasium as gym
import keras
import numpy as np
import pytest
from conftest import outputs_in_plain_keras

from reinforce_tf.errors import InputError, TrainingError
from reinforce_tf.policy import (
    build_policy,
    build_value,
    distribution_model,
    make_actor,
    min_image_side,
    torso_size,
    update_observation_statistics,
)
from reinforce_tf.training.evaluate import check_fits
from reinforce_tf.training.saving import load_metadata, load_policy, save_policy

BOX4 = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def test_discrete_policy_outputs_probabilities_from_logits():
    policy = build_policy(BOX4, gym.spaces.Discrete(3), (8,), seed=1)
    observations = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    probabilities = policy(observations).numpy()
    logits = distribution_model(policy)(observations).numpy()
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    # Small output weights: the first policy is near uniform.
    np.testing.assert_allclose(probabilities, 1 / 3, atol=0.01)


def test_box_policy_outputs_mean_and_state_independent_std():
    policy = build_policy(BOX4, gym.spaces.Box(-2.0, 2.0, (2,)), (8,))
    log_std = policy.get_layer("log_std")
    log_std.set_weights([log_std.get_weights()[0], np.array([0.0, np.log(0.5)], np.float32)])
    observations = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    outputs = policy(observations)
    assert outputs["mean"].shape == (3, 2)
    np.testing.assert_allclose(outputs["std"], [[1.0, 0.5]] * 3, rtol=1e-6)


def test_output_scale_and_initial_log_std_set_the_first_policy():
    # Glorot-uniform limit of the 8 → 2 mean layer: √(6/(8 + 2)) = 0.77459667; scaled by
    # 0.01 → 0.0077459667, by 0.5 → 0.38729833. The same seed draws the same uniform
    # numbers, so the weights scale exactly by 0.5/0.01 = 50.
    box = gym.spaces.Box(-1.0, 1.0, (2,))
    default = build_policy(BOX4, box, (8,), seed=2).get_layer("mean").get_weights()[0]
    wide = build_policy(BOX4, box, (8,), seed=2, output_scale=0.5, initial_log_std=-0.5)
    weights = wide.get_layer("mean").get_weights()[0]
    assert np.abs(default).max() <= 0.0077459667 and np.abs(weights).max() <= 0.38729833
    assert np.abs(weights).max() > 0.3  # 16 draws: the largest is near the limit
    np.testing.assert_allclose(weights, 50 * default, rtol=1e-5)
    # σ = e^−0.5 = 0.60653066 in every state.
    np.testing.assert_allclose(wide(np.ones((3, 4), np.float32))["std"], 0.60653066, rtol=1e-6)


def test_actor_samples_and_greedy_mode():
    policy = build_policy(BOX4, gym.spaces.Discrete(2), ())
    policy.get_layer("logits").set_weights(
        [np.zeros((4, 2), np.float32), np.array([0.0, 1.0], np.float32)]
    )
    observations = np.zeros((4000, 4), np.float32)
    np.testing.assert_array_equal(make_actor(policy, greedy=True)(observations), 1)
    # π(1) = e/(1 + e) = 0.7311; 4000 samples: standard error 0.007.
    sampled = make_actor(policy, seed=3)(observations)
    assert abs(sampled.mean() - 0.7311) < 0.03
    np.testing.assert_array_equal(sampled, make_actor(policy, seed=3)(observations))


@pytest.mark.parametrize(
    "observation_space, action_space, named",
    [
        (gym.spaces.Tuple([BOX4, BOX4]), gym.spaces.Discrete(2), "Tuple"),
        (
            gym.spaces.Box(0, 255, (8, 8), np.uint8),  # an image without its channel axis
            gym.spaces.Discrete(2),
            "Box(0, 255, (8, 8)",
        ),
        (gym.spaces.Discrete(5), gym.spaces.Discrete(2), "Discrete(5)"),
        (BOX4, gym.spaces.MultiDiscrete([2, 3]), "MultiDiscrete"),
        (BOX4, gym.spaces.Dict({"a": gym.spaces.Discrete(2)}), "Dict"),
    ],
)
def test_unsupported_spaces_are_named(observation_space, action_space, named):
    with pytest.raises(
        InputError, match=f"env: .*space {re.escape(named)}.*not supported"
    ) as error:
        build_policy(observation_space, action_space)
    assert "\n" not in str(error.value)


def test_saved_policy_loads_in_plain_keras_and_reproduces_probabilities(tmp_path):
    policy = build_policy(BOX4, gym.spaces.Discrete(2), (16,), seed=5)
    observations = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    expected = policy(observations).numpy()
    path = save_policy(policy, tmp_path / "policy.keras", {"env": "CartPole-v1"})
    assert [p.name for p in tmp_path.iterdir()] == ["policy.keras"]  # no temp file left
    assert load_metadata(path) == {"env": "CartPole-v1"}
    plain = outputs_in_plain_keras(path, observations, tmp_path)
    np.testing.assert_allclose(plain, expected, rtol=1e-6)


def test_saved_gaussian_policy_round_trips(tmp_path):
    policy = build_policy(BOX4, gym.spaces.Box(-1.0, 1.0, (3,)), (8,))
    observations = np.ones((2, 4), np.float32)
    loaded = load_policy(save_policy(policy, tmp_path / "g.keras", {}))
    for name in ("mean", "std"):
        np.testing.assert_allclose(
            loaded(observations)[name], policy(observations)[name], rtol=1e-6
        )
    np.testing.assert_allclose(distribution_model(loaded)(observations)["log_std"], 0.0, atol=1e-7)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="policy: no such file"):
        load_policy(tmp_path / "missing.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="policy: .*corrupt.keras.* not a readable .keras model"):
        load_policy(corrupt)


def test_failed_save_leaves_no_file(tmp_path):
    class Unsaveable:
        def save(self, path):
            with open(path, "wb") as file:
                file.write(b"half")
            raise OSError("disk full")

    # An OSError while writing is a fault of the run, reported in one line (exit 1).
    with pytest.raises(TrainingError, match=r"policy.keras': disk full; no file was written$"):
        save_policy(Unsaveable(), tmp_path / "policy.keras", {})
    assert list(tmp_path.iterdir()) == []


def test_policy_for_other_spaces_is_refused():
    policy = build_policy(BOX4, gym.spaces.Discrete(2), ())
    check_fits(policy, BOX4, gym.spaces.Discrete(2))
    with pytest.raises(InputError, match=r"policy: .*size 4 and 2 action outputs.*Box.*\(6,\)"):
        check_fits(policy, gym.spaces.Box(-1, 1, (6,)), gym.spaces.Discrete(3))
    gaussian = build_policy(BOX4, gym.spaces.Box(-1.0, 1.0, (2,)), ())
    check_fits(gaussian, BOX4, gym.spaces.Box(-2.0, 2.0, (2,)))
    with pytest.raises(InputError, match="policy: .*size 4 and 2 action outputs.*Box.*\\(1,\\)"):
        check_fits(gaussian, BOX4, gym.spaces.Box(-2.0, 2.0, (1,)))


def _functional(inputs, outputs):
    return keras.Model(inputs, outputs)


def _not_policies():
    """Keras models with a layer named like ours that build_policy would never make."""
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="logits")])
    integer = keras.Input((4,), dtype="int32")
    first, second = keras.Input((4,)), keras.Input((3,))
    joined = keras.layers.Concatenate()([first, second])
    image = keras.Input((8, 8, 3))
    vector = keras.Input((4,))
    logits = keras.layers.Dense(3, name="logits")(vector)
    mean = keras.layers.Dense(2, name="mean")(vector)
    log_std = keras.layers.Dense(2, name="log_std")(vector)
    return {
        # Sequential has `policy.input` undefined: an AttributeError before the fix.
        "sequential": (sequential, "not a functional Keras model"),
        "integer input": (
            _functional(integer, keras.layers.Dense(2, name="logits")(integer)),
            "one float tensor",
        ),
        "two inputs": (
            _functional([first, second], keras.layers.Dense(2, name="logits")(joined)),
            "one float tensor",
        ),
        "image input, image logits": (
            _functional(image, keras.layers.Dense(2, name="logits")(image)),
            "'logits' layer and its output must be [batch, actions]",
        ),
        "logits not the output's shape": (
            _functional(vector, keras.layers.Dense(5)(logits)),
            "shape of its 'logits' layer",
        ),
        "gaussian with one output": (
            _functional(vector, keras.layers.Add()([mean, log_std])),
            "outputs must be {'mean', 'std'}",
        ),
        "no named layer": (
            _functional(vector, keras.layers.Dense(2)(vector)),
            "no layer named 'logits'",
        ),
    }


@pytest.mark.parametrize("case", list(_not_policies()))
def test_other_keras_models_are_refused_as_not_a_policy(case):
    model, why = _not_policies()[case]
    with pytest.raises(InputError) as error:
        distribution_model(model)
    message = str(error.value)
    assert message.startswith("policy: is not a reinforce_tf policy: ")
    assert why in message and "\n" not in message


def test_saved_policies_of_both_kinds_pass_the_policy_check(tmp_path):
    for action_space in (gym.spaces.Discrete(2), gym.spaces.Box(-1.0, 1.0, (2,))):
        for normalize in (False, True):
            policy = build_policy(BOX4, action_space, (3,), normalize_observations=normalize)
            loaded = load_policy(save_policy(policy, tmp_path / "p.keras", {}))
            for model in (policy, loaded):
                distribution_model(model)  # no error


def test_observation_statistics_are_the_running_mean_and_variance():
    # Batches of 3, 1 and 5 observations merge to the mean and population variance of
    # all 9, each observation weighted equally.
    policy = build_policy(BOX4, gym.spaces.Discrete(2), (8,), normalize_observations=True)
    layer = policy.get_layer("observation_normalization")
    np.testing.assert_array_equal(layer.adapt_mean.numpy(), 0.0)  # starts as the identity
    np.testing.assert_array_equal(layer.adapt_variance.numpy(), 1.0)
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (size, 4)) for size in (3, 1, 5)]
    for batch in batches:
        update_observation_statistics(policy, batch)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(layer.adapt_mean.numpy(), everything.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.adapt_variance.numpy(), everything.var(axis=0), rtol=1e-5)
    assert int(layer.count.numpy()) == 9


def test_normalisation_is_live_in_compiled_acting_and_saved_in_the_file(tmp_path):
    # Linear Gaussian mean μ_a = Σ_i (s_i − m_i)/σ_i on normalised observations. At first
    # m = 0, σ = 1: s = [3, 3, 3, 3] gives 12. Statistics from [−1]*4 and [3]*4: m = 1,
    # σ² = 4, so the same s gives Σ (3 − 1)/2 = 4.
    policy = build_policy(BOX4, gym.spaces.Box(-5.0, 5.0, (1,)), (), normalize_observations=True)
    policy.get_layer("mean").set_weights([np.ones((4, 1), np.float32), np.zeros(1, np.float32)])
    act = make_actor(policy, greedy=True)
    np.testing.assert_allclose(act(np.full((1, 4), 3.0)), [[12.0]])  # identity at first
    update_observation_statistics(policy, np.array([[-1.0] * 4, [3.0] * 4]))  # μ 1, σ 2
    # The actor compiled before the update sees the new statistics: Σ (3 − 1)/2 = 4.
    np.testing.assert_allclose(act(np.full((1, 4), 3.0)), [[4.0]], rtol=1e-6)
    np.testing.assert_allclose(policy(np.full((1, 4), 3.0))["mean"], [[4.0]], rtol=1e-6)
    observations = np.random.default_rng(2).normal(1.0, 2.0, (5, 4)).astype(np.float32)
    expected = policy(observations)["mean"].numpy()
    path = save_policy(policy, tmp_path / "normalised.keras", {})
    code_free = load_policy(path)
    np.testing.assert_allclose(code_free(observations)["mean"], expected, rtol=1e-6)
    plain = outputs_in_plain_keras(path, observations, tmp_path, output="mean")
    np.testing.assert_allclose(plain, expected, rtol=1e-6)


def test_value_network_reads_the_policy_statistics():
    policy = build_policy(BOX4, gym.spaces.Discrete(2), (), normalize_observations=True)
    value = build_value(policy, ())
    value.set_weights([np.ones((4, 1), np.float32), np.zeros(1, np.float32)])
    assert len(value.weights) == 2  # the statistics stay the policy's variables
    update_observation_statistics(policy, np.array([[-1.0] * 4, [3.0] * 4]))  # μ 1, σ 2
    np.testing.assert_allclose(value(np.full((1, 4), 3.0)), [[4.0]], rtol=1e-6)


FRAMES = gym.spaces.Box(0, 255, (8, 8, 1), np.uint8)


def test_image_policy_is_rescaling_then_convolutions_of_built_in_layers(tmp_path):
    policy = build_policy(FRAMES, gym.spaces.Discrete(2), (16,), seed=1)
    assert policy.input.dtype == "uint8"  # raw frames in
    pixels = policy.get_layer("pixels")
    assert (pixels.scale, pixels.offset) == (pytest.approx(1 / 255), pytest.approx(0.0))
    # auto → minatar on 8×8: conv 3·3·1·16 + 16 = 160, Flatten 6·6·16 = 576,
    # Dense 576·16 + 16 = 9,232, logits 16·2 + 2 = 34: 9,426 weights.
    assert policy.count_params() == 9_426
    assert torso_size(FRAMES) == (160, 576)
    frames = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1)).astype(np.uint8)
    expected = policy(frames).numpy()
    # The same numbers from float frames scaled by hand: the first layer is x/255.
    scaled = keras.Model(policy.get_layer("pixels").output, policy.output)
    np.testing.assert_allclose(scaled(frames / 255.0), expected, rtol=1e-5)
    path = save_policy(policy, tmp_path / "image.keras", {})
    np.testing.assert_allclose(outputs_in_plain_keras(path, frames, tmp_path), expected, rtol=1e-6)
    actions = make_actor(policy, greedy=True)(frames)
    np.testing.assert_array_equal(actions, expected.argmax(axis=1))


def test_torso_sizes_and_refusals():
    atari = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    # nature: (8·8·4 + 1)·32 + (4·4·32 + 1)·64 + (3·3·64 + 1)·64 = 77,984 weights;
    # 84 → 20 → 9 → 7, so 7·7·64 = 3,136 features.
    assert torso_size(atari) == (77_984, 3_136)
    assert (min_image_side("nature"), min_image_side("minatar")) == (36, 3)
    discrete = gym.spaces.Discrete(2)
    build_policy(gym.spaces.Box(0, 255, (36, 36, 1), np.uint8), discrete, (), torso="nature")
    with pytest.raises(InputError, match="torso: the nature torso needs images of at least 36"):
        build_policy(gym.spaces.Box(0, 255, (35, 40, 1), np.uint8), discrete, (), torso="nature")
    with pytest.raises(InputError, match="torso: the minatar torso needs .* 3×3 pixels"):
        build_policy(gym.spaces.Box(0, 255, (2, 9, 1), np.uint8), discrete, ())
    with pytest.raises(InputError, match="torso: must be auto or mlp for flat observations"):
        build_policy(BOX4, discrete, (), torso="minatar")
    with pytest.raises(InputError, match="normalize_observations: must be off for image"):
        build_policy(FRAMES, discrete, (), normalize_observations=True)
    # Float frames in [-1, 1] map to [0, 1]: x/2 + 1/2; unbounded ones pass as they are.
    signed = build_policy(gym.spaces.Box(-1.0, 1.0, (4, 4, 2)), discrete, ())
    assert (signed.get_layer("pixels").scale, signed.get_layer("pixels").offset) == (0.5, 0.5)
    free = build_policy(gym.spaces.Box(-np.inf, np.inf, (4, 4, 2)), discrete, ())
    assert (free.get_layer("pixels").scale, free.get_layer("pixels").offset) == (1.0, 0.0)


def test_image_value_network_has_its_own_torso():
    policy = build_policy(FRAMES, gym.spaces.Discrete(2), (16,))
    value = build_value(policy, (16,), observation_space=FRAMES)
    assert value.input.dtype == "uint8"
    assert value.count_params() == 160 + 9_232 + 17  # the torso, Dense 16, and v̂ = 16 + 1
    assert not {id(w) for w in value.weights} & {id(w) for w in policy.weights}
