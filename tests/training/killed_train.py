"""studio-train that SIGKILLs itself at a chosen moment, for tests/training/test_kill.py.

usage: python killed_train.py MODE N override...
MODE checkpoint: die halfway through writing the N-th checkpoint of this process (a partial temporary
file is left, as a kill during torch.save leaves one); evaluation: die while generating images for the
N-th metric evaluation; none: run normally (the test kills it from outside).
"""

import io
import os
import signal
import sys

import torch

import studio.callbacks.checkpointing as checkpointing
import studio.callbacks.generator_metrics as generator_metrics
from studio.cli.train import main
from studio.io.atomic import atomic_write


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_on_call(module, name: str, n: int, before_dying=None) -> None:
    original = getattr(module, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            if before_dying is not None:
                before_dying(*args, **kwargs)
            die()
        return original(*args, **kwargs)

    setattr(module, name, wrapper)


def write_half(state, path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_write(path) as file:
        file.write(buffer.getvalue()[: buffer.tell() // 2])
        file.flush()
        die()


if __name__ == "__main__":
    mode, n, overrides = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if mode == "checkpoint":
        kill_on_call(checkpointing, "save_checkpoint", n, before_dying=write_half)
    elif mode == "evaluation":
        kill_on_call(generator_metrics, "sample_images", n)
    sys.argv = ["studio-train", *overrides]
    main()
