"""Lightning data module serving simulated diffraction patterns.

Construction order for a harness (see also :func:`build_workload`):
datamodule first, ``prepare_data()`` + ``setup()``, then the model with
``datamodule.data.probes``, ``datamodule.data.mask`` and ``nphotons``.

``gridsize`` > 1 serves groups of gridsize**2 neighbouring patterns (for
PtychoPINN's overlap constraint) instead of single patterns; validation
groups anchor on held-out patterns and may borrow training neighbours.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning
import torch
from torch.utils.data import DataLoader, Dataset

from .simulator import SimulatedData, SimulationSpec, simulate


class PatternDataset(Dataset):
    """Indexable view of selected patterns: counts (model input and target), truth (metrics only)."""

    def __init__(self, data: SimulatedData, indices: torch.Tensor) -> None:
        self.counts = data.counts
        self.truth = data.truth
        self.probe_index = data.probe_index
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        j = int(self.indices[i])
        return {"counts": self.counts[j], "truth": self.truth[j], "probe_index": self.probe_index[j]}


class GroupDataset(PatternDataset):
    """Groups of neighbouring patterns (``groups[i]`` = K pattern indices, anchor first) for the overlap loss.

    ``offsets`` are each member's scan position relative to the corner of the
    group's bounding box (per-axis minimum, so all offsets are >= 0), so
    :func:`~.model.overlap_merge` can place the predicted patches on one canvas.
    """

    def __init__(self, data: SimulatedData, groups: torch.Tensor) -> None:
        super().__init__(data, groups[:, 0])
        self.groups = groups
        corners = data.positions[groups]
        self.offsets = corners - corners.amin(dim=1, keepdim=True)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        members = self.groups[i]
        return {"counts": self.counts[members], "truth": self.truth[members], "probe_index": self.probe_index[members], "offsets": self.offsets[i]}


NEIGHBOUR_BLOCK = 1024
"""Anchors per distance-matrix block in :func:`neighbour_groups` (bounds memory for large scans)."""


def neighbour_groups(positions: torch.Tensor, object_index: torch.Tensor, anchors: torch.Tensor, candidates: torch.Tensor, k: int) -> torch.Tensor:
    """``[len(anchors), k]``: each anchor pattern, then its ``k - 1`` nearest scan neighbours on the same object.

    Neighbours are drawn from ``candidates`` (the training split passes its
    own indices, so it never borrows a held-out pattern); ties are broken by
    index, so grouping is deterministic.
    """
    groups = torch.empty(len(anchors), k, dtype=torch.long)
    for obj in object_index[anchors].unique().tolist():
        pool = candidates[object_index[candidates] == obj]
        if len(pool) < k:
            raise ValueError(f"object {obj} has {len(pool)} patterns to group, fewer than gridsize**2 = {k}")
        where = (object_index[anchors] == obj).nonzero().squeeze(1)
        pool_pos = positions[pool].float()
        for start in range(0, len(where), NEIGHBOUR_BLOCK):
            rows = where[start : start + NEIGHBOUR_BLOCK]
            dist = torch.cdist(positions[anchors[rows]].float(), pool_pos)
            dist[pool[None, :] == anchors[rows][:, None]] = math.inf  # the anchor leads its group; never its own neighbour
            nearest = torch.sort(dist, dim=1, stable=True).indices[:, : k - 1]
            groups[rows, 0] = anchors[rows]
            groups[rows, 1:] = pool[nearest]
    return groups


def split_indices(total: int, val_split: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (train, val) index split; at least one validation pattern when val_split > 0."""
    if not 0.0 <= val_split < 1.0:
        raise ValueError("val_split must be in [0, 1)")
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(total * val_split)) if val_split > 0 else 0
    return perm[n_val:].sort().values, perm[:n_val].sort().values


class ArgumentError(ValueError):
    """A constructor argument the workload does not accept; ``argument`` names it (for located errors)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


def require_int(name: str, value: object, minimum: int) -> None:
    """``value`` must be an int (not a bool) >= ``minimum``; else :class:`ArgumentError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(name, f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ArgumentError(name, f"{name} must be >= {minimum}, got {value}")


class PtychoDataModule(lightning.LightningDataModule):
    """Simulates (with caching) in ``prepare_data``, splits in ``setup``; exposes ``.data``.

    The loaders last built are kept as ``train_loader_`` / ``val_loader_`` so
    callers can check that the loading knobs reached the DataLoader.
    """

    def __init__(
        self,
        *,
        objects_per_probe: int = 4,
        diff_per_object: int = 7000,
        object_class: str = "dead_leaves",
        beamstop_diameter: int = 4,
        nphotons: float = 1e5,
        seed: int = 0,
        N: int = 32,
        batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        prefetch_factor: int | None = 2,
        drop_last_batch: bool = False,
        shuffle_train: bool = True,
        val_split: float = 0.05,
        val_split_seed: int = 42,
        cache_dir: Path | str | None = None,
        probe_kind: str = "diffuser",
        gridsize: int = 1,
    ) -> None:
        super().__init__()
        # Checked here, not when the loaders are built: a harness reports a rejected argument at
        # its run.yaml line before anything runs, instead of a DataLoader traceback mid-fit.
        require_int("batch_size", batch_size, 1)
        require_int("gridsize", gridsize, 1)
        require_int("num_workers", num_workers, 0)
        require_int("N", N, 0)
        if N < 8 or N % 2:
            raise ArgumentError("N", f"N must be an even number >= 8, got {N}")
        if prefetch_factor is not None:
            require_int("prefetch_factor", prefetch_factor, 1)
        if isinstance(val_split, bool) or not isinstance(val_split, int | float) or not 0.0 <= val_split < 1.0:
            raise ArgumentError("val_split", f"val_split must be a number in [0, 1), got {val_split!r}")
        if gridsize**2 > diff_per_object:
            raise ArgumentError("gridsize", f"gridsize={gridsize} groups {gridsize**2} patterns, more than diff_per_object={diff_per_object}")
        self.gridsize = gridsize
        self.spec = SimulationSpec(
            objects_per_probe=objects_per_probe,
            diff_per_object=diff_per_object,
            object_class=object_class,
            beamstop_diameter=beamstop_diameter,
            nphotons=nphotons,
            N=N,
            seed=seed,
            probe_kind=probe_kind,
        )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.prefetch_factor = prefetch_factor
        self.drop_last_batch = drop_last_batch
        self.shuffle_train = shuffle_train
        self.val_split = val_split
        self.val_split_seed = val_split_seed
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.data: SimulatedData | None = None
        self.train_indices: torch.Tensor | None = None
        self.val_indices: torch.Tensor | None = None
        self.train_loader_: DataLoader | None = None
        self.val_loader_: DataLoader | None = None

    def prepare_data(self) -> None:
        """Runs once per node: fills the cache (and keeps the result for this process)."""
        self.data = simulate(self.spec, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data = simulate(self.spec, self.cache_dir)
        self.train_indices, self.val_indices = split_indices(self.data.counts.shape[0], self.val_split, self.val_split_seed)

    def _dataset(self, indices: torch.Tensor, neighbours: torch.Tensor | None) -> Dataset:
        """Single patterns, or (gridsize > 1) groups anchored at ``indices`` with neighbours from ``neighbours`` (None: all)."""
        if self.gridsize == 1:
            return PatternDataset(self.data, indices)
        pool = neighbours if neighbours is not None else torch.arange(self.data.counts.shape[0])
        return GroupDataset(self.data, neighbour_groups(self.data.positions, self.data.object_index, indices, pool, self.gridsize**2))

    def _loader(self, indices: torch.Tensor, *, shuffle: bool, drop_last: bool, neighbours: torch.Tensor | None) -> DataLoader:
        if self.data is None or indices is None:
            raise RuntimeError("call prepare_data() and setup() before requesting loaders")
        workers = self.num_workers > 0
        return DataLoader(
            self._dataset(indices, neighbours),
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers if workers else False,
            prefetch_factor=self.prefetch_factor if workers else None,
        )

    def train_dataloader(self) -> DataLoader:
        self.train_loader_ = self._loader(self.train_indices, shuffle=self.shuffle_train, drop_last=self.drop_last_batch, neighbours=self.train_indices)
        return self.train_loader_

    def val_dataloader(self) -> DataLoader:
        self.val_loader_ = self._loader(self.val_indices, shuffle=False, drop_last=False, neighbours=None)
        return self.val_loader_
