"""Errors the harness reports without a traceback, each with its documented exit code.

`train` exit codes: 0 trained (or dry-run clean); 1 the run failed while training
(a non-finite loss); 2 usage or configuration error, including a dry-run read-back
disagreement, a checkpoint that does not load and a run folder in use by another
process; 130 interrupted by Ctrl-C and 143 stopped by SIGTERM (the shell's 128 + signal
number, which schedulers read as "killed by that signal": requeue it), in both cases
after a last checkpoint was saved when training had started.
"""

from __future__ import annotations

import signal

from ptycho_knobs.errors import KnobsError

EXIT_TRAINING_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143

#: How each stop signal is named in messages and status.json, and the exit code it ends with.
SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
SIGNAL_EXIT = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}


class HarnessError(KnobsError):
    """The resolved config cannot be built on this machine (import path, accelerator, backend)."""

    exit_code = EXIT_CONFIG


class ReadbackMismatch(KnobsError):
    """A value read back from the built objects differs from the resolved value."""

    exit_code = EXIT_CONFIG


class CheckpointError(KnobsError):
    """A checkpoint to resume from does not load (truncated, not a checkpoint, missing state)."""

    exit_code = EXIT_CONFIG


class RunInUse(KnobsError):
    """Another live process holds the run folder's lock."""

    exit_code = EXIT_CONFIG


class NonFiniteLoss(KnobsError):
    """The training loss became NaN or infinite; the run stops instead of training garbage."""

    exit_code = EXIT_TRAINING_FAILED


class Interrupted(KnobsError):
    """Ctrl-C (SIGINT) or SIGTERM: the run stopped cleanly, after saving last.ckpt if it was training."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = SIGNAL_EXIT.get(signum, EXIT_INTERRUPTED)
