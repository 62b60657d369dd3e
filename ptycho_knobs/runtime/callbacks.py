"""Callbacks the harness adds to every fit: run status, step guard, stop checkpoint, RNG state.

None of them carries a knob value: they exist so that a run folder always says how the
run ended (`status.json`), a diverging loss stops the run with a message instead of
training on NaN, Ctrl-C or SIGTERM leave a `last.ckpt` to resume from, and a resumed run
draws the same shuffles as an uninterrupted one.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ptycho_knobs.atomic import write_text
from ptycho_knobs.runtime import signals
from ptycho_knobs.runtime.faults import SIGNAL_NAMES

STATUS_FILE = "status.json"
LAST_CHECKPOINT = "last.ckpt"


def stop_signal(exception: BaseException) -> int | None:
    """The signal an exception stands for: SIGINT for Ctrl-C, SIGTERM for a termination request."""
    if isinstance(exception, KeyboardInterrupt):
        return signal.SIGINT
    if isinstance(exception, SIGTERMException | signals.Terminated):
        return signal.SIGTERM
    return None


class RunStatus(lightning.Callback):
    """Writes `<run>/status.json` (state, epoch, step, time) when training starts and ends.

    Rank 0 only. Scripts and tests watch it: `running`, then `finished`, `interrupted`
    (Ctrl-C or SIGTERM, with the signal) or `failed` (with the error), so a dead run never
    looks like a live one. A resume leaves the file as it was until its training really
    starts: one that fails while restoring must not turn a finished run into a failed one.
    """

    def __init__(self, run_dir: Path, *, resume: bool = False) -> None:
        self.path = run_dir / STATUS_FILE
        self.resume = resume
        self.started = False

    def write(self, trainer: lightning.Trainer, state: str, **extra: Any) -> None:
        if not trainer.is_global_zero:
            return
        body = {"state": state, "epoch": trainer.current_epoch, "global_step": trainer.global_step,
                "time": time.time(), **extra}
        write_text(self.path, json.dumps(body) + "\n")

    def on_train_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self.started = True
        self.write(trainer, "running")

    def on_train_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self.write(trainer, "finished")

    def on_exception(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                     exception: BaseException) -> None:
        if self.resume and not self.started:
            return
        signum = stop_signal(exception)
        if signum is not None:
            self.write(trainer, "interrupted", signal=SIGNAL_NAMES[signum])
        else:
            self.write(trainer, "failed", error=f"{type(exception).__name__}: {exception}")


class StepGuard(lightning.Callback):
    """After every training step the ranks decide together whether to stop: a non-finite loss, or SIGTERM.

    One all-reduce of 2 x world_size floats carries each rank's loss and whether it was
    asked to terminate, so every rank stops at the same step. A rank that stopped alone
    would leave the others waiting in their next all-reduce until the peer connection
    dropped. A NaN or infinite loss raises FloatingPointError at once (nothing saved). A
    SIGTERM raises Lightning's SIGTERMException when the next batch would start, where
    Lightning counts the last one as completed and none as begun, so the checkpoint
    `StopCheckpoint` then saves resumes exactly there.
    """

    def __init__(self) -> None:
        self.bad: dict[str, Any] | None = None
        self.stopping = False

    def on_train_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        signals.training(True)

    def on_train_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        signals.training(False)

    def on_exception(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                     exception: BaseException) -> None:
        signals.training(False)

    def on_train_batch_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        if self.stopping:
            raise SIGTERMException()

    def on_train_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        world, rank = trainer.world_size, trainer.global_rank
        # each rank fills its own slots; a sum all-reduce then hands every rank every value
        slots = torch.zeros(2 * world, device=pl_module.device)
        if isinstance(loss, torch.Tensor):
            slots[rank] = loss.detach().float().mean()
        slots[world + rank] = 1.0 if signals.requested() is not None else 0.0
        slots = trainer.strategy.reduce(slots, reduce_op="sum")
        bad_ranks = (~torch.isfinite(slots[:world])).nonzero().reshape(-1).tolist()
        if bad_ranks:
            bad = bad_ranks[0]
            self.bad = {"loss": float(slots[bad]), "rank": bad if world > 1 else None,
                        "epoch": trainer.current_epoch, "batch": batch_idx, "global_step": trainer.global_step}
            raise FloatingPointError(f"non-finite training loss {self.bad['loss']}")
        self.stopping = float(slots[world:].sum()) > 0


class StopCheckpoint(lightning.Callback):
    """On Ctrl-C or SIGTERM during training, saves `<run>/checkpoints/last.ckpt` before Lightning shuts down.

    Written by rank 0 without a barrier (after Ctrl-C the other ranks may already be
    gone), and only once training has started: a stop while a resume is still restoring
    must not overwrite the real last.ckpt with an untrained model.
    """

    def __init__(self, checkpoint_dir: Path) -> None:
        self.path = checkpoint_dir / LAST_CHECKPOINT
        self.saved: Path | None = None
        self.signum: int | None = None
        self.started = False

    @property
    def interrupted(self) -> bool:
        return self.signum is not None

    def on_train_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self.started = True

    def on_exception(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                     exception: BaseException) -> None:
        self.signum = stop_signal(exception)
        if self.signum is None or not self.started or not trainer.is_global_zero:
            return
        # ModelCheckpoint's own save_last must overwrite this file after a resume (it restores
        # last_model_path from the checkpoint), not start last-v1.ckpt beside it
        for callback in trainer.checkpoint_callbacks:
            if getattr(callback, "save_last", False) and Path(callback.dirpath or "").resolve() == self.path.parent.resolve():
                callback.last_model_path = str(self.path)
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, self.path)
        self.saved = self.path


class RngState(lightning.Callback):
    """Saves python/numpy/torch RNG states in each checkpoint and restores them on resume.

    Lightning does not checkpoint the global RNGs, yet the shuffling sampler draws from
    torch's; without this a resumed run sees other batches than a straight one.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        # Plain ints, lists and tensors only, so Lightning's weights_only loading accepts them.
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        return {"python": random.getstate(), "torch": torch.get_rng_state(),
                "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Restore at once: Lightning loads callback state before it builds any loader iterator.
        self._pending = state_dict
        self._restore()

    def _restore(self) -> None:
        if self._pending is not None:
            random.setstate(_tuples(self._pending["python"]))
            kind, keys, pos, has_gauss, gauss = self._pending["numpy"]
            np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
            torch.set_rng_state(self._pending["torch"])
            self._pending = None


def _tuples(value: Any) -> Any:
    """random.setstate wants the tuples back that a checkpoint round trip may turn into lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
