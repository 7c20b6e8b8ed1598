"""Reproduce Sutton & Barto's Figures 13.1 and 13.2 on the short corridor.

Runs `reinforce_tf/cli/reproduce_sutton_barto.py` with this checkout's package; installed,
the same tool is `python -m reinforce_tf.cli.reproduce_sutton_barto`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reinforce_tf.cli.reproduce_sutton_barto import run

if __name__ == "__main__":
    run()
