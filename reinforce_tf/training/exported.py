"""Read an exported policy with its own runtime, and act with it.

Shapes: B = batch of observations, O = observation shape (a tuple; (4,) for CartPole),
A = discrete actions, D = action dims.

An export (written by `training/export.py`) is a SavedModel folder (read with
`tf.saved_model.load`), a LiteRT `.tflite` file (the `ai-edge-litert` interpreter) or an
ONNX `.onnx` file (`onnxruntime`). Each has one signature, `serving_default`, with one input,
"observation" float32 [B, *O], and one of three sets of outputs:
- "probabilities" [B, A] float32 (a Discrete policy);
- "mean" and "std" [B, D] float32 (a Box policy's diagonal Gaussian);
- "action" (a greedy export): [B] int64, the env's action (argmax + the space's `start`),
  or [B, D] float32, the mean clipped to the action bounds.
The policy's note (the env id and spaces, `saving.load_metadata`) travels inside the export:
`assets.extra/reinforce_tf.json` in a SavedModel folder, the metadata entry "reinforce_tf"
of a `.tflite` file, the metadata property "reinforce_tf" of an `.onnx` file.
"""

import importlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np

from reinforce_tf import extras
from reinforce_tf.errors import InputError, error_reason
from reinforce_tf.training.saving import load_metadata, load_policy, printable

FORMATS = ("saved_model", "litert", "onnx")
FORMAT_NAMES = {"saved_model": "SavedModel", "litert": "LiteRT", "onnx": "ONNX"}
SUFFIXES = {"litert": ".tflite", "onnx": ".onnx"}  # a SavedModel is a folder
SIGNATURE = "serving_default"
INPUT = "observation"
# The outputs of each kind of export, as the runtimes name them.
OUTPUTS = {
    "probabilities": ("probabilities",),
    "gaussian": ("mean", "std"),
    "action": ("action",),
}
NOTE_NAME = "reinforce_tf"  # the TFLite metadata entry and the ONNX metadata property
SAVED_MODEL_NOTE = Path("assets.extra") / "reinforce_tf.json"  # inside a SavedModel folder
# The package that runs each format, what to pip install when it is missing, and its name.
RUNTIMES = {
    "saved_model": ("tensorflow", "tensorflow", "TensorFlow"),
    "litert": ("ai_edge_litert", "ai-edge-litert", "LiteRT"),
    "onnx": ("onnxruntime", "onnxruntime", "ONNX Runtime"),
}
# What a runtime's message carries besides its reason: ONNX Runtime's error code prefix, and
# a C++ source location with its function ("/…/bfc_arena.cc:360 void* ns::F(size_t) ").
RUNTIME_NOISE = re.compile(
    r"^\[ONNXRuntimeError\] : \d+ : \w+ : |\S+\.(?:cc|cpp|h):\d+ (?:[^()]*::[^()]*\([^()]*\) )?"
)


def export_format(path: str | os.PathLike) -> str | None:
    """The format of the export at `path`, by its path: a folder holding `saved_model.pb`,
    a `.tflite` or an `.onnx` file; None for anything else (such as a `.keras` file)."""
    path = Path(path)
    if path.is_dir():
        return "saved_model" if (path / "saved_model.pb").is_file() else None
    return {suffix: name for name, suffix in SUFFIXES.items()}.get(path.suffix)


class ExportedPolicy:
    """An export loaded by its runtime: call it on observations to get its outputs.

    Attributes:
        path: where it was read from.
        format: "saved_model", "litert" or "onnx".
        kind: "probabilities", "gaussian" or "action" (a greedy export).
        observation_shape: O, the shape of one observation.
        action_size: A or D; None for a greedy export of a Discrete policy (its output, the
            action index, does not tell how many actions there are).
        discrete: whether the actions are discrete.
        note: the policy's note (env id, spaces, the export's own entry); {} if none.
    """

    def __init__(
        self,
        path: Path,
        format: str,
        run: Callable[[np.ndarray], dict[str, np.ndarray]],
        observation_shape: tuple[int, ...],
        outputs: dict[str, tuple[tuple, str]],
        note: dict,
    ):
        """`run`: observations [B, *O] float32 → {output name: array}; `outputs`: each
        output's shape (None for the batch) and dtype name."""
        self.path, self.format, self._run, self.note = path, format, run, note
        self.observation_shape = observation_shape
        self.kind = next(
            (kind for kind, names in OUTPUTS.items() if set(names) == set(outputs)), None
        )
        if self.kind is None or len(observation_shape) < 1:
            raise _not_an_export(path, format, f"its outputs are {sorted(outputs)}")
        shape, dtype = outputs[OUTPUTS[self.kind][0]]
        self.discrete = self.kind == "probabilities" or (
            self.kind == "action" and "int" in dtype and len(shape) == 1
        )
        self.action_size = None if self.kind == "action" and self.discrete else shape[-1]
        if self.action_size is not None and len(shape) != 2:
            raise _not_an_export(path, format, f"its output {OUTPUTS[self.kind][0]!r} is {shape}")

    def __call__(self, observations: np.ndarray) -> dict[str, np.ndarray]:
        """The outputs for observations [B, *O] (cast to float32), each [B, ...].

        Raises:
            InputError: naming `policy`: the runtime failed to run the export (a graph that
                raises, or asks for more memory than there is), with the runtime's reason.
        """
        try:
            return self._run(np.ascontiguousarray(observations, np.float32))
        except Exception as error:  # noqa: BLE001 (each runtime raises its own types)
            raise InputError(
                f"{str(self.path)!r} fails when {RUNTIMES[self.format][2]} runs it "
                f"({_runtime_reason(error)})",
                field="policy",
            ) from None

    def actor(
        self, action_space: gym.Space, *, greedy: bool = False, seed: int = 0
    ) -> Callable[[np.ndarray], np.ndarray]:
        """An act function like `policy.make_actor`'s: observations [B, *O] → actions [B]
        (indices from 0) or [B, D] (unclipped), for `envs.to_env_actions`.

        Greedy: the argmax of the probabilities, or the mean (a greedy export's own action,
        less the Discrete space's `start`, which `to_env_actions` adds back). Sampled:
        inverse-CDF draws from the probabilities, or mean + std · N(0, I), from a NumPy
        generator seeded with `seed` (a stream other than `make_actor`'s).

        Raises:
            InputError: a greedy export asked to sample (naming --mode).
        """
        if self.kind == "action":
            if not greedy:
                raise InputError(
                    f"{str(self.path)!r} is a greedy export: it outputs the action, with no "
                    "distribution to sample from; pass --mode=greedy",
                    field="mode",
                )
            start = int(action_space.start) if isinstance(action_space, gym.spaces.Discrete) else 0
            return lambda observations: self(observations)["action"] - start
        rng = np.random.default_rng(seed)
        if self.kind == "probabilities":

            def act(observations):
                probabilities = self(observations)["probabilities"]  # [B, A]
                if greedy:
                    return probabilities.argmax(axis=-1).astype(np.int32)
                below = probabilities.cumsum(axis=-1) < rng.random((len(probabilities), 1))
                return np.minimum(below.sum(axis=-1), probabilities.shape[-1] - 1).astype(np.int32)

            return act

        def act(observations):
            outputs = self(observations)
            if greedy:
                return outputs["mean"]
            return outputs["mean"] + outputs["std"] * rng.standard_normal(outputs["mean"].shape)

        return act


def load_exported(path: str | os.PathLike) -> ExportedPolicy:
    """Loads the export at `path` with its format's runtime.

    Loading runs the export once, on an all-zero observation: an export its runtime cannot
    run fails here, as `ExportedPolicy.__call__` says.

    Raises:
        InputError: naming `policy`: not an export, its runtime is not installed, the file
            is damaged, its signature is not a policy's, or it fails to run.
    """
    path = Path(path)
    format = export_format(path)
    if format is None:
        raise InputError(
            f"{str(path)!r} is not an export: a SavedModel folder (with saved_model.pb), a "
            ".tflite or an .onnx file",
            field="policy",
        )
    if not path.exists():
        raise InputError(f"no such file: {str(path)!r}", field="policy")
    module, package, _ = RUNTIMES[format]
    try:
        importlib.import_module(module)
    except ImportError:
        raise extras.missing(
            f"playing {FORMAT_NAMES[format]} exports needs {package}", "export", field="policy"
        ) from None
    loader = {"saved_model": _saved_model, "litert": _litert, "onnx": _onnx}[format]
    try:
        run, observation_shape, outputs, note = loader(path)
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 (each runtime raises its own types)
        raise _not_an_export(path, format, printable(error_reason(error))) from None
    policy = ExportedPolicy(path, format, run, observation_shape, outputs, _note(note))
    # The first run also allocates LiteRT's tensors (and prints its "INFO: Created TensorFlow
    # Lite XNNPACK delegate" line): done now, while loading, where a caller can silence it.
    policy(np.zeros((1, *observation_shape), np.float32))
    return policy


def _not_an_export(path: Path, format: str, why: str) -> InputError:
    return InputError(
        f"{str(path)!r} is not a readable {FORMAT_NAMES[format]} policy export ({why})",
        field="policy",
    )


def _observation_shape(path: Path, format: str, inputs: dict[str, tuple]) -> tuple[int, ...]:
    """O, from the signature's inputs {name: shape, None for an unknown size}."""
    if list(inputs) != [INPUT]:
        raise _not_an_export(path, format, f"its inputs are {sorted(inputs)}, not one {INPUT!r}")
    shape = inputs[INPUT]
    if not shape or any(d is None or d < 0 for d in shape[1:]):
        raise _not_an_export(path, format, f"its input {INPUT!r} has the shape {shape}")
    return tuple(int(d) for d in shape[1:])


def _saved_model(path: Path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if SIGNATURE not in loaded.signatures:
        raise _not_an_export(path, "saved_model", f"it has no signature {SIGNATURE!r}")
    function = loaded.signatures[SIGNATURE]
    inputs = {
        name: tuple(spec.shape) for name, spec in function.structured_input_signature[1].items()
    }
    outputs = {
        name: (tuple(spec.shape), spec.dtype.name)
        for name, spec in function.structured_outputs.items()
    }
    observation_shape = _observation_shape(path, "saved_model", inputs)

    def run(observations):
        results = function(**{INPUT: tf.constant(observations)})
        return {name: value.numpy() for name, value in results.items()}

    run.loaded = loaded  # its variables back `function`: keep it alive as long as `run`

    note = path / SAVED_MODEL_NOTE
    return run, observation_shape, outputs, note.read_text("utf-8") if note.is_file() else None


def _litert(path: Path):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(SIGNATURE)
    inputs = {
        name: tuple(None if d < 0 else int(d) for d in detail["shape_signature"])
        for name, detail in runner.get_input_details().items()
    }
    outputs = {
        name: (
            tuple(None if d < 0 else int(d) for d in detail["shape_signature"]),
            np.dtype(detail["dtype"]).name,
        )
        for name, detail in runner.get_output_details().items()
    }
    observation_shape = _observation_shape(path, "litert", inputs)
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    note = None
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == NOTE_NAME.encode():
            note = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode("utf-8")
    return lambda observations: runner(**{INPUT: observations}), observation_shape, outputs, note


def _onnx(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # fatal only: its errors reach the caller as exceptions
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = {
        i.name: tuple(d if isinstance(d, int) else None for d in i.shape)
        for i in session.get_inputs()
    }
    outputs = {
        o.name: (tuple(d if isinstance(d, int) else None for d in o.shape), _onnx_dtype(o.type))
        for o in session.get_outputs()
    }
    observation_shape = _observation_shape(path, "onnx", inputs)
    names = list(outputs)

    def run(observations):
        return dict(zip(names, session.run(names, {INPUT: observations}), strict=True))

    note = session.get_modelmeta().custom_metadata_map.get(NOTE_NAME)
    return run, observation_shape, outputs, note


def _runtime_reason(error: Exception) -> str:
    """Why a runtime failed, as one short printable line: the first line of its message
    that says what failed (not TensorFlow's "Graph execution error:", "Detected at node …:"
    headers, stack lines or "<stack traces unavailable>"), less `RUNTIME_NOISE`."""
    lines = [
        line
        for line in str(error).splitlines()
        if line.strip() and not line[0].isspace() and line[0] != "<" and line[-1] != ":"
    ]
    return printable(RUNTIME_NOISE.sub("", lines[0]) if lines else type(error).__name__)


def _onnx_dtype(type_name: str) -> str:
    """onnxruntime's "tensor(float)" → "float32"; "tensor(int64)" → "int64"."""
    inner = type_name.removeprefix("tensor(").removesuffix(")")
    return {"float": "float32", "double": "float64"}.get(inner, inner)


def _note(text: str | None) -> dict:
    """The note's JSON object; {} when there is none or it is not a JSON object. Quote its
    text through `printable`, as `saving.load_metadata`'s."""
    try:
        note = json.loads(text) if text else {}
    except ValueError:
        return {}
    return note if isinstance(note, dict) else {}


def load_any_policy(path: str | os.PathLike) -> tuple[keras.Model | ExportedPolicy, dict]:
    """A `.keras` policy (`saving.load_policy`) or an export (`load_exported`), told apart
    by the path (`export_format`), and its note.

    Raises:
        InputError: naming `policy`, as those two do.
    """
    if export_format(path) is not None:
        policy = load_exported(path)
        return policy, policy.note
    if Path(path).is_dir():
        raise InputError(
            f"{str(path)!r} is a folder without saved_model.pb: neither a .keras policy nor a "
            "SavedModel export",
            field="policy",
        )
    if Path(path).suffix not in (".keras", ".h5"):
        raise InputError(
            f"must be a .keras policy or an export (a SavedModel folder, a .tflite or an .onnx "
            f"file); got {str(path)!r}",
            field="policy",
        )
    return load_policy(path), load_metadata(path)
