"""Train a policy by REINFORCE and save it as a Keras model.

Runs `reinforce_tf/cli/train.py` with this checkout's package; installed, the same tool is
`python -m reinforce_tf.cli.train` or `reinforce-tf-train`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reinforce_tf.cli.train import run

if __name__ == "__main__":
    run()
