"""Envs from any id: "module:EnvId", make kwargs, the atari and flatten presets, MinAtar, and
the one-line refusals of a bad module, id or kwargs."""

import dataclasses
import textwrap

import gymnasium as gym
import numpy as np
import pytest

from reinforce_tf import TrainConfig, train
from reinforce_tf.errors import InputError
from reinforce_tf.training.envs import env_spec, make_env, make_vector_env
from reinforce_tf.training.run_folder import default_run_folder
from reinforce_tf.training.saving import load_metadata, load_policy

# Observation [t] after t steps, reward 1 per step, truncated by the env after `length` steps.
COUNTER = """
import gymnasium as gym
import numpy as np


class Counter(gym.Env):
    observation_space = gym.spaces.Box(0.0, 100.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length=4):
        self.length = length

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, False, self.t == self.length, {}
"""


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Writes a module `name` with `source` where `import` finds it; returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


def test_module_id_imports_the_module_and_makes_the_env_with_its_kwargs(module):
    name = module(
        "counter_env_a",
        COUNTER + 'gym.register("CounterA-v0", entry_point=Counter, max_episode_steps=50)\n',
    )
    assert env_spec(f"{name}:CounterA-v0").id == "CounterA-v0"  # gymnasium.spec alone fails
    env = make_vector_env(f"{name}:CounterA-v0", 1, {"length": 3})
    assert env.spec.max_episode_steps == 50
    env.reset(seed=0)
    # Steps 1, 2, 3 (truncated at length 3), then next-step autoreset's reset step: [0].
    seen = [env.step(np.array([0])) for _ in range(4)]
    assert [float(obs[0, 0]) for obs, *_ in seen] == [1.0, 2.0, 3.0, 0.0]
    assert [bool(truncated[0]) for *_, truncated, _ in seen] == [False, False, True, False]
    env.close()
    # max_episode_steps in the kwargs is make's time limit, and the rollout's bound.
    limited = make_vector_env(f"{name}:CounterA-v0", 1, {"max_episode_steps": 2})
    assert limited.spec.max_episode_steps == 2
    limited.reset(seed=0)
    assert [bool(limited.step(np.array([0]))[3][0]) for _ in range(2)] == [False, True]
    limited.close()


@pytest.mark.parametrize(
    "name, source, kwargs, field, message",
    [
        ("no_such_module_q", None, None, "env", "cannot import module 'no_such_module_q'"),
        (
            "bad_env_raises",
            "raise RuntimeError('broken on purpose')",
            None,
            "env",
            (
                "cannot import module 'bad_env_raises' of 'bad_env_raises:Counter-v0' "
                "(RuntimeError: broken on purpose)"
            ),
        ),
        (
            "bad_env_silent",
            "x = 1",
            None,
            "env",
            "importing 'bad_env_silent' registered no environment 'Counter-v0'",
        ),
        (
            "bad_env_kwargs",
            COUNTER + 'gym.register("Counter-v0", entry_point=Counter)',
            {"colour": "red"},
            "env_kwargs",
            (
                "making 'bad_env_kwargs:Counter-v0' with env_kwargs {'colour': 'red'} (preset none) "
                "failed: TypeError"
            ),
        ),
    ],
)
def test_a_bad_module_id_or_kwargs_is_one_line(module, name, source, kwargs, field, message):
    if source is not None:
        module(name, source)
    with pytest.raises(InputError) as error:
        make_vector_env(f"{name}:Counter-v0", 2, kwargs)
    assert error.value.field == field
    assert message in error.value.reason
    assert "\n" not in str(error.value)


def test_run_folder_names_are_one_folder_for_any_id():
    assert default_run_folder("mygame:Toy-v0", 3, "20260101-120000") == (
        "runs/mygame_Toy-v0__seed3__20260101-120000"
    )
    assert default_run_folder("ALE/Pong-v5", 0, "x") == "runs/ALE_Pong-v5__seed0__x"


def test_flatten_preset_makes_tuple_observations_a_vector():
    with pytest.raises(InputError, match="env: observation space Tuple.*--preset=flatten"):
        make_vector_env("Blackjack-v1", 2)
    env = make_vector_env("Blackjack-v1", 2, preset="flatten")
    # Tuple(Discrete(32), Discrete(11), Discrete(2)) → one-hot blocks of 32 + 11 + 2 = 45.
    assert env.single_observation_space.shape == (45,)
    observations, _ = env.reset(seed=0)
    np.testing.assert_array_equal(observations.sum(axis=1), [3, 3])  # one hot per block
    env.close()


def test_atari_preset_is_gymnasiums_wrappers_the_same_for_one_env_and_many():
    env = make_vector_env("ALE/Pong-v5", 2)  # the atari preset by default for ALE ids
    space = env.single_observation_space
    assert (space.shape, space.dtype) == ((84, 84, 4), np.uint8)
    # The ALE's limit of 108,000 frames per episode, over the frame skip of 4.
    assert env.spec.max_episode_steps == 27_000
    observations, _ = env.reset(seed=3)
    # At reset the stack holds the first frame 4 times (FrameStackObservation's padding).
    np.testing.assert_array_equal(observations[..., 0], observations[..., 3])
    stepped = env.step(np.array([0, 1]))[0]
    assert (stepped.shape, stepped.dtype) == ((2, 84, 84, 4), np.uint8)
    np.testing.assert_array_equal(stepped[..., :3], observations[..., 1:])  # shifted by one
    env.close()
    single = make_env("ALE/Pong-v5")  # video's env: the same wrappers
    first, _ = single.reset(seed=3)
    np.testing.assert_array_equal(first, observations[0])
    single.close()
    assert isinstance(make_env("ALE/Pong-v5", preset="none").observation_space, gym.spaces.Box)


def test_atari_and_minatar_train_and_save(tmp_path):
    # A budget smaller than one Pong episode: the collection is dropped, the pipeline runs.
    pong = TrainConfig.for_env(
        "ALE/Pong-v5", total_steps=200, batch_episodes=1, save_path=str(tmp_path / "pong.keras")
    )
    assert train(pong, progress=None).steps == 0
    note = load_metadata(tmp_path / "pong.keras")
    assert (note["preset"], note["env_kwargs"]) == ("atari", {})
    assert load_policy(tmp_path / "pong.keras").input.dtype == "uint8"
    minatar = TrainConfig.for_env(
        "MinAtar/Breakout-v1",
        total_steps=1_000,
        batch_episodes=4,
        save_path=str(tmp_path / "breakout.keras"),
    )
    result = train(minatar, progress=None)
    assert result.episodes >= 4 and result.steps <= 1_000
    policy = load_policy(tmp_path / "breakout.keras")
    assert (policy.input.dtype, tuple(policy.input.shape[1:])) == ("bool", (10, 10, 4))
    # Same seed, same run: the conv torso's updates repeat bit for bit too.
    again = train(dataclasses.replace(minatar, save_path=str(tmp_path / "again.keras")), None)
    np.testing.assert_array_equal(again.episode_returns, result.episode_returns)
    for first, second in zip(
        policy.get_weights(), load_policy(tmp_path / "again.keras").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(
    "code, shown", [("0", "0"), ("'gone'", "'gone'"), ("'\\x1b[31mred'", "'\\x1b[31mred'")]
)
def test_sys_exit_while_importing_is_one_line_quoted(module, code, shown):
    name = module(f"exit_env_{len(code)}", f"import sys\n\nsys.exit({code})\n")
    with pytest.raises(InputError) as error:
        env_spec(f"{name}:Toy-v0")
    assert error.value.field == "env"
    assert f"importing module {name!r} of '{name}:Toy-v0' called sys.exit({shown})" in (
        error.value.reason
    )
    assert "\x1b" not in error.value.reason


def test_ctrl_c_while_importing_stays_an_interruption(module):
    # Not an InputError: the scripts print their one "interrupted" line and exit 130.
    name = module("interrupted_env", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        env_spec(f"{name}:Toy-v0")


def _exits_when_made(**kwargs):
    raise SystemExit(0)


def test_an_env_whose_constructor_exits_is_one_line():
    # Before: SystemExit passed through making the env, and the trainer exited 0.
    gym.register("ExitsWhenMade-v0", entry_point=_exits_when_made)
    with pytest.raises(InputError) as error:
        make_env("ExitsWhenMade-v0")
    assert error.value.field == "env"
    assert error.value.reason == "making 'ExitsWhenMade-v0' (preset none) failed: SystemExit: 0"
