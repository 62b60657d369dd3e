"""Thin adapter between the harness and the built-in workload (`runtime/workload/`).

The harness treats the built-in model and data exactly like a user's classes named by
import path: it passes each knob, by name, to the constructor that accepts it. This module
supplies the few joins the workload needs that no knob expresses: the model is built from
the simulated probe, mask and photon count, and the registry's `subsample_seed` is the
simulation seed of the data module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning

from ptycho_knobs.runtime.workload import PtychoDataModule, PtychoPINNModule, reconstruct_and_report

#: The workload.* target attrs whose data-module field has another name.
WORKLOAD_FIELDS = {"subsample_seed": "seed"}


class BuiltinDataModule(PtychoDataModule):
    """`PtychoDataModule` taking the registry's knob names (`subsample_seed` seeds the simulator)."""

    def __init__(self, *, subsample_seed: int, **kwargs: Any) -> None:
        super().__init__(seed=subsample_seed, **kwargs)


def make_model(datamodule: lightning.LightningDataModule, **kwargs: Any) -> PtychoPINNModule:
    """The model needs the simulated probe and mask, so the data is simulated first (cached)."""
    if getattr(datamodule, "data", None) is None:
        datamodule.prepare_data()
    data = datamodule.data
    return PtychoPINNModule(data.probes, data.mask, data.spec.nphotons, **kwargs)


def workload_value(datamodule: Any, attr: str) -> Any:
    """Read a workload.* target back from the built data module's simulation spec."""
    return getattr(datamodule.spec, WORKLOAD_FIELDS.get(attr, attr))


def report(model: lightning.LightningModule, datamodule: Any, out_dir: Path, inference: dict[str, Any]) -> dict[str, object]:
    """After training (rank 0): reconstruct, score, write summary.json and reconstruction.png."""
    return reconstruct_and_report(model, datamodule.data, out_dir, **inference)


def is_builtin(model: object) -> bool:
    return isinstance(model, PtychoPINNModule)


#: build_optimizers' scheduler classes -> the scheduler_type that makes them (read-back).
SCHEDULER_NAMES = {None: "default", "ExponentialLR": "exponential", "LambdaLR": "multistage", "ReduceLROnPlateau": "adaptive"}
