"""Size and per-call latency of each serving format, acting on a batch of 1 observation.

python benchmarks/export_latency.py                    # prints a Markdown table
python benchmarks/export_latency.py --envs=CartPole-v1 --calls=20000 --output=latency.json

The policies come from the trainer's `make_agent` with each env's defaults (initial
weights: size and speed depend on the architecture, not on the values). Each is saved as a
`.keras` file and exported by `training/export.py` to every format, distribution and
greedy. Each export is then run as the README loads it, in this process:
- SavedModel: `tf.saved_model.load(path).signatures["serving_default"](observation=...)`;
- LiteRT: `ai_edge_litert`'s `Interpreter(...).get_signature_runner()(observation=...)`;
- ONNX: `onnxruntime.InferenceSession(path).run(None, {"observation": ...})`.
For comparison, the `.keras` model is called eagerly (`policy(observation)`, what the
README's "The saved policy" shows) and through the trainer's compiled `make_actor`.

A call's latency is its wall time on one observation [1, O] (the runtimes' default thread
settings); we report the median and the 99th percentile of `--calls` calls after 100
warm-up calls. The machine's load matters: run it on an idle machine.
"""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from reinforce_tf.cli import common as _cli  # first: it imports TensorFlow quietly

# isort: split
import report as report_lib
import serving
from absl import app, flags

_ENVS = flags.DEFINE_list(
    "envs",
    "CartPole-v1,InvertedPendulum-v5",
    "Gymnasium ids whose default policies are exported (comma list).",
)
_CALLS = flags.DEFINE_integer(
    "calls", 5000, "Timed calls per export (> 0), after 100 warm-up calls.", lower_bound=1
)
_OUTPUT = flags.DEFINE_string("output", None, "Also write every number as JSON to this path.")


def _quietly(env_id: str, folder: Path) -> list[dict]:
    with _cli.stderr_silenced():  # converters and LiteRT print to stderr
        return serving.measure(env_id, folder, _CALLS.value)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    machine = report_lib.machine()
    print(f"export latency on {machine}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for env_id in _ENVS.value:
            rows += _cli.run_reporting_input_errors(_quietly, env_id, Path(folder))
    print(serving.markdown(rows))
    if _OUTPUT.value:
        Path(_OUTPUT.value).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    app.run(main, flags_parser=_cli.parse_flags)
