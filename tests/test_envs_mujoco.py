"""Making envs (MuJoCo's settotalmass deprecation silenced, other warnings not) and mapping
sampled actions to the env's: clipped or tanh-squashed into the bounds."""

import gymnasium as gym
import numpy as np
import pytest
from conftest import run_python

from reinforce_tf.errors import InputError
from reinforce_tf.training import envs

# Makes HalfCheetah-v5 (whose XML has the deprecated attribute): a single env first, as
# scripts/evaluate.py's video and the export do (`make_env`), then 2 copies, stepped once.
_MAKE_HALF_CHEETAH = (
    "from reinforce_tf.training.envs import make_env, make_vector_env\n"
    "make_env('HalfCheetah-v5').close()\n"
    "env = make_vector_env('HalfCheetah-v5', 2)\n"
    "env.reset(seed=0)\n"
    "env.step(env.action_space.sample())\n"
    "env.close()\n"
    "print('made')\n"
)


def test_making_half_cheetah_prints_and_writes_nothing(tmp_path):
    # Fresh processes, so no earlier test has installed the hook; their folders start empty.
    # Without it, plain Gymnasium prints the warning and writes MUJOCO_LOG.TXT:
    (tmp_path / "plain").mkdir()
    plain = run_python(
        "import gymnasium as gym\ngym.make('HalfCheetah-v5').close()\n", tmp_path / "plain"
    )
    assert "settotalmass" in plain.stderr
    (tmp_path / "ours").mkdir()
    done = run_python(_MAKE_HALF_CHEETAH, tmp_path / "ours")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "made\n"
    # (TensorFlow's own start-up lines may be there: reinforce_tf/cli/common.py hides those.)
    assert "settotalmass" not in done.stderr
    assert "MuJoCo" not in done.stderr and "WARNING: compiler" not in done.stderr
    assert list((tmp_path / "ours").iterdir()) == []  # no MUJOCO_LOG.TXT


def test_other_mujoco_warnings_still_reach_stderr(capsys):
    envs.mujoco_warning(envs.MUJOCO_DEPRECATION + " and will be removed")
    envs.mujoco_warning("Nan, Inf or huge value in QACC at DOF 0. The simulation is unstable.")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "WARNING: Nan, Inf or huge value in QACC at DOF 0. The simulation is unstable.\n"
    )


def test_tanh_squash_maps_samples_into_the_bounds():
    # Bounds [−2, 2] and [0, 1]: c = [0, ½], h = [2, ½]; a = c + h tanh(u).
    # u = 0 → the centre; u = ±100 → the bounds; u = 0.5: 2 tanh 0.5 = 0.92423431 and
    # ½ + ½ tanh 0.5 = sigmoid(1) = 0.73105858.
    space = gym.spaces.Box(np.float32([-2.0, 0.0]), np.float32([2.0, 1.0]))
    u = np.array([[0.0, 0.0], [100.0, -100.0], [0.5, 0.5]], np.float32)
    actions = envs.to_env_actions(u, space, "tanh")
    assert actions.dtype == np.float32
    np.testing.assert_allclose(
        actions, [[0.0, 0.5], [2.0, 0.0], [0.92423431, 0.73105858]], rtol=1e-6
    )
    # Clipping, the default, keeps u inside the bounds as is.
    np.testing.assert_array_equal(
        envs.to_env_actions(u, space), [[0.0, 0.0], [2.0, 0.0], [0.5, 0.5]]
    )
    np.testing.assert_array_equal(envs.tanh_half_range(space), [2.0, 0.5])


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(-np.inf, np.inf, (2,)),
        gym.spaces.Box(np.float32([0, -1]), np.float32([1, np.inf])),
        gym.spaces.Discrete(3),
    ],
)
def test_tanh_needs_a_box_with_finite_bounds(space):
    with pytest.raises(InputError, match="action_squash: must be clip for action space"):
        envs.tanh_half_range(space)
