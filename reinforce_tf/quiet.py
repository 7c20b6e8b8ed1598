"""Keeping what C++ libraries write to file descriptor 2 (TensorFlow's start-up lines,
LiteRT's, Ray's core while it connects) off the terminal, so our messages stay one line."""

import contextlib
import os
import sys
import threading


@contextlib.contextmanager
def stderr_silenced(at_most: float | None = None, note: str = ""):
    """Sends file descriptor 2 to /dev/null inside the block, or for its first `at_most`
    seconds only: then it is restored and `note` (a line) written first, so a wait nobody
    bounds is never a silent one. Python's own errors print after the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    lock, restored = threading.Lock(), []

    def restore(line: str = "") -> None:
        with lock:
            if not restored:
                restored.append(True)
                os.dup2(saved, 2)
                if line:
                    os.write(2, line.encode())

    timer = None
    if at_most is not None:
        timer = threading.Timer(at_most, restore, [note])
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
        sys.stderr.flush()
        restore()
        os.close(saved)
