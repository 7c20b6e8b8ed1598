"""Export a saved policy for serving: a SavedModel folder, a LiteRT or an ONNX file.

python scripts/export.py --policy=policy.keras --format=onnx --output=policy.onnx
python scripts/export.py --format=litert --output=policy.tflite --greedy   # outputs the action
python scripts/export.py --format=saved_model --output=policy_savedmodel   # a folder

The export is checked against the policy by its own runtime before it is written; see the
README's "Serving formats" for the signatures and how to load each one.
"""

import _cli  # first: it imports TensorFlow quietly
from absl import app, flags

from reinforce_tf.training.envs import refuse_file_import
from reinforce_tf.training.evaluate import recorded_env
from reinforce_tf.training.export import Export, export_file
from reinforce_tf.training.exported import FORMAT_NAMES, FORMATS
from reinforce_tf.training.saving import load_metadata

_POLICY = flags.DEFINE_string("policy", "policy.keras", "The .keras policy file to export.")
_FORMAT = flags.DEFINE_enum(
    "format",
    None,
    FORMATS,
    "Required. saved_model: a SavedModel folder (TensorFlow, TF Serving); litert: a .tflite file "
    "(LiteRT, formerly TensorFlow Lite: phones, microcontrollers); onnx: an .onnx file "
    "(ONNX Runtime: C++, C#, Java, the browser).",
)
_OUTPUT = flags.DEFINE_string(
    "output",
    None,
    "Required. Where to write the export: a folder for saved_model (new, empty, or an earlier "
    "SavedModel, which is replaced), a file ending in .tflite or .onnx.",
)
_GREEDY = flags.DEFINE_bool(
    "greedy",
    False,
    "Output the action itself instead of the distribution: the most probable action "
    "(plus the Discrete space's start), or the mean clipped to the action bounds.",
)
_ENV = flags.DEFINE_string(
    "env",
    None,
    "Gymnasium environment id, checked against the policy and recorded in the export; its "
    "action space gives --greedy its bounds. Default: the env the policy was trained on; when "
    "that id is module:EnvId, give it here to import the module (a file never chooses code to "
    "import).",
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    export = _cli.run_reporting_input_errors(
        _export, interrupted="interrupted; no export written (one already at --output is kept)"
    )
    print(
        f"{export.path}: {FORMAT_NAMES[export.format]}, {export.size:,} bytes, outputs "
        f"{', '.join(export.outputs)}; acts as the policy (largest difference "
        f"{export.max_difference:.1g})"
    )


def _export() -> Export:
    if not _FORMAT.value:
        raise _cli.InputError(f"is required: one of {', '.join(FORMATS)}", field="format")
    if not _OUTPUT.value:
        raise _cli.InputError("is required: where to write the export", field="output")
    if not _ENV.value:
        recorded = recorded_env(load_metadata(_POLICY.value))
        if recorded:
            refuse_file_import(recorded, "the policy file")
    # Converters (TFLite's MLIR passes, tf2onnx) print to stderr; errors come after, as one line.
    with _cli.stderr_silenced():
        return export_file(
            _POLICY.value, _FORMAT.value, _OUTPUT.value, greedy=_GREEDY.value, env_id=_ENV.value
        )


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
