"""Evaluate a saved policy with sampled and with greedy actions.

Runs `reinforce_tf/cli/evaluate.py` with this checkout's package; installed, the same tool is
`python -m reinforce_tf.cli.evaluate` or `reinforce-tf-evaluate`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reinforce_tf.cli.evaluate import run

if __name__ == "__main__":
    run()
