"""Callbacks the harness adds to every fit: run status, NaN guard, Ctrl-C checkpoint, RNG state.

None of them carries a knob value: they exist so that a run folder always says how the
run ended (`status.json`), a diverging loss stops the run with a message instead of
training on NaN, Ctrl-C leaves a `last.ckpt` to resume from, and a resumed run draws the
same shuffles as an uninterrupted one.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch

from ptycho_knobs.atomic import write_text

STATUS_FILE = "status.json"
LAST_CHECKPOINT = "last.ckpt"


class RunStatus(lightning.Callback):
    """Writes `<run>/status.json` (state, epoch, step, time) when training starts and ends.

    Rank 0 only. Scripts and tests watch it: `running`, then `finished`, `interrupted`
    (Ctrl-C) or `failed` (with the error), so a dead run never looks like a live one.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / STATUS_FILE

    def write(self, trainer: lightning.Trainer, state: str, **extra: Any) -> None:
        if not trainer.is_global_zero:
            return
        body = {"state": state, "epoch": trainer.current_epoch, "global_step": trainer.global_step,
                "time": time.time(), **extra}
        write_text(self.path, json.dumps(body) + "\n")

    def on_train_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self.write(trainer, "running")

    def on_train_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self.write(trainer, "finished")

    def on_exception(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                     exception: BaseException) -> None:
        state = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
        self.write(trainer, state, error=f"{type(exception).__name__}: {exception}")


class NaNGuard(lightning.Callback):
    """Stops the run when a training-step loss is NaN or infinite (checked after every batch).

    Under DDP the ranks decide together: each step's losses are shared (one all-reduce
    of world_size floats), so every rank stops at the same step. A rank that stopped alone would
    leave the others waiting in their next all-reduce until the peer connection dropped.
    """

    def __init__(self) -> None:
        self.bad: dict[str, Any] | None = None

    def on_train_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        # each rank fills its own slot; a sum all-reduce then hands every rank every loss
        losses = torch.zeros(trainer.world_size, device=loss.device)
        losses[trainer.global_rank] = loss.detach().float().mean()
        losses = trainer.strategy.reduce(losses, reduce_op="sum")
        bad_ranks = (~torch.isfinite(losses)).nonzero().reshape(-1).tolist()
        if bad_ranks:
            rank = bad_ranks[0]
            self.bad = {"loss": float(losses[rank]), "rank": rank if trainer.world_size > 1 else None,
                        "epoch": trainer.current_epoch, "batch": batch_idx, "global_step": trainer.global_step}
            raise FloatingPointError(f"non-finite training loss {self.bad['loss']}")


class InterruptCheckpoint(lightning.Callback):
    """On Ctrl-C during fit, saves `<run>/checkpoints/last.ckpt` before Lightning shuts down.

    Written by rank 0 without a barrier: the other ranks may already be gone.
    """

    def __init__(self, checkpoint_dir: Path) -> None:
        self.path = checkpoint_dir / LAST_CHECKPOINT
        self.saved: Path | None = None
        self.interrupted = False

    def on_exception(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule,
                     exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt):
            return
        self.interrupted = True
        if not trainer.is_global_zero:
            return
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
