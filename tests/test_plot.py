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


# A damaged run folder or an unwritable --out was a traceback.

HEADER = "episode,step,return,length,wall_time\n"


@pytest.mark.parametrize(
    "text, reason",
    [
        (b"\xff\xfe\x00garbage\n", "it is not UTF-8 text"),
        (b"a,b\n1,2\n", "its first line is not the header episode,step,return,length,wall_time"),
        (HEADER.encode() + b"1,20,10.0,20\n", "line 2 has 4 fields, not 5"),
        (HEADER.encode() + b"1,x\x1b[2J,10.0,20,0.0\n", "line 2 has a step or return that is"),
        (HEADER.encode() + b"1,20,10.0,20,0.0\n2,10,5.0,20,0.0\n", "its steps go down at line 3"),
    ],
)
def test_read_run_refuses_a_damaged_episodes_csv(tmp_path, text, reason):
    (tmp_path / "episodes.csv").write_bytes(text)
    with pytest.raises(InputError) as error:
        read_run(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{str(tmp_path / 'episodes.csv')!r} is not a valid episodes.csv: ")
    assert reason in message and message.isprintable()


def test_read_run_ignores_a_partial_last_line(tmp_path):
    (tmp_path / "episodes.csv").write_text(HEADER + "1,20,10.0,20,0.0\n2,40,3")  # mid-write
    run = read_run(tmp_path)
    np.testing.assert_array_equal(run.steps, [20])
    np.testing.assert_allclose(run.returns, [10.0])


@pytest.mark.parametrize(
    "text, reason",
    [
        (b'{"env": "CartPole-v1"', "is not valid JSON: Expecting ',' delimiter at line 1"),
        (b"\xff{}", "is not valid JSON: it is not UTF-8 text"),
        (b"[1, 2]", "is not a run's config: not a JSON object"),
        (b'{"env": ["CartPole-v1"]}', "is not a run's config: its env is not text"),
    ],
)
def test_read_run_refuses_a_damaged_config(tmp_path, text, reason):
    (tmp_path / "episodes.csv").write_text(HEADER + "1,20,10.0,20,0.0\n")
    (tmp_path / "config.json").write_bytes(text)
    with pytest.raises(InputError) as error:
        read_run(tmp_path)
    assert str(error.value).startswith(f"{str(tmp_path / 'config.json')!r} {reason}")


def test_plot_script_refuses_damaged_runs_and_unwritable_out_in_one_line(script, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "episodes.csv").write_text(HEADER + "1,20,10.0,20,0.0\n")
    (tmp_path / "run" / "config.json").write_text("{not json")
    (tmp_path / "file").write_text("")
    (tmp_path / "x.png").mkdir()
    (tmp_path / "kept.png").write_bytes(b"old bytes")
    expected = {
        ("run", "--out=kept.png"): (
            "error: 'run/config.json' is not valid JSON: Expecting property name enclosed in "
            "double quotes at line 1 column 2"
        ),
        ("run", "--out=file/curve.png"): "error: --out: 'file' is not a folder",
        ("run", "--out=x.png"): "error: --out: 'x.png' is a folder; give a file name ending "
        'in ".png"',
        ("run", "--out=missing/curve.png"): "error: --out: folder 'missing' does not exist",
    }
    for args, line in expected.items():
        done = script("plot.py", *args, cwd=tmp_path)
        assert (done.returncode, done.stderr, done.stdout) == (2, line + "\n", "")
    assert (tmp_path / "kept.png").read_bytes() == b"old bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "kept.png", "run", "x.png"]
