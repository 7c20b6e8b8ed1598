"""What the command-line tools share: a quiet, lean TensorFlow import and one-line errors.

Import this module before anything that imports TensorFlow: it loads TensorFlow with the
process's stderr (file descriptor 2) sent to /dev/null, hiding the C++ start-up lines
(oneDNN, CUDA probing) that no environment variable silences, and without the optional
packages Keras probes for at import (`OPTIONAL_AT_IMPORT`).
"""

import contextlib
import gc
import os
import signal
import sys

from absl import flags

from reinforce_tf.quiet import stderr_silenced


@contextlib.contextmanager
def modules_hidden(names: tuple[str, ...]):
    """Inside the block `import name` raises ImportError for each of `names` not imported
    yet (a None entry in `sys.modules`); after it they import as usual."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


# Packages that TensorFlow's import (Keras 3 and TF's legacy Keras) loads inside
# `try: import … except ImportError` for features no script uses: image plots, DataFrame
# inputs, bounding boxes, sparse inputs, image files. They were ~0.7 s of a
# CartPole run's ~4.7 s. Hidden while TensorFlow loads, so Keras records them as absent;
# code of ours that needs one (scripts/plot.py: matplotlib) imports it later as usual.
OPTIONAL_AT_IMPORT = ("matplotlib", "pandas", "scipy", "cv2", "PIL")

# Exit status after an interruption (Ctrl-C, SIGTERM): 128 + SIGINT, as shells report it.
INTERRUPTED = 130
_TERMINAL = os.dup(2)  # stderr as given, even while it is silenced below


def _interrupted_while_starting(number, frame):
    """Ctrl-C before the flags are parsed (during the imports): one line, no traceback."""
    os.write(_TERMINAL, b"\ninterrupted while starting; nothing was written\n")
    os._exit(INTERRUPTED)


signal.signal(signal.SIGINT, _interrupted_while_starting)  # until `parse_flags`
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One thread per op and one op at a time: the policies are small, so more threads only take
# the cores from the env (MuJoCo) and add hand-offs to every act() call (docs/benchmarks.md).
# Setting either variable overrides this.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
# The imports leave ~270k objects that live as long as the process. Collecting while they are
# made, then scanning them in every full collection and in the collections at exit, took
# ~0.4 s of a CartPole run's start and ~0.7 s of its exit: no collection during the imports,
# and after them `gc.freeze` puts them where the collector never looks.
gc.disable()
with stderr_silenced(), modules_hidden(OPTIONAL_AT_IMPORT):
    import tensorflow as tf

    tf.constant(0.0).numpy()  # device start-up prints too; do it here, silenced

from reinforce_tf import extras
from reinforce_tf.errors import ExportError, InputError, TrainingError

gc.freeze()
gc.enable()


def pyplot():
    """matplotlib.pyplot with the Agg backend (files only, no display).

    Raises:
        InputError: matplotlib is not installed (naming the `plot` extra).
    """
    try:
        import matplotlib
    except ImportError:
        raise extras.missing("plotting needs matplotlib", "plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def invoked_as() -> str:
    """The command the user ran this tool with, to repeat in advice: the console script
    ("reinforce-tf-train"), "python -m reinforce_tf.cli.train", or "python scripts/train.py"
    (as typed)."""
    script = sys.argv[0]
    if not script.endswith(".py"):
        return os.path.basename(script)
    if os.path.dirname(os.path.abspath(script)) == os.path.dirname(os.path.abspath(__file__)):
        return f"python -m reinforce_tf.cli.{os.path.basename(script)[:-3]}"
    return f"python {script}"


def fail(message: str) -> None:
    """Prints `message` as one line on stderr and exits with status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


_HELP_FLAGS = ("--help", "-help", "--helpfull", "-helpfull", "--helpshort", "-helpshort", "-?")


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing with each error as one line instead of a usage dump.

    By now the imports are done: Ctrl-C goes back to Python's KeyboardInterrupt, which the
    trainer and `run_reporting_input_errors` handle.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return flags.FLAGS(argv)
    except SystemExit:
        # absl prints the help asked for, then exits 1; asking for help is no failure.
        if any(arg.partition("=")[0] in _HELP_FLAGS for arg in argv[1:]):
            sys.exit(0)
        raise
    except flags.Error as error:
        # absl prefixes a flagfile's problems with "ERROR:: ".
        fail(
            str(error)
            .removeprefix("ERROR:: ")
            .replace("Unable to open flagfile", "--flagfile: cannot open it")
        )
    except UnicodeDecodeError as error:  # absl reads a --flagfile as text
        fail(
            "--flagfile: must be a text file of --flag=value lines (UTF-8); "
            f"{error.reason} at byte {error.start}"
        )


def run_reporting_input_errors(function, *args, interrupted: str = "interrupted"):
    """Calls `function(*args)`; known failures become one line on stderr.

    A bad input (`InputError`, exit 2) names its flag: `--gamma: must be in [0, 1]; got 2.0`.
    A `TrainingError` (exit 1) says what stopped training and where; an `ExportError`
    (exit 1) what failed in an export. A KeyboardInterrupt that `function` did not absorb
    (for the trainer, a second Ctrl-C) prints `interrupted` and exits with INTERRUPTED.
    """
    try:
        return function(*args)
    except InputError as error:
        fail(f"--{error.field}: {error.reason}" if error.field else error.reason)
    except (TrainingError, ExportError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        sys.exit(INTERRUPTED)
