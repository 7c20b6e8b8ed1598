"""Learning curves: the running mean by hand, grouping seeds, and the PNG the script writes."""

import numpy as np
import pytest

from reinforce_tf import InputError
from reinforce_tf.training.curves import Run, curves, read_run, running_mean
from reinforce_tf.training.episode_log import EpisodeLog


def test_running_mean_by_hand():
    # Episodes end at steps 10, 30, 60 with returns 10, 20, 30; window 2.
    # x=5: none ended → nan; x=30: (10+20)/2 = 15; x=59: same; x=100: (20+30)/2 = 25.
    got = running_mean(
        np.array([10, 30, 60]), np.array([10.0, 20.0, 30.0]), np.array([5, 30, 59, 100]), 2
    )
    np.testing.assert_allclose(got, [np.nan, 15.0, 15.0, 25.0])


def test_seeds_of_one_config_make_one_curve_with_min_max():
    config = {"env": "CartPole-v1", "learning_rate": 0.01}
    a = Run(None, {**config, "seed": 0}, np.array([10, 20]), np.array([10.0, 10.0]))
    b = Run(None, {**config, "seed": 1}, np.array([10, 30]), np.array([20.0, 40.0]))
    other = Run(None, {**config, "learning_rate": 0.1}, np.array([5]), np.array([5.0]))
    first, second = curves([a, b, other], points=3, window=100)
    # Grid 0 … min last step (20): [0, 10, 20]. a: [nan, 10, 10]; b: [nan, 20, 20].
    np.testing.assert_allclose(first.steps, [0, 10, 20])
    np.testing.assert_allclose(first.mean, [np.nan, 15.0, 15.0])
    np.testing.assert_allclose(first.low, [np.nan, 10.0, 10.0])
    np.testing.assert_allclose(first.high, [np.nan, 20.0, 20.0])
    assert (first.seeds, second.seeds) == (2, 1)
    assert first.label == "CartPole-v1 (learning_rate=0.01)"
    assert second.label == "CartPole-v1 (learning_rate=0.1)"


def test_read_run_refuses_folders_without_episodes(tmp_path):
    with pytest.raises(InputError, match="is not a run folder: it has no episodes.csv"):
        read_run(tmp_path)
    EpisodeLog(tmp_path).close()
    with pytest.raises(InputError, match="holds no finished episode yet"):
        read_run(tmp_path)


def test_plot_script_writes_a_png(script, tmp_path):
    for seed in range(2):
        (tmp_path / f"seed{seed}").mkdir()
        log = EpisodeLog(tmp_path / f"seed{seed}")
        steps = np.arange(1, 51) * 20
        log.append(1, steps, np.linspace(10, 100 + seed, 50), np.full(50, 20))
        log.close()
    (tmp_path / "seed0").joinpath("config.json").write_text('{"env": "CartPole-v1"}')
    (tmp_path / "seed1").joinpath("config.json").write_text('{"env": "CartPole-v1"}')
    done = script("plot.py", "seed0", "seed1", "--out=curve.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.strip() == "learning curve of 2 runs saved to curve.png"
    data = (tmp_path / "curve.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000
    done = script("plot.py", "nowhere", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: 'nowhere' is not a run folder: it has no episodes.csv"
