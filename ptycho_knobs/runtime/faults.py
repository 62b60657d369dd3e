"""Errors the harness reports without a traceback, each with its documented exit code.

`train` exit codes: 0 trained (or dry-run clean); 1 the run failed while training
(a non-finite loss); 2 usage or configuration error, including a dry-run read-back
disagreement; 130 interrupted by Ctrl-C after a last checkpoint was saved (the shell's
128 + SIGINT convention).
"""

from __future__ import annotations

from ptycho_knobs.errors import KnobsError

EXIT_TRAINING_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


class HarnessError(KnobsError):
    """The resolved config cannot be built on this machine (import path, accelerator, backend)."""

    exit_code = EXIT_CONFIG


class ReadbackMismatch(KnobsError):
    """A value read back from the built objects differs from the resolved value."""

    exit_code = EXIT_CONFIG


class NonFiniteLoss(KnobsError):
    """The training loss became NaN or infinite; the run stops instead of training garbage."""

    exit_code = EXIT_TRAINING_FAILED


class Interrupted(KnobsError):
    """Ctrl-C (SIGINT) during fit: a last checkpoint was written and the run stopped cleanly."""

    exit_code = EXIT_INTERRUPTED
