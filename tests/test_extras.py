"""Each optional feature without its extra installed: one line naming the extra, nothing
written. The packages are hidden from the process (a None entry in sys.modules, or a package
on PYTHONPATH that fails to import), as on a core install."""

import sys

import pytest

from reinforce_tf import extras
from reinforce_tf.errors import InputError
from reinforce_tf.training.envs import make_env


def test_the_message_names_the_extra_and_the_flag():
    error = extras.missing("needs Ray", "ray", field="workers")
    assert (error.field, error.reason) == (
        "workers",
        'needs Ray: install the extra reinforce_tf[ray] (in the checkout: pip install ".[ray]")',
    )
    with pytest.raises(ValueError, match="no extra 'rays'"):
        extras.missing("needs Ray", "rays")


@pytest.mark.parametrize(
    "env_id, hidden, reason",
    [
        ("ALE/Pong-v5", "ale_py", """'ALE/Pong-v5' needs ale-py: install the extra reinforce_tf[atari] (in the checkout: pip install ".[atari]")"""),
        ("MinAtar/Breakout-v1", "minatar", """'MinAtar/Breakout-v1' needs MinAtar: install the extra reinforce_tf[minatar] (in the checkout: pip install ".[minatar]")"""),
        ("HalfCheetah-v5", "mujoco", """'HalfCheetah-v5' needs MuJoCo: install the extra reinforce_tf[mujoco] (in the checkout: pip install ".[mujoco]")"""),
    ],
)  # fmt: skip
def test_an_env_id_whose_extra_is_missing_names_it(monkeypatch, env_id, hidden, reason):
    for name in [name for name in sys.modules if name.split(".")[0] == hidden]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, hidden, None)  # `import hidden` raises ImportError
    if hidden == "minatar":
        monkeypatch.setitem(sys.modules, "minatar.gym", None)
    with pytest.raises(InputError) as error:
        make_env(env_id)
    assert (error.value.field, error.value.reason) == ("env", reason)


def _hide(folder, package: str) -> None:
    """A package in `folder` that fails to import, as if it were not installed."""
    (folder / package).mkdir()
    (folder / package / "__init__.py").write_text(f"raise ImportError('no {package} here')\n")


def test_plotting_without_matplotlib_names_the_plot_extra(script, tmp_path):
    _hide(tmp_path, "matplotlib")
    (tmp_path / "run").mkdir()
    done = script("plot.py", "run", "--out=curve.png", cwd=tmp_path, pythonpath=str(tmp_path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        'error: plotting needs matplotlib: install the extra reinforce_tf[plot] (in the checkout: pip install ".[plot]")\n'
    )
    assert not (tmp_path / "curve.png").exists()


def test_video_without_moviepy_names_the_video_extra(script, tmp_path):
    _hide(tmp_path, "moviepy")
    import gymnasium as gym

    from reinforce_tf import build_policy, save_policy

    env = gym.make("CartPole-v1")
    save_policy(
        build_policy(env.observation_space, env.action_space, (4,)),
        tmp_path / "policy.keras",
        {"env": "CartPole-v1"},
    )
    done = script("evaluate.py", "--video_dir=videos", cwd=tmp_path, pythonpath=str(tmp_path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        'error: --video_dir: recording needs moviepy: install the extra reinforce_tf[video] (in the checkout: pip install ".[video]")\n'
    )
    assert not (tmp_path / "videos").exists()
