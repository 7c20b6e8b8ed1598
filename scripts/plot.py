"""Plot learning curves from run folders.

Runs `reinforce_tf/cli/plot.py` with this checkout's package; installed, the same tool is
`python -m reinforce_tf.cli.plot` or `reinforce-tf-plot`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reinforce_tf.cli.plot import run

if __name__ == "__main__":
    run()
