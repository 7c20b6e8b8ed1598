"""Evaluation files: videos of episodes, and policies refused for other spaces."""

import os
import sys

import gymnasium as gym
import keras
import numpy as np
import pytest

from reinforce_tf import InputError, build_policy, save_policy
from reinforce_tf.training.evaluate import (
    check_fits,
    evaluate,
    evaluate_modes,
    evaluation_note,
    mode_advice,
    preferred_mode,
    record_video,
    recorded_env,
    recorded_squash,
)


def cartpole_policy():
    env = gym.make("CartPole-v1")
    return build_policy(env.observation_space, env.action_space, (4,))


def linear_cartpole_policy(weights, bias: float) -> keras.Model:
    """A linear softmax policy whose logits are [0, weights · s + bias]."""
    env = gym.make("CartPole-v1")
    policy = build_policy(env.observation_space, env.action_space, ())
    kernel = np.zeros((4, 2), np.float32)
    kernel[:, 1] = weights
    policy.get_layer("logits").set_weights([kernel, np.array([0.0, bias], np.float32)])
    return policy


# Good greedily, poor sampled: push right when 0.1 x + 0.5 ẋ + 10 θ + 2 θ̇ > 0, the logits so
# small that π is within 1% of uniform, so sampling is a random walk (~20 steps).
GREEDY_BALANCER = linear_cartpole_policy(1e-3 * np.array([0.1, 0.5, 10.0, 2.0]), 0.0)
# Poor greedily, better sampled: π(right) = 0.55 everywhere; greedy always pushes right and
# the pole falls in ~9 steps.
SAMPLED_BETTER = linear_cartpole_policy(np.zeros(4), float(np.log(0.55 / 0.45)))


def test_modes_differ_by_more_than_a_tenth_and_two_standard_errors():
    # sampled [10, 30]: mean 20, population variance 100; greedy [9, 9]: mean 9, variance 0.
    # Gap 11 > 0.1 · 20, but the standard error of the gap is √(100/2) = 7.07: 11 < 14.1.
    assert preferred_mode(np.array([10.0, 30.0]), np.array([9.0, 9.0])) is None
    # Four episodes of each: standard error √(100/4) = 5, so 11 > 10 and sampled wins.
    assert preferred_mode(np.array([10.0, 30.0] * 2), np.array([9.0] * 4)) == "sampled"
    # sampled mean 100 (variance 100, 4 episodes: error 5), greedy 120: gap 20 > 12 and > 10.
    assert preferred_mode(np.array([90.0, 110.0] * 2), np.array([120.0] * 4)) == "greedy"
    # No spread at all (error 0), but a gap of 1 in 500 is within a tenth: the same.
    assert preferred_mode(np.array([500.0] * 4), np.array([499.0] * 4)) is None


def test_policies_good_only_greedily_or_only_sampled_are_told_apart():
    greedy_balancer = evaluate_modes(GREEDY_BALANCER, "CartPole-v1", 20)
    np.testing.assert_array_equal(greedy_balancer["greedy"], 500.0)  # balances to the limit
    assert greedy_balancer["sampled"].mean() < 50
    assert mode_advice(greedy_balancer) == (
        f"this policy scores 500.00 with greedy actions against "
        f"{greedy_balancer['sampled'].mean():.2f} with sampled ones: take its most probable "
        "action (the mean for a Box)"
    )
    note = evaluation_note(greedy_balancer)
    assert (note["episodes"], note["preferred_mode"], note["greedy"]) == (
        20,
        "greedy",
        {"mean": 500.0, "std": 0.0},
    )
    sampled_better = evaluate_modes(SAMPLED_BETTER, "CartPole-v1", 20)
    assert sampled_better["greedy"].max() < 12 <= sampled_better["sampled"].mean()
    assert evaluation_note(sampled_better)["preferred_mode"] == "sampled"
    assert mode_advice(sampled_better).endswith(
        "with greedy ones: draw its actions from the distribution it outputs, as REINFORCE "
        "trained it"
    )
    # One mode alone gives no advice.
    assert mode_advice({"greedy": greedy_balancer["greedy"]}) is None


def test_evaluate_script_plays_both_modes_and_says_which_to_use(script, tmp_path):
    save_policy(GREEDY_BALANCER, tmp_path / "policy.keras", {"env": "CartPole-v1"})
    done = script("evaluate.py", "--episodes=20", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    sampled, greedy, advice = done.stdout.splitlines()
    assert sampled.startswith("CartPole-v1, 20 episodes, sampled actions: return ")
    assert greedy == (
        "CartPole-v1, 20 episodes, greedy actions: return 500.00 ± 0.00 (min 500.00, max 500.00)"
    )
    assert advice.startswith("this policy scores 500.00 with greedy actions against ")


def test_video_records_each_episode_as_mp4(tmp_path):
    returns = record_video(cartpole_policy(), "CartPole-v1", 2, tmp_path / "videos", seed=5)
    videos = sorted((tmp_path / "videos").iterdir())
    assert [v.name for v in videos] == [
        "CartPole-v1-sampled-episode-0.mp4",
        "CartPole-v1-sampled-episode-1.mp4",
    ]
    for video in videos:
        assert video.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    # The near-uniform policy's returns: whole CartPole episodes (+1 per step, ≥ 8 steps).
    assert returns.shape == (2,)
    assert np.all(returns >= 8) and np.all(returns == np.round(returns))


def test_video_without_moviepy_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "moviepy", None)  # import moviepy now raises ImportError
    with pytest.raises(InputError) as error:
        record_video(cartpole_policy(), "CartPole-v1", 1, tmp_path / "videos")
    assert str(error.value) == (
        'video_dir: recording needs moviepy: install the extra reinforce_tf[video] (in the checkout: pip install ".[video]")'
    )
    assert list(tmp_path.iterdir()) == []


def test_policy_for_other_spaces_is_refused_naming_both(tmp_path):
    note = {
        "env": "CartPole-v1",
        "observation_space": str(gym.make("CartPole-v1").observation_space),
        "action_space": "Discrete(2)",
    }
    acrobot = gym.make("Acrobot-v1")
    with pytest.raises(InputError) as error:
        evaluate(cartpole_policy(), "Acrobot-v1", 1, trained_on=note)
    assert str(error.value) == (
        f"policy: was trained on CartPole-v1 with observation space {note['observation_space']} "
        f"and action space Discrete(2); the env has observation space "
        f"{acrobot.observation_space} and action space {acrobot.action_space}"
    )


def test_discrete_policy_is_refused_for_box_actions_of_the_same_size(tmp_path):
    # A 2-action Discrete policy on an env with 2-dimensional Box actions: sizes agree,
    # kinds do not.
    policy = cartpole_policy()
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    observations = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    with pytest.raises(InputError, match=r"size 4 and 2 action outputs \(discrete\)"):
        check_fits(policy, observations, box)


def test_evaluate_script_refuses_other_spaces_and_records_video(script, tmp_path):
    env = gym.make("CartPole-v1")
    note = {
        "env": "CartPole-v1",
        "observation_space": str(env.observation_space),
        "action_space": str(env.action_space),
    }
    save_policy(cartpole_policy(), tmp_path / "policy.keras", note)
    done = script("evaluate.py", "--env=Pendulum-v1", cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: --policy: was trained on CartPole-v1 with observation space")
    assert "action space Discrete(2); the env has observation space Box(" in line
    assert line.endswith("and action space Box(-2.0, 2.0, (1,), float32)")
    done = script("evaluate.py", "--episodes=1", "--video_dir=videos", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no pygame banner or SDL noise
    assert done.stdout.startswith(
        "videos saved in videos\nCartPole-v1, 1 episodes, sampled actions: return"
    )
    assert "\nCartPole-v1, 1 episodes, greedy actions: return" in done.stdout
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == [
        "CartPole-v1-greedy-episode-0.mp4",
        "CartPole-v1-sampled-episode-0.mp4",
    ]


# Text from the policy file went raw into one-line messages.


def test_note_text_is_quoted_printable_in_the_refusal():
    note = {
        "env": "CartPole-v1\x1b[2J",  # an ANSI "clear screen"
        "observation_space": "Box(4,)\nerror: forged second line",
        "action_space": "Discrete(2)" + "x" * 500,
    }
    with pytest.raises(InputError) as error:
        check_fits(cartpole_policy(), gym.spaces.Box(-1, 1, (6,)), gym.spaces.Discrete(3), note)
    message = str(error.value)
    assert message.isprintable()
    assert message.startswith(
        "policy: was trained on CartPole-v1\\x1b[2J with observation space "
        "Box(4,)\\nerror: forged second line and action space Discrete(2)xxx"
    )
    # The 511-character action space is cut to 200 characters, the last one "…".
    assert ("Discrete(2)" + "x" * 188 + "…; the env has") in message


def test_note_env_that_is_not_an_id_is_refused_quoted():
    assert recorded_env({"env": "ale_py:ALE/Pong-v5"}) == "ale_py:ALE/Pong-v5"
    assert recorded_env({}) is None
    for env in ("CartPole-v1\x1b[31m", "CartPole v1", 7, "x" * 300):
        with pytest.raises(InputError) as error:
            recorded_env({"env": env})
        message = str(error.value)
        assert message.startswith("policy: the policy file records the env ")
        assert message.endswith(", which is not a Gymnasium id; pass --env")
        assert message.isprintable() and len(message) < 200


def test_note_squash_defaults_to_clip_and_refuses_others():
    # Files from before tanh squashing record none: their actions were clipped.
    assert recorded_squash({}) == "clip"
    assert recorded_squash({"action_squash": "tanh"}) == "tanh"
    with pytest.raises(InputError) as error:
        recorded_squash({"action_squash": "sigmoid\x1b"})
    assert str(error.value) == (
        "policy: the policy file records the action squash 'sigmoid\\x1b', not one of clip, tanh"
    )


def test_greedy_tanh_evaluation_acts_by_the_squashed_mean():
    # Pendulum (bounds ±2), a policy whose mean is 0.5 everywhere: greedy clip plays 0.5,
    # greedy tanh plays 2 tanh(0.5) = 0.924; the same start states, so the returns differ.
    env = gym.make("Pendulum-v1")
    policy = build_policy(env.observation_space, env.action_space, ())
    mean = policy.get_layer("mean")
    mean.set_weights([np.zeros((3, 1), np.float32), np.float32([0.5])])
    clipped = evaluate(policy, "Pendulum-v1", 2, greedy=True)
    squashed = evaluate(policy, "Pendulum-v1", 2, greedy=True, action_squash="tanh")
    mean.set_weights([np.zeros((3, 1), np.float32), np.float32([2 * np.tanh(0.5)])])
    np.testing.assert_allclose(evaluate(policy, "Pendulum-v1", 2, greedy=True), squashed, rtol=1e-5)
    assert not np.allclose(clipped, squashed)


# An unwritable --video_dir was found only after playing.


def test_video_dir_that_cannot_be_made_is_refused_before_playing(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    cases = {
        tmp_path / "file": f"{str(tmp_path / 'file')!r} is a file",
        tmp_path / "file" / "videos": (
            f"{str(tmp_path / 'file')!r} is a file; cannot make the folder "
            f"{str(tmp_path / 'file' / 'videos')!r} in it"
        ),
    }
    for video_dir, reason in cases.items():
        with pytest.raises(InputError) as error:
            record_video(cartpole_policy(), "CartPole-v1", 1, video_dir)
        assert str(error.value) == f"video_dir: {reason}"
    # A folder without write permission (simulated: this check must hold for root too,
    # whom a chmod 0500 does not stop).
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(InputError) as error:
        record_video(cartpole_policy(), "CartPole-v1", 1, tmp_path / "a" / "videos")
    assert str(error.value) == (
        f"video_dir: folder {str(tmp_path)!r} is not writable; cannot make the folder "
        f"{str(tmp_path / 'a' / 'videos')!r} in it"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # nothing made or played


def test_evaluate_script_refuses_bad_files_in_one_line(script, tmp_path):
    # A Keras model with a layer named "logits" (Sequential: no `.input`).
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="logits")]).save(
        tmp_path / "sequential.keras"
    )
    # A note whose env carries an ANSI escape and a newline.
    save_policy(cartpole_policy(), tmp_path / "ansi.keras", {"env": "CartPole-v1\x1b[2J\nx"})
    (tmp_path / "file").write_text("")
    expected = {
        ("--policy=sequential.keras", "--env=CartPole-v1"): (
            "error: --policy: is not a reinforce_tf policy: it is not a functional Keras model "
            "with one input and defined outputs"
        ),
        ("--policy=ansi.keras",): (
            "error: --policy: the policy file records the env 'CartPole-v1\\x1b[2J\\nx', which "
            "is not a Gymnasium id; pass --env"
        ),
        ("--policy=ansi.keras", "--video_dir=file/videos"): (
            "error: --video_dir: 'file' is a file; cannot make the folder 'file/videos' in it"
        ),
    }
    for flags, line in expected.items():
        done = script("evaluate.py", *flags, cwd=tmp_path)
        assert (done.returncode, done.stderr, done.stdout) == (2, line + "\n", "")
