"""SIGTERM, what SLURM, Kubernetes and `kill` send at a time limit, handled like Ctrl-C.

Lightning's own handling made a SIGTERM look like success: it stops at the next batch by
raising `SIGTERMException`, a `SystemExit` with no code (exit 0), and saves nothing; under
DDP its handler even runs a collective inside the signal handler. So `train` owns the
signal:

- outside training (building, simulating, reporting) the handler raises `Terminated`
  at once, as Ctrl-C raises KeyboardInterrupt; there is nothing to save;
- while training, it only records the request. After each training step the ranks share
  it in the all-reduce they already make for the loss check (`callbacks.StepGuard`), so
  every rank stops after the same step, at a batch boundary, and rank 0 saves last.ckpt.
  That works whether the signal reached the whole process group (SLURM) or only the main
  process (Kubernetes signals PID 1).

Lightning installs its handler when fit starts; `StepGuard` puts this one back when
training starts, and Lightning restores it when fit ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived outside training. A BaseException, like KeyboardInterrupt, so no `except Exception` swallows it."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class _State:
    training = False
    requested: int | None = None


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.training:
        _state.requested = signum
        return
    raise Terminated(signum)


def install() -> None:
    """Route SIGTERM to this module (main thread only; elsewhere Python cannot set handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _handler)


def training(active: bool) -> None:
    """Enter (True) or leave (False) the stretch where a SIGTERM is deferred to the next step."""
    if active:
        install()
    _state.training = active


def requested() -> int | None:
    """The signal received while training and not acted upon yet, if any."""
    return _state.requested


def reset() -> None:
    _state.training, _state.requested = False, None


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """This module handles SIGTERM for the duration of a `train` command; the old handler comes back after."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.getsignal(signal.SIGTERM) if main else None
    reset()
    install()
    try:
        yield
    finally:
        reset()
        if main:
            signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)
