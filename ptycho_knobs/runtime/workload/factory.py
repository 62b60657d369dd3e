"""One-call construction of the default workload: datamodule first, then the model it parameterises."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .datamodule import PtychoDataModule
from .model import PtychoPINNModule


def build_workload(
    *,
    datagen: Mapping[str, Any],
    data_loading: Mapping[str, Any] | None = None,
    architecture: Mapping[str, Any] | None = None,
    optimisation: Mapping[str, Any] | None = None,
    seed: int = 0,
    N: int = 32,
    batch_size: int = 32,
    cache_dir: Path | str | None = None,
) -> tuple[PtychoPINNModule, PtychoDataModule]:
    """Simulate (cached), split, and build the model with the simulated probe, mask and nphotons.

    ``datagen`` holds the datagen knobs, ``data_loading`` the loader knobs,
    ``architecture``/``optimisation`` the model knobs (keyword names as in
    :class:`PtychoDataModule` and :class:`PtychoPINNModule`).  Inference knobs
    go to :func:`reconstruct_and_report` after training.
    """
    datamodule = PtychoDataModule(**datagen, **(data_loading or {}), seed=seed, N=N, batch_size=batch_size, cache_dir=cache_dir)  # ptycho-knobs: ignore[PK007] the caller's knob groups, passed on by name (the harness builds the data module itself)
    datamodule.prepare_data()
    datamodule.setup("fit")
    data = datamodule.data
    model = PtychoPINNModule(data.probes, data.mask, data.spec.nphotons, **(architecture or {}), **(optimisation or {}))
    return model, datamodule
