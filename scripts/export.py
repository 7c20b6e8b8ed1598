"""Export a saved policy to a SavedModel folder, a LiteRT or an ONNX file.

Runs `reinforce_tf/cli/export.py` with this checkout's package; installed, the same tool is
`python -m reinforce_tf.cli.export` or `reinforce-tf-export`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reinforce_tf.cli.export import run

if __name__ == "__main__":
    run()
