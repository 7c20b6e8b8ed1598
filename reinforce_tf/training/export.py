"""Export a policy to the serving formats (SavedModel, LiteRT, ONNX), checked to act as it.

Shapes: B = batch of observations, O = observation shape, A = discrete actions,
D = action dims.

Every export is Keras's own `model.export(path, format=...)` of `ServingModel`, a thin
model over the policy's weights: Keras writes the SavedModel itself, converts it to LiteRT
with TensorFlow's `TFLiteConverter`, and converts the traced function to ONNX with
`tf2onnx`. Nothing here writes a graph by hand; only the note is added afterwards. The
signature (`serving_default`, input "observation" float32 [B, *O], outputs
"probabilities" [B, A], or "mean" and "std" [B, D], or a greedy export's "action") and
where the policy's note is kept are described in `exported.py`, which reads the exports.

The observation normalisation is inside the export: `ServingModel` reads the policy
through `distribution_model`, whose normalisation reads the statistics' variables. (Keras's
`Normalization` layer computes from a snapshot tensor that tf2onnx would turn into two
stray graph inputs.)

Before an export is renamed into place it is loaded by its own runtime
(`exported.load_exported`) and run on `CHECK_OBSERVATIONS` random observations against the
`.keras` policy: probabilities, mean, std and Box actions within `TOLERANCE`, discrete
actions equal. An export that fails the check is not written, and neither is anything when
the converter fails or the disk fills: the old export, if any, stays whole. A folder is
replaced only if it holds a SavedModel export of ours and nothing else (`is_earlier_export`,
asked before any work and again just before the rename), so an export deletes nothing else.
"""

import functools
import importlib.util
import json
import os
import re
import stat
import warnings
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from reinforce_tf import extras
from reinforce_tf.errors import ExportError, InputError, error_reason
from reinforce_tf.policy import distribution_model, make_actor, make_distribution
from reinforce_tf.training.envs import (
    make_env,
    refuse_file_import,
    tanh_half_range,
    to_env_actions,
)
from reinforce_tf.training.evaluate import (
    check_fits,
    recorded_env,
    recorded_env_options,
    recorded_squash,
)
from reinforce_tf.training.exported import (
    FORMAT_NAMES,
    FORMATS,
    INPUT,
    NOTE_NAME,
    SAVED_MODEL_NOTE,
    SUFFIXES,
    load_exported,
)
from reinforce_tf.training.saving import (
    check_output_file,
    check_output_folder,
    folder_written_atomically,
    load_metadata,
    load_policy,
    printable,
    written_atomically,
)

# Observations the export is checked on before it is written (`check_observations`).
CHECK_OBSERVATIONS = 256
# The largest difference allowed between a float output of the export and the policy's.
TOLERANCE = 1e-5
# The ONNX operator set the export uses; onnxruntime 1.13 and later runs it.
ONNX_OPSET = 17
# The packages each format's export needs, besides TensorFlow: the converter and the runtime
# that checks the result.
NEEDS = {
    "saved_model": (),
    "litert": ("ai_edge_litert",),
    "onnx": ("tf2onnx", "onnx", "onnxruntime"),
}
PIP_NAMES = {"ai_edge_litert": "ai-edge-litert"}
# What a SavedModel export holds: Keras's files (the variables in one or more shards) in its
# folders, and the note `_add_note` adds. A folder holding anything else is not replaced.
SAVED_MODEL_FILES = re.compile(
    r"saved_model\.pb|fingerprint\.pb|variables/variables\.(index|data-\d{5}-of-\d{5})|"
    + re.escape(SAVED_MODEL_NOTE.as_posix())
)
SAVED_MODEL_FOLDERS = {"assets", "variables", SAVED_MODEL_NOTE.parent.as_posix()}


class Export(NamedTuple):
    """What was written.

    Attributes:
        path: the export (a folder for a SavedModel, else a file).
        format: "saved_model", "litert" or "onnx".
        outputs: the output names, e.g. ("probabilities",) or ("action",).
        size: bytes on disk (a SavedModel: all its files).
        max_difference: the largest difference from the policy's outputs in the check.
    """

    path: Path
    format: str
    outputs: tuple[str, ...]
    size: int
    max_difference: float


class ServingModel(keras.Model):
    """The policy's contract as a model to export: observations [B, *O] float32 → a dict.

    - Discrete, sampled: {"probabilities": [B, A] float32}, softmax of the policy's logits;
    - Box, sampled: {"mean": [B, D], "std": [B, D]} float32, std = exp(log σ);
    - Discrete, greedy: {"action": [B] int64}, argmax of the logits + the space's `start`;
    - Box, greedy: {"action": [B, D] float32}, the mean clipped to [low, high], or with
      `action_squash="tanh"` (a policy trained so) squashed into them: c + h ⊙ tanh(mean).
    Greedy actions are `make_actor(policy, greedy=True)` followed by `to_env_actions`.
    A sampled export of a tanh policy outputs the Gaussian before the squash (its note
    records "action_squash"; the caller squashes each sample u as `to_env_actions` does).
    """

    def __init__(
        self,
        policy: keras.Model,
        *,
        greedy: bool = False,
        action_space: gym.Space | None = None,
        action_squash: str = "clip",
    ):
        """
        Raises:
            InputError: `policy` is not a policy, `greedy` without a fitting
                `action_space`, or a greedy tanh export for bounds that are not finite.
        """
        super().__init__(name="policy_serving")
        self.parameters_model = distribution_model(policy)  # checks `policy`
        self.discrete = not isinstance(self.parameters_model.output, dict)
        self.greedy = greedy
        self.observation_shape = tuple(policy.input_shape[1:])
        if greedy:
            _check_action_space(action_space, self.discrete)
            if self.discrete:
                self.start = int(action_space.start)
            else:
                self.low = np.asarray(action_space.low, np.float32)
                self.high = np.asarray(action_space.high, np.float32)
                self.half_range = None
                if action_squash == "tanh":
                    self.half_range = tanh_half_range(action_space)
                    center = (action_space.high.astype(np.float64) + action_space.low) / 2
                    self.center = center.astype(np.float32)
        self(np.zeros((1, *self.observation_shape), np.float32))  # built, as export needs

    def call(self, observation):
        parameters = self.parameters_model(observation, training=False)
        if self.greedy:
            action = make_distribution(parameters).mode()  # [B] int32 or [B, D]
            if self.discrete:
                return {"action": tf.cast(action, tf.int64) + self.start}
            if self.half_range is not None:
                action = self.center + self.half_range * tf.tanh(action)
            return {"action": tf.clip_by_value(action, self.low, self.high)}
        if self.discrete:
            return {"probabilities": tf.nn.softmax(parameters)}
        return {"mean": parameters["mean"], "std": tf.exp(parameters["log_std"])}

    def input_signature(self) -> list[tf.TensorSpec]:
        return [tf.TensorSpec([None, *self.observation_shape], tf.float32, name=INPUT)]


def _check_action_space(action_space: gym.Space | None, discrete: bool) -> None:
    if action_space is None:
        raise InputError(
            "a greedy export needs the env's action space (its start or bounds): the policy "
            "file does not record its env; pass --env",
            field="env",
        )
    if discrete != isinstance(action_space, gym.spaces.Discrete):
        kind = "discrete" if discrete else "continuous"
        raise InputError(f"the policy's actions are {kind}; got {action_space}", field="env")


def check_export_output(path: str | os.PathLike, format: str) -> None:
    """Fails before any work on an output the export could not be written to.

    LiteRT and ONNX are files ending in ".tflite" and ".onnx"; a SavedModel is a folder,
    new or empty or an earlier export (`is_earlier_export`, which is replaced), not named
    like a file.

    Raises:
        InputError: naming `output` (or `format`, for an unknown format).
    """
    check_format(format)
    if format in SUFFIXES:
        check_output_file(path, "output", SUFFIXES[format])
        return
    suffix = Path(path).suffix
    if suffix in (".keras", ".h5", *SUFFIXES.values()):
        raise InputError(
            f"a SavedModel is a folder; got {str(path)!r}, a {suffix} file name: give a folder "
            "name, or the --format of that file",
            field="output",
        )
    check_output_folder(path, "output", is_earlier_export)


def is_earlier_export(folder: Path) -> bool:
    """Whether `folder` holds a SavedModel export of ours and nothing else, so replacing it
    deletes only what we wrote: `SAVED_MODEL_FILES` (saved_model.pb and the note among them)
    in `SAVED_MODEL_FOLDERS`, as regular files and folders, no links."""
    found = set()
    for parent, folders, files in os.walk(folder):  # links to folders are listed, not entered
        for name in [*folders, *files]:
            path = Path(parent, name)
            relative, mode = path.relative_to(folder).as_posix(), path.lstat().st_mode
            if stat.S_ISDIR(mode) and relative in SAVED_MODEL_FOLDERS:
                continue
            if not (stat.S_ISREG(mode) and SAVED_MODEL_FILES.fullmatch(relative)):
                return False
            found.add(relative)
    return {"saved_model.pb", SAVED_MODEL_NOTE.as_posix()} <= found


def check_format(format: str) -> None:
    """Raises `InputError` naming `format` unless it is one of `FORMATS`, with its
    converter and runtime installed."""
    if format not in FORMATS:
        raise InputError(f"must be one of {', '.join(FORMATS)}; got {format!r}", field="format")
    absent = [name for name in NEEDS[format] if importlib.util.find_spec(name) is None]
    if absent:
        names = [PIP_NAMES.get(name, name) for name in absent]
        packages = " and ".join([", ".join(names[:-1]), names[-1]] if names[:-1] else names)
        raise extras.missing(
            f"exporting to {FORMAT_NAMES[format]} needs {packages}", "export", field="format"
        )


def export_file(
    policy_path: str | os.PathLike,
    format: str,
    output: str | os.PathLike,
    *,
    greedy: bool = False,
    env_id: str | None = None,
) -> Export:
    """Exports the `.keras` policy at `policy_path` to `output` (what scripts/export.py does).

    The env (`env_id`, else the one the policy file records) supplies the action space of a
    greedy export and is checked against the policy; its id and spaces go into the note.

    Raises:
        InputError: a bad format or output (checked first), a missing or non-policy file, an
            env that does not fit, greedy without an env, or a recorded `module:EnvId` with
            no `env_id` (a file never chooses code to import).
        ExportError: the converter failed, the export does not act as the policy, or the
            write failed; nothing was written.
    """
    check_export_output(output, format)
    policy = load_policy(policy_path)
    distribution_model(policy)  # refuses a model that is not a policy, before anything else
    note = load_metadata(policy_path)
    recorded = recorded_env(note)
    if env_id is None and recorded:
        refuse_file_import(recorded, "the policy file")  # a file never chooses code to import
    env_id = env_id or recorded
    action_space = None
    if env_id:
        # The env it was trained on is made as it was then (its kwargs and wrapper preset).
        options = recorded_env_options(note) if env_id == recorded else {}
        observation_space, action_space = _spaces(env_id, options)
        check_fits(policy, observation_space, action_space, note)
        note = {
            **note,
            "env": env_id,
            "observation_space": str(observation_space),
            "action_space": str(action_space),
        }
    return export_policy(
        policy, output, format, greedy=greedy, action_space=action_space, note=note
    )


def _spaces(env_id: str, options: dict) -> tuple[gym.Space, gym.Space]:
    """The observation and action spaces of `env_id` made with `options` (`env_kwargs`,
    `preset`), as training made it: one env, made and closed."""
    env = make_env(env_id, **options)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def export_policy(
    policy: keras.Model,
    path: str | os.PathLike,
    format: str,
    *,
    greedy: bool = False,
    action_space: gym.Space | None = None,
    note: dict | None = None,
    action_squash: str | None = None,
) -> Export:
    """Writes `policy` to `path` in `format`, atomically, after checking it acts as `policy`.

    Args:
        policy: a model `build_policy` made.
        format: "saved_model" (a folder), "litert" (a .tflite file) or "onnx" (an .onnx file).
        greedy: output the env's action instead of the distribution (see `ServingModel`).
        action_space: the env's; needed for `greedy` (its start or bounds).
        note: the policy file's note (JSON-able), kept in the export with an "export" entry.
        action_squash: how the policy's Box actions reach the env ("clip" or "tanh"); None:
            as the note records ("clip" if it records none). A greedy tanh export outputs
            the squashed mean.

    Raises:
        InputError: a bad format or path, a non-policy, greedy without an action space, or
            a note that records an unknown squash.
        ExportError: the converter failed, the export does not act as the policy, or the
            write failed; the export at `path`, if any, is unchanged.
    """
    check_export_output(path, format)
    squash = recorded_squash(note or {}) if action_squash is None else action_squash
    model = ServingModel(policy, greedy=greedy, action_space=action_space, action_squash=squash)
    path = Path(path)
    existed = os.path.exists(path)
    observations = check_observations(policy, CHECK_OBSERVATIONS, np.random.default_rng(0))
    expected = policy_outputs(
        policy, observations, greedy=greedy, action_space=action_space, action_squash=squash
    )
    note = {
        **(note or {}),
        "action_squash": squash,
        "export": {
            "format": format,
            "greedy": greedy,
            INPUT: [None, *model.observation_shape],
            "outputs": {name: [None, *value.shape[1:]] for name, value in expected.items()},
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
        },
    }
    text = json.dumps(note, indent=2)
    writing = written_atomically
    if format == "saved_model":
        writing = functools.partial(folder_written_atomically, replaceable=is_earlier_export)
    try:
        with writing(path) as temporary:
            _convert(model, temporary, format)
            _add_note(temporary, format, text)
            difference = _check(temporary, format, observations, expected)
            size = _size(temporary)
    except OSError as error:
        kept = "the existing export is unchanged" if existed else "nothing was written"
        raise ExportError(
            f"could not write the export to {str(path)!r}: {error_reason(error)}; {kept}"
        ) from error
    return Export(path, format, tuple(expected), size, difference)


def check_observations(policy: keras.Model, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` observations [count, *O] float32 to check an export of `policy` on, valid for
    its input: pixel values of an image policy that takes raw uint8 or bool frames (integers
    in [0, 255], or 0 and 1, as float32), else N(0, 2²) values.

    Only those are compared: the export casts its float32 input to the frames' dtype before
    scaling, and a float below 0 or above 255 has no defined uint8 (TensorFlow, LiteRT and
    ONNX Runtime each give their own; the env never returns one). N(0, 2²) draws made the
    ONNX export of a uint8 image policy fail this check.
    """
    shape = (count, *policy.input_shape[1:])
    dtype = np.dtype(policy.input.dtype)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(np.float32)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.float32)
    return rng.normal(0.0, 2.0, shape).astype(np.float32)


def policy_outputs(
    policy: keras.Model,
    observations: np.ndarray,
    *,
    greedy: bool = False,
    action_space: gym.Space | None = None,
    action_squash: str = "clip",
) -> dict[str, np.ndarray]:
    """What an export of `policy` must output for observations [B, *O]: the `.keras`
    model's own outputs ({"probabilities"} or {"mean", "std"}), or its greedy actions as the
    env takes them ({"action"}: `make_actor(greedy=True)` then `to_env_actions` with
    `action_squash`)."""
    if greedy:
        actions = make_actor(policy, greedy=True)(observations)
        return {"action": to_env_actions(actions, action_space, action_squash)}
    outputs = policy(observations, training=False)
    if isinstance(outputs, dict):
        return {name: np.asarray(value) for name, value in outputs.items()}
    return {"probabilities": np.asarray(outputs)}


def _convert(model: ServingModel, temporary: str, format: str) -> None:
    """Keras's export of `model` to `temporary` (a file or an empty folder).

    Raises:
        ExportError: the converter raised; the message keeps its first line.
    """
    options = {"opset_version": ONNX_OPSET} if format == "onnx" else {}
    keras_format = {"saved_model": "tf_saved_model"}.get(format, format)
    try:
        with warnings.catch_warnings():
            # Keras's tf2onnx patch probes np.object, which NumPy 2 warns about.
            warnings.filterwarnings("ignore", "In the future `np.object`", FutureWarning)
            model.export(
                temporary,
                format=keras_format,
                verbose=False,
                input_signature=model.input_signature(),
                **options,
            )
    except OSError:
        raise
    except Exception as error:  # a converter raises any type
        raise ExportError(
            f"the {FORMAT_NAMES[format]} converter failed ({printable(error_reason(error))}); "
            "nothing was written"
        ) from error


def _add_note(temporary: str, format: str, text: str) -> None:
    """Keeps the note in the export: a file in the SavedModel's assets.extra, a TFLite
    metadata entry, an ONNX metadata property (see `exported.py`)."""
    if format == "saved_model":
        note = Path(temporary) / SAVED_MODEL_NOTE
        note.parent.mkdir(exist_ok=True)
        note.write_text(text, encoding="utf-8")
    elif format == "litert":
        from tensorflow.lite.python import schema_py_generated as schema
        from tensorflow.lite.tools import flatbuffer_utils

        model = flatbuffer_utils.read_model(temporary)
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(text.encode("utf-8"), np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = NOTE_NAME, len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
        flatbuffer_utils.write_model(model, temporary)
    else:
        import onnx

        model = onnx.load(temporary)
        onnx.helper.set_model_props(model, {NOTE_NAME: text})
        _name_batch_dimension(model.graph)
        onnx.save(model, temporary)


def _name_batch_dimension(graph) -> None:
    """tf2onnx calls each tensor's unknown batch size its own "unk__N"; call them "batch"."""
    ends = [*graph.input, *graph.output]
    names = {value.type.tensor_type.shape.dim[0].dim_param for value in ends}
    for value in [*ends, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param and dim.dim_param in names:
                dim.dim_param = "batch"


def _check(temporary: str, format: str, observations, expected: dict) -> float:
    """Runs the export in its runtime on `observations`; the largest float difference.

    Raises:
        ExportError: the runtime cannot load it, or an output differs from `expected` by
            more than `TOLERANCE` (a discrete action at all).
    """
    name = FORMAT_NAMES[format]
    try:
        outputs = load_exported(temporary)(observations)
    except Exception as error:  # the converter wrote what its runtime refuses
        raise ExportError(
            f"the {name} export cannot be run by its runtime ({printable(error_reason(error))}); "
            "nothing was written"
        ) from error
    largest = 0.0
    for key, want in expected.items():
        got = outputs.get(key)
        if got is None or got.shape != want.shape:
            shape = None if got is None else got.shape
            raise ExportError(
                f"the {name} export's output {key!r} is {shape}, not {want.shape}; nothing was "
                "written"
            )
        if np.issubdtype(want.dtype, np.integer):
            wrong = int(np.sum(got != want))
            if wrong:
                raise ExportError(
                    f"the {name} export's actions differ from the policy's on {wrong} of "
                    f"{len(want)} observations; nothing was written"
                )
            continue
        difference = float(np.max(np.abs(got.astype(np.float64) - want)))
        if not difference <= TOLERANCE:  # NaN fails too
            raise ExportError(
                f"the {name} export's {key!r} differs from the policy's by {difference:.3g} "
                f"(more than {TOLERANCE:g}) on {len(want)} observations; nothing was written"
            )
        largest = max(largest, difference)
    return largest


def _size(path: str) -> int:
    """Bytes of a file, or of all the files under a folder."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(path)
        for name in names
    )
