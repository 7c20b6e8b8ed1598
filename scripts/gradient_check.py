"""Exact policy gradient against our REINFORCE estimate on two finite MDPs.

Runs `reinforce_tf/cli/gradient_check.py` with this checkout's package; installed, the same tool is
`python -m reinforce_tf.cli.gradient_check`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reinforce_tf.cli.gradient_check import run

if __name__ == "__main__":
    run()
