"""A BoringModel-sized LightningModule and DataModule for `examples/custom_model.yaml`.

They show the contract with the harness: a constructor receives, by name, every knob it
accepts (`val_split`, `num_workers`, ... for the data; nothing required for the model), and
a model without `configure_optimizers` gets one built from the optimizer knobs.
"""

from __future__ import annotations

import lightning
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split


class BoringRegressor(lightning.LightningModule):
    """y = w.x + noise, fitted by a small MLP; logs val_loss for checkpointing and early stopping."""

    def __init__(self, hidden: int = 16, fail_with_nan: bool = False, nan_rank: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        if self.hparams.fail_with_nan and self.current_epoch >= 1 and self.hparams.nan_rank in (None, self.global_rank):
            loss = loss * float("nan")
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y), on_epoch=True)


class BoringDataModule(lightning.LightningDataModule):
    """Random regression data; the loader knobs arrive as constructor arguments."""

    def __init__(self, size: int = 256, batch_size: int = 32, *, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = False, prefetch_factor: int | None = None, shuffle_train: bool = True,
                 drop_last_batch: bool = False, val_split: float = 0.1, val_split_seed: int = 0) -> None:
        super().__init__()
        self.size, self.batch_size = size, batch_size
        self.loader_kwargs = dict(num_workers=num_workers, pin_memory=pin_memory,
                                  persistent_workers=persistent_workers, prefetch_factor=prefetch_factor)
        self.shuffle_train, self.drop_last_batch = shuffle_train, drop_last_batch
        self.val_split, self.val_split_seed = val_split, val_split_seed

    def setup(self, stage: str | None = None) -> None:
        g = torch.Generator().manual_seed(self.val_split_seed)
        x = torch.randn(self.size, 8, generator=g)
        y = x @ torch.linspace(-1, 1, 8) + 0.1 * torch.randn(self.size, generator=g)
        n_val = max(1, int(self.size * self.val_split))
        self.train_set, self.val_set = random_split(TensorDataset(x, y), [self.size - n_val, n_val], generator=g)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=self.shuffle_train,
                          drop_last=self.drop_last_batch, **self.loader_kwargs)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, **self.loader_kwargs)
