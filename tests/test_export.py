"""Exports (SavedModel, LiteRT, ONNX): each, run by its own runtime in a process that never
imports reinforce_tf, gives the .keras policy's outputs; the scripts; nothing half-written."""

import errno
import json
import os
import shutil
import subprocess
import sys

import gymnasium as gym
import keras
import numpy as np
import pytest

from reinforce_tf import InputError, build_policy, evaluate, save_policy
from reinforce_tf.errors import ExportError
from reinforce_tf.policy import distribution_model, update_observation_statistics
from reinforce_tf.training import export as export_module
from reinforce_tf.training import exported as exported_module
from reinforce_tf.training.envs import make_env
from reinforce_tf.training.export import export_file, export_policy
from reinforce_tf.training.exported import (
    FORMATS,
    export_format,
    load_any_policy,
    load_exported,
)


class Frames(gym.Env):
    """Raw uint8 frames [12, 12, 3] (an Atari frame's dtype, smaller), 3 actions, reward =
    the action, 30 steps an episode. Each frame's pixels are uniform in [0, m) for its own
    m in [1, 256], so frames differ in brightness and a policy's greedy actions vary."""

    observation_space = gym.spaces.Box(0, 255, (12, 12, 3), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def _frame(self) -> np.ndarray:
        high = self.np_random.integers(1, 257)
        return self.np_random.integers(0, high, self.observation_space.shape, np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._frame(), {}

    def step(self, action):
        self.steps += 1
        return self._frame(), float(action), self.steps == 30, False, {}


gym.register("tests/Frames-v0", entry_point=Frames)

# The policies every format is checked on: (env, observation normalisation). The images
# (a conv torso: Rescaling, Conv2D, Flatten, Dense) only without: normalisation is refused
# for them. Frames are uint8 [12, 12, 3]; MinAtar's are bool [10, 10, 4].
KINDS = {
    "discrete": ("CartPole-v1", False),
    "discrete_normalized": ("CartPole-v1", True),
    "box": ("Pendulum-v1", False),
    "box_normalized": ("Pendulum-v1", True),
    "discrete_image": ("tests/Frames-v0", False),
    "discrete_image_bool": ("MinAtar/Breakout-v1", False),
}
NAMES = {"saved_model": "{}_savedmodel", "litert": "{}.tflite", "onnx": "{}.onnx"}
OBSERVATIONS = 1000

# Loads each export with its own runtime and numpy alone, as a user who never installed
# reinforce_tf would (the README's snippets), and saves its outputs. Argument: a JSON list of
# {"format", "path", "observations" (a .npy file), "out" (a .npz file)}. Prints, per export,
# its input names, its outputs' dtypes and the env its note records.
RUN_EXPORTS = r"""
import json, sys
import numpy as np

report = {}
for job in json.loads(sys.argv[1]):
    path, observations = job["path"], np.load(job["observations"])
    if job["format"] == "saved_model":
        import tensorflow as tf
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures["serving_default"]
        inputs = list(serve.structured_input_signature[1])
        outputs = {k: v.numpy() for k, v in serve(observation=tf.constant(observations)).items()}
        note = open(path + "/assets.extra/reinforce_tf.json").read()
    elif job["format"] == "litert":
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path=path).get_signature_runner("serving_default")
        inputs = list(runner.get_input_details())
        outputs = runner(observation=observations)
        model = schema.Model.GetRootAs(open(path, "rb").read(), 0)
        entries = [model.Metadata(i) for i in range(model.MetadataLength())]
        (buffer,) = [e.Buffer() for e in entries if e.Name() == b"reinforce_tf"]
        note = model.Buffers(buffer).DataAsNumpy().tobytes().decode()
    else:
        import onnxruntime
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        inputs = [i.name for i in session.get_inputs()]
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(names, {"observation": observations})))
        note = session.get_modelmeta().custom_metadata_map["reinforce_tf"]
    np.savez(job["out"], **outputs)
    dtypes = {k: str(np.asarray(v).dtype) for k, v in outputs.items()}
    report[job["out"]] = {"inputs": inputs, "dtypes": dtypes, "env": json.loads(note)["env"]}
assert not any(name.startswith("reinforce_tf") for name in sys.modules)
print(json.dumps(report))
"""


def run_exports(jobs: list[dict], cwd) -> dict:
    """Runs RUN_EXPORTS on `jobs` in a fresh process; its report."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_EXPORTS, json.dumps(jobs)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def spaces(env_id: str) -> tuple[gym.Space, gym.Space]:
    """The observation and action spaces of `env_id` (a MinAtar id registers on the way)."""
    env = make_env(env_id)
    env.close()
    return env.observation_space, env.action_space


def random_observations(space: gym.spaces.Box, count: int, rng: np.random.Generator):
    """[count, *O] float32, as the export takes them: an image's pixels as the env returns
    them (uint8 frames uniform in [0, m), bool frames 1 with probability p, m and p drawn
    per frame so the frames differ in brightness), other observations N(0, 3²)."""
    shape = (count, *space.shape)
    per_frame = (count, *[1] * len(space.shape))
    if space.dtype == np.uint8:
        observations = rng.integers(0, rng.integers(1, 257, per_frame), shape)
    elif space.dtype == np.bool_:
        observations = rng.random(shape) < rng.random(per_frame)
    else:
        observations = rng.normal(0.0, 3.0, shape)
    return observations.astype(np.float32)


def make_policy(env_id: str, normalize: bool, seed: int) -> keras.Model:
    """A policy whose outputs spread: the output layer's weights N(0, 1) instead of near zero
    (logits and means of a few units, so Box means pass the bounds ±2 and get clipped),
    σ = e^-0.7, and, when normalising, statistics of N(1.5, 3²) observations. An image's
    conv torso keeps its He initialisation; its logits are centred."""
    observation_space, action_space = spaces(env_id)
    policy = build_policy(
        observation_space, action_space, (16, 16), seed=seed, normalize_observations=normalize
    )
    discrete = isinstance(action_space, gym.spaces.Discrete)
    head = policy.get_layer("logits" if discrete else "mean")
    kernel, bias = head.get_weights()
    rng = np.random.default_rng(seed)
    head.set_weights([rng.normal(0.0, 1.0, kernel.shape), bias + 0.1])
    if len(observation_space.shape) == 3:
        # ReLU features are >= 0 on every frame, which puts one logit ahead on all of them:
        # centre each logit over frames (bias −= its mean) so every action is someone's argmax.
        frames = random_observations(observation_space, 500, rng)
        logits = np.asarray(distribution_model(policy)(frames))  # [500, A]
        kernel, bias = head.get_weights()
        head.set_weights([kernel, bias - logits.mean(axis=0)])
    if not discrete:
        log_std = policy.get_layer("log_std")
        log_std.set_weights([log_std.get_weights()[0], np.full_like(bias, -0.7)])
    if normalize:
        update_observation_statistics(policy, rng.normal(1.5, 3.0, (500, *observation_space.shape)))
    return policy


@pytest.fixture(scope="module")
def policies(tmp_path_factory) -> dict:
    """kind → (.keras path, env id, a .npy file of [1000, *O] float32 observations)."""
    folder = tmp_path_factory.mktemp("policies")
    made = {}
    for seed, (kind, (env_id, normalize)) in enumerate(KINDS.items()):
        observation_space, action_space = spaces(env_id)
        note = {
            "env": env_id,
            "observation_space": str(observation_space),
            "action_space": str(action_space),
        }
        path = save_policy(make_policy(env_id, normalize, seed), folder / f"{kind}.keras", note)
        rng = np.random.default_rng(100 + seed)
        observations = random_observations(observation_space, OBSERVATIONS, rng)
        np.save(folder / f"{kind}.npy", observations)
        made[kind] = (path, env_id, folder / f"{kind}.npy")
    return made


def keras_outputs(path, observations: np.ndarray, action_space: gym.Space) -> dict:
    """The .keras file's outputs, loaded with Keras alone, and the greedy action derived
    from them with NumPy: argmax + start, or the mean clipped to [low, high]."""
    outputs = keras.saving.load_model(path)(observations)
    if isinstance(action_space, gym.spaces.Discrete):
        probabilities = np.asarray(outputs)
        greedy = probabilities.argmax(axis=1) + action_space.start
        return {"probabilities": probabilities, "action": greedy}
    mean, std = np.asarray(outputs["mean"]), np.asarray(outputs["std"])
    return {"mean": mean, "std": std, "action": np.clip(mean, action_space.low, action_space.high)}


@pytest.mark.parametrize("format", FORMATS)
def test_export_gives_the_policys_outputs_in_its_own_runtime(policies, format, tmp_path):
    jobs, expected = [], {}
    for kind, (path, env_id, observations) in policies.items():
        for greedy in (False, True):
            name = NAMES[format].format(kind + ("_greedy" if greedy else ""))
            export = export_file(path, format, tmp_path / name, greedy=greedy)
            assert export_format(export.path) == format
            out = str(tmp_path / f"{name}.npz")
            jobs.append(
                {"format": format, "path": str(export.path), "observations": str(observations)}
                | {"out": out}
            )
            action_space = spaces(env_id)[1]
            reference = keras_outputs(path, np.load(observations), action_space)
            names = ["action"] if greedy else [n for n in reference if n != "action"]
            expected[out] = (env_id, {n: reference[n] for n in names})
    report = run_exports(jobs, tmp_path)
    for out, (env_id, reference) in expected.items():
        got = dict(np.load(out))
        assert report[out]["inputs"] == ["observation"]
        assert report[out]["env"] == env_id  # the note travels inside the export
        assert sorted(got) == sorted(reference), out
        for name, want in reference.items():
            assert got[name].shape == want.shape, (out, name)
            if name == "action" and "discrete" in out:
                assert report[out]["dtypes"][name] == "int64"
                np.testing.assert_array_equal(got[name], want, err_msg=out)
            else:
                assert report[out]["dtypes"][name] == "float32"
                assert np.max(np.abs(got[name] - want)) <= 1e-5, (out, name)
    # Not vacuous: >= 20 of each Box policy's greedy actions were clipped, and each
    # Discrete policy takes every action on >= 10% of the observations.
    for kind, (path, env_id, observations) in policies.items():
        action_space = spaces(env_id)[1]
        reference = keras_outputs(path, np.load(observations), action_space)
        if "mean" in reference:
            assert np.sum(np.abs(reference["mean"]) > 2) >= 20, kind
        else:
            counts = np.bincount(reference["action"], minlength=action_space.n)
            assert np.all(counts >= OBSERVATIONS // 10), (kind, counts)


def test_evaluate_plays_exports_as_the_policy(policies, tmp_path):
    # Greedy play is deterministic: an export that acts as the policy gets the same returns,
    # episode by episode, on the same seeds (a Box policy's to float rounding). Each export
    # is opened as scripts/evaluate.py opens it, by its path, with the note it carries. The
    # image envs hand it raw uint8 or bool frames, which it takes as float32; a Frames
    # episode's return is the sum of its actions.
    cases = [("discrete_normalized", format) for format in FORMATS]
    cases += [("box_normalized", "onnx"), ("discrete_image", "litert")]
    for kind, format in [*cases, ("discrete_image_bool", "saved_model")]:
        path, env_id, _ = policies[kind]
        reference = evaluate(keras.saving.load_model(path), env_id, 4, greedy=True, seed=3)
        for greedy_export in (False, True):
            name = NAMES[format].format(f"{kind}_{greedy_export}")
            export_file(path, format, tmp_path / name, greedy=greedy_export)
            exported, note = load_any_policy(tmp_path / name)
            assert note["env"] == env_id
            returns = evaluate(exported, env_id, 4, greedy=True, seed=3)
            np.testing.assert_allclose(returns, reference, rtol=1e-6, err_msg=name)
            if greedy_export:
                with pytest.raises(InputError, match="^mode: .* is a greedy export: it"):
                    evaluate(exported, env_id, 1)  # it cannot sample
            elif env_id == "CartPole-v1":
                # Sampled play draws from the exported distribution: whole episodes.
                sampled = evaluate(exported, env_id, 3, seed=3)
                assert np.all(sampled >= 8) and np.all(sampled == np.round(sampled))


def test_greedy_export_adds_the_discrete_start_and_clips_to_the_bounds(tmp_path):
    # Discrete(2, start=-1): the env's actions are -1 and 0, argmax - 1.
    policy = make_policy("CartPole-v1", False, seed=7)
    observations = np.random.default_rng(7).normal(0, 3, (200, 4)).astype(np.float32)
    argmax = np.asarray(policy(observations)).argmax(axis=1)
    space = gym.spaces.Discrete(2, start=-1)
    export = export_policy(policy, tmp_path / "p.onnx", "onnx", greedy=True, action_space=space)
    np.testing.assert_array_equal(load_exported(export.path)(observations)["action"], argmax - 1)
    # Box bounds [-0.5, 1]; then unbounded (clipping leaves the mean alone).
    box = make_policy("Pendulum-v1", False, seed=8)
    means = np.asarray(box(observations[:, :3])["mean"])[:, 0]
    space = gym.spaces.Box(-0.5, 1.0, (1,), np.float32)
    export = export_policy(box, tmp_path / "p.tflite", "litert", greedy=True, action_space=space)
    actions = load_exported(export.path)(observations[:, :3])["action"][:, 0]
    np.testing.assert_allclose(actions, np.clip(means, -0.5, 1.0), atol=1e-5)
    assert np.any(means < -0.5) and np.any(means > 1.0)
    unbounded = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    export = export_policy(box, tmp_path / "u.onnx", "onnx", greedy=True, action_space=unbounded)
    actions = load_exported(export.path)(observations[:, :3])["action"][:, 0]
    np.testing.assert_allclose(actions, means, atol=1e-5)


def test_greedy_export_of_a_tanh_policy_outputs_the_squashed_mean(tmp_path):
    # The note's "action_squash" decides: c + h tanh(mean) into [-0.5, 1] (c = 0.25, h = 0.75).
    box = make_policy("Pendulum-v1", False, seed=8)
    observations = np.random.default_rng(8).normal(0, 3, (200, 3)).astype(np.float32)
    means = np.asarray(box(observations)["mean"])[:, 0]
    space = gym.spaces.Box(-0.5, 1.0, (1,), np.float32)
    note = {"env": "Pendulum-v1", "action_squash": "tanh"}
    export = export_policy(
        box, tmp_path / "t.onnx", "onnx", greedy=True, action_space=space, note=note
    )
    exported = load_exported(export.path)
    actions = exported(observations)["action"][:, 0]
    np.testing.assert_allclose(actions, 0.25 + 0.75 * np.tanh(means), atol=1e-5)
    assert exported.note["action_squash"] == "tanh"
    # Played greedily, the export acts as the .keras policy with the tanh squash.
    pendulum = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    export = export_policy(
        box, tmp_path / "p.onnx", "onnx", greedy=True, action_space=pendulum, note=note
    )
    expected = evaluate(box, "Pendulum-v1", 2, greedy=True, action_squash="tanh")
    played = evaluate(
        load_exported(export.path), "Pendulum-v1", 2, greedy=True, action_squash="tanh"
    )
    np.testing.assert_allclose(played, expected, rtol=1e-3)
    # A tanh squash needs finite bounds.
    unbounded = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    with pytest.raises(InputError, match="action_squash"):
        export_policy(
            box, tmp_path / "u.onnx", "onnx", greedy=True, action_space=unbounded, note=note
        )


def test_greedy_export_needs_the_env_and_a_plain_one_does_not(tmp_path):
    policy = make_policy("CartPole-v1", False, seed=0)
    save_policy(policy, tmp_path / "p.keras", {})  # a note without the env
    with pytest.raises(InputError) as error:
        export_file(tmp_path / "p.keras", "onnx", tmp_path / "g.onnx", greedy=True)
    assert str(error.value) == (
        "env: a greedy export needs the env's action space (its start or bounds): the policy "
        "file does not record its env; pass --env"
    )
    export = export_file(
        tmp_path / "p.keras", "onnx", tmp_path / "g.onnx", greedy=True, env_id="CartPole-v1"
    )
    assert load_exported(export.path).note["env"] == "CartPole-v1"
    export = export_file(tmp_path / "p.keras", "onnx", tmp_path / "d.onnx")
    assert "env" not in load_exported(export.path).note
    with pytest.raises(InputError, match="^policy: was made for observations of size 4 and 2"):
        export_file(tmp_path / "p.keras", "onnx", tmp_path / "x.onnx", env_id="Acrobot-v1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.onnx", "g.onnx", "p.keras"]


class Sized(gym.Env):
    """Observations [size] (a make() kwarg, 3 unless given), 2 actions: an env whose spaces
    depend on the kwargs it was made with."""

    def __init__(self, size: int = 3):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (size,), np.float32)
        self.action_space = gym.spaces.Discrete(2)


gym.register("tests/Sized-v0", entry_point=Sized)


def test_export_makes_the_env_with_the_kwargs_it_was_trained_with(tmp_path):
    # Trained on make("tests/Sized-v0", size=5): 5 inputs; the plain make() has 3.
    env = make_env("tests/Sized-v0", {"size": 5})
    policy = build_policy(env.observation_space, env.action_space, (4,), seed=0)
    note = {"env": "tests/Sized-v0", "env_kwargs": {"size": 5}, "preset": "none"}
    save_policy(policy, tmp_path / "p.keras", note)
    export = export_file(tmp_path / "p.keras", "onnx", tmp_path / "g.onnx", greedy=True)
    exported_note = load_exported(export.path).note
    assert exported_note["observation_space"] == str(env.observation_space)
    assert exported_note["env_kwargs"] == {"size": 5}


# Nothing half-written: a failing converter, a failing check or a full disk leaves the old
# export whole and no temporary file or folder.


def listing(folder) -> dict:
    """Every file under `folder` (hidden ones too) and its bytes."""
    return {
        os.path.relpath(os.path.join(parent, name), folder): open(
            os.path.join(parent, name), "rb"
        ).read()
        for parent, _, names in os.walk(folder)
        for name in names
    }


# A folder and a file: LiteRT's files are written as ONNX's are.
@pytest.mark.parametrize("format", ["saved_model", "onnx"])
def test_failed_exports_leave_the_old_export_whole(policies, format, tmp_path, monkeypatch):
    path = policies["box_normalized"][0]
    output = tmp_path / NAMES[format].format("policy")
    export_file(path, format, output, greedy=True)
    before = listing(tmp_path)
    real_export = keras.Model.export

    def converter_dies(self, filepath, **kwargs):
        real_export(self, filepath, **kwargs)  # writes the whole export, then fails
        raise RuntimeError("converter crashed\nsecond line")

    monkeypatch.setattr(keras.Model, "export", converter_dies)
    with pytest.raises(ExportError) as error:
        export_file(path, format, output)
    name = {"saved_model": "SavedModel", "onnx": "ONNX"}[format]
    assert str(error.value) == (
        f"the {name} converter failed (converter crashed); nothing was written"
    )
    monkeypatch.undo()
    assert listing(tmp_path) == before

    real_outputs = export_module.policy_outputs

    def off_by_a_little(*args, **kwargs):  # as if the converter got the numbers wrong
        return {n: v + 1e-3 for n, v in real_outputs(*args, **kwargs).items()}

    monkeypatch.setattr(export_module, "policy_outputs", off_by_a_little)
    with pytest.raises(ExportError) as error:
        export_file(path, format, output)
    assert str(error.value) == (
        f"the {name} export's 'mean' differs from the policy's by 0.001 (more than 1e-05) on "
        "256 observations; nothing was written"
    )
    monkeypatch.undo()
    assert listing(tmp_path) == before

    def disk_full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export_module, "_add_note", disk_full)
    with pytest.raises(ExportError) as error:
        export_file(path, format, output)
    assert str(error.value) == (
        f"could not write the export to {str(output)!r}: No space left on device; the "
        "existing export is unchanged"
    )
    monkeypatch.undo()
    assert listing(tmp_path) == before
    # And a good export replaces the old one whole: a greedy export becomes a distribution.
    assert load_exported(output).kind == "action"
    export_file(path, format, output)
    assert load_exported(output).kind == "gaussian"
    assert [p.name for p in tmp_path.iterdir()] == [output.name]  # nothing aside, no temporary


def test_only_an_earlier_export_of_ours_is_replaced(policies, tmp_path):
    path = policies["discrete"][0]
    deploy = tmp_path / "deploy"
    export_file(path, "saved_model", deploy)
    ours = listing(deploy)
    # Every file our export writes, and only those: Keras's, and the note.
    assert sorted(ours) == [
        "assets.extra/reinforce_tf.json",
        "fingerprint.pb",
        "saved_model.pb",
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    ]
    export_module.check_export_output(deploy, "saved_model")  # replaceable
    # The policy and a note of the user's copied in: the folder is theirs now, and exporting
    # the policy inside it to it is refused before any work, everything kept.
    shutil.copy(path, deploy / "policy.keras")
    (deploy / "NOTES.txt").write_text("mine")
    before = listing(tmp_path)
    with pytest.raises(InputError) as error:
        export_file(deploy / "policy.keras", "saved_model", deploy)
    assert str(error.value) == (
        f"output: {str(deploy)!r} is a folder of other files, which is not replaced; give a "
        "new folder name"
    )
    assert listing(tmp_path) == before
    # One thing not ours is enough: a file anywhere, a link, or a SavedModel without our note.
    changes = {
        "a file in assets": lambda folder: (folder / "assets" / "vocab.txt").write_text("a"),
        "a link": lambda folder: (folder / "variables" / "link").symlink_to(tmp_path / "x"),
        "no note": lambda folder: (folder / "assets.extra" / "reinforce_tf.json").unlink(),
        "an extra folder": lambda folder: (folder / "logs").mkdir(),
    }
    for what, change in changes.items():
        folder = tmp_path / what.replace(" ", "_")
        shutil.copytree(
            tmp_path / "deploy", folder, ignore=shutil.ignore_patterns("*.txt", "*.keras")
        )
        export_module.check_export_output(folder, "saved_model")
        change(folder)
        with pytest.raises(InputError, match="is a folder of other files"):
            export_module.check_export_output(folder, "saved_model")


def test_a_file_added_to_the_old_export_while_exporting_keeps_it(policies, tmp_path, monkeypatch):
    path = policies["discrete"][0]
    deploy = tmp_path / "deploy"
    export_file(path, "saved_model", deploy)
    real_export = keras.Model.export

    def user_adds_a_file(self, filepath, **kwargs):  # after the output was checked
        (deploy / "NOTES.txt").write_text("mine")
        real_export(self, filepath, **kwargs)

    monkeypatch.setattr(keras.Model, "export", user_adds_a_file)
    with pytest.raises(ExportError) as error:
        export_file(path, "saved_model", deploy, greedy=True, env_id="CartPole-v1")
    assert str(error.value) == (
        f"could not write the export to {str(deploy)!r}: it became a folder of other files "
        "while the new one was written, which is not replaced; the existing export is unchanged"
    )
    assert (deploy / "NOTES.txt").read_text() == "mine"
    assert load_exported(deploy).kind == "probabilities"  # the old export
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]


def test_output_paths_are_checked_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    (tmp_path / "empty").mkdir()
    cases = {
        ("onnx", "p.tflite"): "output: must end in \".onnx\"; got '{}'",
        ("litert", "file/p.tflite"): "output: '{}' is not a folder",
        ("saved_model", "p.onnx"): (
            "output: a SavedModel is a folder; got '{}', a .onnx file name: give a folder "
            "name, or the --format of that file"
        ),
        ("saved_model", "file"): "output: '{}' exists and is not a folder; give a folder name",
        ("saved_model", "other"): (
            "output: '{}' is a folder of other files, which is not replaced; give a new folder name"
        ),
        ("pdf", "p.pdf"): "format: must be one of saved_model, litert, onnx; got 'pdf'",
    }
    for (format, name), message in cases.items():
        with pytest.raises(InputError) as error:
            export_module.check_export_output(tmp_path / name, format)
        shown = tmp_path / ("file" if name == "file/p.tflite" else name)
        assert str(error.value) == message.format(shown)
    export_module.check_export_output(tmp_path / "empty", "saved_model")  # fills it
    export_module.check_export_output(tmp_path / "new", "saved_model")
    # A folder without write permission (simulated: the check must hold for root too).
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match=r"^output: folder '.*' is not writable$"):
        export_module.check_export_output(tmp_path / "p.onnx", "onnx")


def test_files_that_are_not_policy_exports_are_refused_in_one_line(tmp_path, monkeypatch):
    import onnx

    (tmp_path / "folder").mkdir()
    (tmp_path / "damaged.tflite").write_bytes(b"TFL3 cut short")
    (tmp_path / "damaged.onnx").write_bytes(b"\x08\x07 not a model")
    # A valid ONNX model, but not a policy's: its input is "x", its output "y".
    value = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [value("x", onnx.TensorProto.FLOAT, ["batch", 4])],
        [value("y", onnx.TensorProto.FLOAT, ["batch", 4])],
    )
    onnx.save(onnx.helper.make_model(graph), tmp_path / "identity.onnx")
    cases = {
        "folder": (
            "policy: '{}' is a folder without saved_model.pb: neither a .keras policy nor a "
            "SavedModel export"
        ),
        "notes.txt": (
            "policy: must be a .keras policy or an export (a SavedModel folder, a .tflite or "
            "an .onnx file); got '{}'"
        ),
        "missing.onnx": "policy: no such file: '{}'",
        "damaged.tflite": "policy: '{}' is not a readable LiteRT policy export (",
        "damaged.onnx": "policy: '{}' is not a readable ONNX policy export (",
        "identity.onnx": (
            "policy: '{}' is not a readable ONNX policy export (its inputs are ['x'], not one "
            "'observation')"
        ),
    }
    for name, message in cases.items():
        with pytest.raises(InputError) as error:
            load_any_policy(tmp_path / name)
        assert str(error.value).startswith(message.format(tmp_path / name)), name
        assert "\n" not in str(error.value)
    real = exported_module.importlib.import_module

    def without_onnxruntime(name, *args):
        if name == "onnxruntime":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(exported_module.importlib, "import_module", without_onnxruntime)
    with pytest.raises(InputError) as error:
        load_any_policy(tmp_path / "identity.onnx")
    assert str(error.value) == (
        'policy: playing ONNX exports needs onnxruntime: install the extra reinforce_tf[export] (in the checkout: pip install ".[export]")'
    )


def test_missing_converter_is_named_with_what_to_install(monkeypatch):
    real = export_module.importlib.util.find_spec
    monkeypatch.setattr(
        export_module.importlib.util,
        "find_spec",
        lambda name: None if name == "tf2onnx" else real(name),
    )
    with pytest.raises(InputError) as error:
        export_module.check_format("onnx")
    assert str(error.value) == (
        'format: exporting to ONNX needs tf2onnx: install the extra reinforce_tf[export] (in the checkout: pip install ".[export]")'
    )


def test_export_script_writes_an_export_that_evaluate_plays(policies, tmp_path, script):
    path, env_id, _ = policies["discrete_normalized"]
    done = script(
        "export.py",
        f"--policy={path}",
        "--format=litert",
        "--output=p.tflite",
        "--greedy",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the converter's log lines are hidden
    size = (tmp_path / "p.tflite").stat().st_size
    assert done.stdout == (
        f"p.tflite: LiteRT, {size:,} bytes, outputs action; acts as the policy (largest "
        "difference 0)\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["p.tflite"]
    # evaluate.py reads the env from the note inside the export; the returns are the
    # .keras policy's, as greedy CartPole play is deterministic.
    # A greedy export can only act greedily: both modes (the default) play greedy alone.
    done = script("evaluate.py", "--policy=p.tflite", "--episodes=3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no TensorFlow or LiteRT start-up lines
    returns = evaluate(keras.saving.load_model(path), env_id, 3, greedy=True)
    assert done.stdout == (
        "p.tflite is a greedy export (it outputs the action): greedy only\n"
        f"CartPole-v1, 3 episodes, greedy actions: return {returns.mean():.2f} ± "
        f"{returns.std():.2f} (min {returns.min():.2f}, max {returns.max():.2f})\n"
    )
    done = script("evaluate.py", "--policy=p.tflite", "--mode=sampled", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: --mode: 'p.tflite' is a greedy export: it outputs the action, with no "
        "distribution to sample from; pass --mode=greedy\n"
    )


# Each kind of bad input once through the script (the rest in-process above): flags added to
# --policy=<a CartPole policy> --format=onnx --output=p.onnx, a later flag winning.
BAD_EXPORT_FLAGS = [
    (["--policy=missing.keras"], "--policy: no such file: 'missing.keras'"),
    (
        ["--policy=sequential.keras"],
        (
            "--policy: is not a reinforce_tf policy: it is not a functional Keras model with "
            "one input and defined outputs"
        ),
    ),
    (["--format=tflite"], "flag --format=tflite: value should be one of <saved_model|litert|onnx>"),
    (["--output=missing/p.onnx"], "--output: folder 'missing' does not exist"),
]


@pytest.mark.parametrize(
    "flags, message", BAD_EXPORT_FLAGS, ids=[" ".join(f[0]) for f in BAD_EXPORT_FLAGS]
)
def test_export_script_bad_input(policies, tmp_path, script, flags, message):
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="logits")]).save(
        tmp_path / "sequential.keras"
    )
    before = listing(tmp_path)
    policy = f"--policy={policies['discrete'][0]}"
    done = script("export.py", policy, "--format=onnx", "--output=p.onnx", *flags, cwd=tmp_path)
    assert (done.returncode, done.stderr, done.stdout) == (2, f"error: {message}\n", "")
    assert listing(tmp_path) == before
