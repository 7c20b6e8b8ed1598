"""Export a saved policy for serving: a SavedModel folder, a LiteRT or an ONNX file.

python scripts/export.py --policy=policy.keras --format=onnx --output=policy.onnx
python scripts/export.py --format=litert --output=policy.tflite --greedy   # outputs the action
python scripts/export.py --format=saved_model --output=policy_savedmodel   # a folder

The export is checked against the policy by its own runtime before it is written; see the
README's "Serving formats" for the signatures and how to load each one.
"""

from reinforce_tf.cli import common  # first: it imports TensorFlow quietly

# isort: split
from absl import app, flags

from reinforce_tf.training.export import Export, export_file
from reinforce_tf.training.exported import FORMAT_NAMES, FORMATS

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
    "export of ours holding nothing else, which is replaced), a file ending in .tflite or "
    ".onnx.",
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
        common.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    export = common.run_reporting_input_errors(
        _export, interrupted="interrupted; no export written (one already at --output is kept)"
    )
    print(
        f"{export.path}: {FORMAT_NAMES[export.format]}, {export.size:,} bytes, outputs "
        f"{', '.join(export.outputs)}; acts as the policy (largest difference "
        f"{export.max_difference:.1g})"
    )


def _export() -> Export:
    if not _FORMAT.value:
        raise common.InputError(f"is required: one of {', '.join(FORMATS)}", field="format")
    if not _OUTPUT.value:
        raise common.InputError("is required: where to write the export", field="output")
    # Converters (TFLite's MLIR passes, tf2onnx) print to stderr; errors come after, as one line.
    with common.stderr_silenced():
        return export_file(
            _POLICY.value, _FORMAT.value, _OUTPUT.value, greedy=_GREEDY.value, env_id=_ENV.value
        )


def run() -> None:
    """The console script's entry point: parses the flags, then `main`."""
    app.run(main, flags_parser=common.parse_flags)


if __name__ == "__main__":
    run()
