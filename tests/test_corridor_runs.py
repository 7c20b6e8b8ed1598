"""Many corridor runs in one model equal the same runs through the plain per-step agent."""

import numpy as np
import pytest

from reinforce_tf.agent import Reinforce
from reinforce_tf.exact.corridor_runs import CorridorRuns, run_models
from reinforce_tf.exact.short_corridor import ShortCorridor
from reinforce_tf.optimizers import SGD


def test_initial_policy_and_observation():
    # θ = [0, ln(0.05/0.95)] → π(right) = 0.05 in every run; one run's input is the
    # corridor's own observation [1.0].
    runs = CorridorRuns(4, 2.0**-13)
    np.testing.assert_allclose(runs.probabilities_right(), 0.05, rtol=1e-6)
    policy, _ = run_models(1)
    assert policy.input_shape[1:] == ShortCorridor().observation_space.shape


@pytest.mark.parametrize("baseline_step_size", [None, 2.0**-6])
def test_batched_runs_equal_single_runs_of_update_per_step(baseline_step_size):
    # Replay each run's episodes through its own Reinforce.update_per_step (observation [1.0],
    # G_t = −(T − t)); θ (and w) must match the run's row of the batched model.
    step_size = 2.0**-9
    runs = CorridorRuns(3, step_size, baseline_step_size=baseline_step_size, seed=4)
    episodes = []
    for _ in range(4):
        actions, valid = runs.play()
        episodes.append((actions, valid))
        runs.learn(actions, valid)
    for run in range(3):
        policy, value = run_models(1)
        with_value = baseline_step_size is not None
        agent = Reinforce(
            policy,
            SGD(step_size),
            value=value if with_value else None,
            value_optimizer=SGD(baseline_step_size) if with_value else None,
        )
        for actions, valid in episodes:
            length = int(valid[:, run].sum())
            agent.update_per_step(
                np.ones((length, 1), np.float32),
                actions[:length, run],
                np.arange(length, dtype=np.float32) - length,
            )
        np.testing.assert_allclose(
            runs.policy.get_layer("logits").get_weights()[0][run],
            policy.get_layer("logits").get_weights()[0][0],
            rtol=1e-5,
            atol=1e-6,
        )
        if with_value:
            np.testing.assert_allclose(
                runs.agent.value.get_weights()[0][run], value.get_weights()[0][0], rtol=1e-5
            )
    # The runs learned something: θ moved away from its start.
    assert not np.allclose(runs.probabilities_right(), 0.05)


def test_reproduce_script_writes_csv_and_plot(script, tmp_path):
    done = script(
        "reproduce_sutton_barto.py",
        "--runs=2",
        "--episodes=5",
        f"--output_dir={tmp_path}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "v* = -11.66" in done.stdout
    table = np.loadtxt(tmp_path / "sutton_barto.csv", delimiter=",", skiprows=1)
    assert table.shape == (5, 5)
    np.testing.assert_array_equal(table[:, 0], [1, 2, 3, 4, 5])
    assert (table[:, 1:] <= -1).all()  # every episode takes at least 1 step of reward −1
    assert (tmp_path / "sutton_barto.png").stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sutton_barto.csv", "sutton_barto.png"]
    bad = script("reproduce_sutton_barto.py", f"--output_dir={tmp_path / 'missing'}", cwd=tmp_path)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "--output_dir" in bad.stderr


def test_reproduce_script_refuses_an_output_it_cannot_write_before_the_runs(script, tmp_path):
    # A folder where the CSV would go: refused at once (no runs, no traceback), nothing
    # written; before, the runs went first and the write ended in a traceback.
    (tmp_path / "sutton_barto.csv").mkdir()
    done = script(
        "reproduce_sutton_barto.py", "--runs=1", "--episodes=2", f"--output_dir={tmp_path}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: --output_dir: '{tmp_path}/sutton_barto.csv' is a folder; give a file name "
        'ending in ".csv"\n'
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sutton_barto.csv"]
