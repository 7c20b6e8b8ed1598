"""Evaluation files: videos of episodes, and policies refused for other spaces."""

import sys

import gymnasium as gym
import numpy as np
import pytest

from reinforce_tf import InputError, build_policy, save_policy
from reinforce_tf.training.evaluate import check_fits, evaluate, record_video


def cartpole_policy():
    env = gym.make("CartPole-v1")
    return build_policy(env.observation_space, env.action_space, (4,))


def test_video_records_each_episode_as_mp4(tmp_path):
    returns = record_video(cartpole_policy(), "CartPole-v1", 2, tmp_path / "videos", seed=5)
    videos = sorted((tmp_path / "videos").iterdir())
    assert [v.name for v in videos] == ["CartPole-v1-episode-0.mp4", "CartPole-v1-episode-1.mp4"]
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
        "video_dir: recording needs moviepy, which is not installed: pip install moviepy"
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
    assert done.stdout.startswith("videos saved in videos\nCartPole-v1, 1 episodes")
    assert [p.name for p in (tmp_path / "videos").iterdir()] == ["CartPole-v1-episode-0.mp4"]
