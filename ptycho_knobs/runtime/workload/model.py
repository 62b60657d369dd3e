"""PtychoPINN-style model: a CNN maps diffraction to an object patch, trained through the physics.

The network never sees the true object during training; its prediction is
multiplied by the known probe, propagated to the detector with the same
convention as the simulator (:func:`far_field_intensity`) and scored against
the measured counts with a Poisson likelihood (beamstop pixels excluded).
The truth is used only for the logged validation metrics.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import lightning
import torch
from torch import nn

from .attention import CBAM, ECA, SpatialAttention
from .simulator import far_field_intensity

SCHEDULER_TYPES = ("default", "exponential", "multistage", "adaptive")
PHYSICS_WEIGHT_SCHEDULES = ("linear", "cosine", "exponential")
EXPONENTIAL_LR_GAMMA = 0.95
"""Per-epoch decay for scheduler_type='exponential' (halves the rate in ~14 epochs)."""
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.5, 2
EXPONENTIAL_RAMP_RATE = 5.0
"""Curvature of the 'exponential' physics ramp: slow start, steep finish."""
PROBE_SUPPORT_FRACTION = 0.1
"""Pixels where |probe|^2 exceeds this fraction of its peak count as illuminated for metrics."""


def physics_weight(epoch: int, *, stage_1_epochs: int, stage_2_epochs: int, stage_3_epochs: int, schedule: str) -> float:
    """Weight of the Poisson term in the loss at ``epoch`` (MAE gets ``1 - weight``).

    Stage 1 (``epoch < stage_1_epochs``) is amplitude-MAE only (0.0); stage 2
    ramps 0 -> 1 with ``schedule`` evaluated at the stage-2 midpoints
    ``t = (epoch - s1 + 1) / (s2 + 1)`` so every stage-2 epoch is a true blend;
    stage 3 and beyond are physics only (1.0).  With no stages at all the
    loss is Poisson only.
    """
    if schedule not in PHYSICS_WEIGHT_SCHEDULES:
        raise ValueError(f"physics_weight_schedule must be one of {PHYSICS_WEIGHT_SCHEDULES}, got {schedule!r}")
    del stage_3_epochs  # stage 3 and anything after it are identical for the loss
    if epoch < stage_1_epochs:
        return 0.0
    if epoch >= stage_1_epochs + stage_2_epochs:
        return 1.0
    t = (epoch - stage_1_epochs + 1) / (stage_2_epochs + 1)
    if schedule == "linear":
        return t
    if schedule == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * t))
    return (math.exp(EXPONENTIAL_RAMP_RATE * t) - 1.0) / (math.exp(EXPONENTIAL_RAMP_RATE) - 1.0)


def multistage_lr_factor(epoch: int, *, stage_1_epochs: int, stage_2_epochs: int, stage_3_epochs: int, stage_3_lr_factor: float) -> float:
    """LR multiplier: 1.0 through stages 1-2, ``stage_3_lr_factor`` from stage 3 on (1.0 if no stages)."""
    if stage_1_epochs + stage_2_epochs + stage_3_epochs == 0:
        return 1.0
    return 1.0 if epoch < stage_1_epochs + stage_2_epochs else stage_3_lr_factor


def build_optimizers(
    parameters: Iterable[torch.nn.Parameter],
    *,
    learning_rate: float,
    scheduler_type: str,
    stage_1_epochs: int,
    stage_2_epochs: int,
    stage_3_epochs: int,
    stage_3_lr_factor: float,
    monitor: str,
) -> dict[str, object]:
    """Adam plus the scheduler named by ``scheduler_type``, in Lightning's configure_optimizers format."""
    if scheduler_type not in SCHEDULER_TYPES:
        raise ValueError(f"scheduler_type must be one of {SCHEDULER_TYPES}, got {scheduler_type!r}")
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    if scheduler_type == "default":
        return {"optimizer": optimizer}
    if scheduler_type == "exponential":
        scheduler: object = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=EXPONENTIAL_LR_GAMMA)
    elif scheduler_type == "multistage":
        factor = functools.partial(
            multistage_lr_factor,
            stage_1_epochs=stage_1_epochs,
            stage_2_epochs=stage_2_epochs,
            stage_3_epochs=stage_3_epochs,
            stage_3_lr_factor=stage_3_lr_factor,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE)  # ptycho-knobs: ignore[PK005] every metric the model logs is a loss or an error: lower is better
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}}


def overlap_merge(patches: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Enforce overlap consistency in a group of neighbouring patches (PtychoPINN's ``gridsize`` > 1).

    ``patches`` ``[B, K, N, N]`` complex are placed at their integer
    ``offsets`` ``[B, K, 2]`` (row, col, relative to the group's top-left
    corner) on one canvas per group, averaged with ``weights`` ``[B, K, N, N]``
    (the probe intensity that lit each pixel, so each canvas pixel comes mostly
    from the patterns that measured it), and each patch is cut back out of
    the shared canvas.  The physics loss then scores the cut-out patches, so
    the network is only rewarded for predictions on which neighbours agree;
    a single pattern's ambiguities (twin image, constant phase) do not agree.
    """
    B, K, N, _ = patches.shape
    S = N + int(offsets.max())
    span = torch.arange(N, device=patches.device)
    rows = offsets[..., 0, None, None] + span[:, None]
    cols = offsets[..., 1, None, None] + span[None, :]
    base = torch.arange(B, device=patches.device)[:, None, None, None] * (S * S)
    index = (base + rows * S + cols).reshape(-1)
    numerator = patches.new_zeros(B * S * S).index_add(0, index, (patches * weights).reshape(-1))
    denominator = weights.new_zeros(B * S * S).index_add(0, index, weights.reshape(-1))
    merged = numerator / denominator.clamp_min(1e-12)
    return merged[index].view(B, K, N, N)


MERGE_WEIGHT_FLOOR = 1e-3
"""Added to the peak-normalised probe intensity in :func:`overlap_merge` so every pixel has a defined average."""


def poisson_deviance(intensity: torch.Tensor, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean Poisson deviance per measured pixel: the NLL shifted so a perfect fit scores ~0."""
    log_ratio = torch.log(counts.clamp_min(1.0)) - torch.log(intensity + 1e-6)
    dev = intensity - counts + counts * log_ratio
    return dev[..., mask].mean()


def amplitude_mae(intensity: torch.Tensor, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |sqrt(I_pred) - sqrt(counts)| per measured pixel (the stage-1 'RMS normalisation' term)."""
    diff = (torch.sqrt(intensity + 1e-6) - torch.sqrt(counts)).abs()
    return diff[..., mask].mean()


def align_global_phase(pred: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Rotate each prediction by the constant phase that best matches the truth (weighted)."""
    offset = torch.angle((truth * pred.conj() * weight).sum(dim=(-2, -1), keepdim=True))
    return pred * torch.polar(torch.ones_like(offset), offset)


def patch_errors(pred: torch.Tensor, truth: torch.Tensor, region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Amplitude and phase MAE over ``region`` after per-patch global-phase removal."""
    aligned = align_global_phase(pred, truth, region.to(pred.real.dtype))
    amp = (aligned.abs() - truth.abs()).abs()[..., region].mean()
    phase = torch.angle(aligned * truth.conj()).abs()[..., region].mean()
    return amp, phase


NORMS = ("batch", "group", "none")
INPUT_TRANSFORMS = ("sqrt", "log1p")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(4, channels), channels)
    return nn.Identity()


class _ConvBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, norm: str = "batch") -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            _norm(norm, c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            _norm(norm, c_out),
            nn.ReLU(inplace=True),
        )


class PtychoNet(nn.Module):
    """Encoder-decoder CNN: normalised diffraction amplitude -> (amplitude, phase) patch.

    By default there are no skip connections: detector pixels and object
    pixels are not spatially related, so the mapping passes through the
    (N/2^depth)^2 bottleneck.  ``skip_connections=True`` adds U-Net skips
    (concatenation) from each encoder stage to the decoder stage of the same
    resolution; ``norm`` picks BatchNorm, GroupNorm or no normalisation.
    Amplitude and phase come from separate 1x1 heads.
    """

    def __init__(
        self,
        *,
        channels: tuple[int, ...] = (16, 32, 64),
        eca_encoder: bool = False,
        cbam_encoder: bool = False,
        cbam_bottleneck: bool = False,
        cbam_decoder: bool = False,
        eca_decoder: bool = False,
        spatial_decoder: bool = False,
        decoder_spatial_kernel: int = 7,
        skip_connections: bool = False,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.skip_connections = skip_connections
        self.encoder = nn.ModuleList()
        self.pool = nn.MaxPool2d(2)
        c_prev = 1
        for c in channels:
            stage = nn.Sequential(_ConvBlock(c_prev, c, norm))
            if eca_encoder:
                stage.add_module("eca", ECA(c))
            if cbam_encoder:
                stage.add_module("cbam", CBAM(c))
            self.encoder.append(stage)
            c_prev = c
        self.bottleneck = nn.Sequential(_ConvBlock(c_prev, c_prev, norm))
        if cbam_bottleneck:
            self.bottleneck.add_module("cbam", CBAM(c_prev))
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.decoder = nn.ModuleList()
        for c in reversed(channels):
            c_in = c_prev + (c if skip_connections else 0)
            stage = nn.Sequential(_ConvBlock(c_in, c, norm))
            if cbam_decoder:
                stage.add_module("cbam", CBAM(c, spatial_kernel=decoder_spatial_kernel))
            if eca_decoder:
                stage.add_module("eca", ECA(c))
            if spatial_decoder:
                stage.add_module("spatial", SpatialAttention(decoder_spatial_kernel))
            self.decoder.append(stage)
            c_prev = c
        self.amplitude_head = nn.Conv2d(c_prev, 1, kernel_size=1)
        self.phase_head = nn.Conv2d(c_prev, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.unsqueeze(1)
        skips = []
        for stage in self.encoder:
            h = stage(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottleneck(h)
        for stage, skip in zip(self.decoder, reversed(skips), strict=True):
            h = self.upsample(h)
            if self.skip_connections:
                h = torch.cat([h, skip], dim=1)
            h = stage(h)
        amplitude = self.amplitude_head(h).float()[:, 0]
        phase = self.phase_head(h).float()[:, 0]
        return torch.sigmoid(amplitude), math.pi * torch.tanh(phase)


class PtychoPINNModule(lightning.LightningModule):
    """Physics-informed training of :class:`PtychoNet` on simulated diffraction counts.

    ``probe`` is ``[N, N]`` or ``[n_probes, N, N]`` (batches then carry
    ``probe_index``); ``mask`` is ``[N, N]`` bool, True where measured.
    ``fine_tune_lr_factor`` is stored in the hyper-parameters only.

    Training batches may be single patterns (``counts`` ``[B, N, N]``) or,
    from a data module with ``gridsize`` > 1, groups of K neighbouring
    patterns (``counts`` ``[B, K, N, N]`` plus their relative scan
    ``offsets`` ``[B, K, 2]``): PtychoPINN's overlap constraint.  Each pattern
    is still predicted on its own, so inference needs no groups; the K
    patches are reconciled by :func:`overlap_merge` before the physics loss.
    """

    def __init__(
        self,
        probe: torch.Tensor,
        mask: torch.Tensor,
        nphotons: float,
        *,
        eca_encoder: bool = False,
        cbam_encoder: bool = False,
        cbam_bottleneck: bool = False,
        cbam_decoder: bool = False,
        eca_decoder: bool = False,
        spatial_decoder: bool = False,
        decoder_spatial_kernel: int = 7,
        learning_rate: float = 1e-3,
        scheduler_type: str = "default",
        stage_1_epochs: int = 0,
        stage_2_epochs: int = 0,
        stage_3_epochs: int = 0,
        physics_weight_schedule: str = "linear",
        stage_3_lr_factor: float = 0.1,
        fine_tune_lr_factor: float = 0.1,
        checkpoint_monitor_metric: str = "val_loss",
        channels: tuple[int, ...] = (16, 32, 64),
        skip_connections: bool = False,
        norm: str = "batch",
        input_transform: str = "sqrt",
    ) -> None:
        super().__init__()
        if isinstance(channels, str | bytes) or not channels or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive integers, got {channels!r}")
        if input_transform not in INPUT_TRANSFORMS:
            raise ValueError(f"input_transform must be one of {INPUT_TRANSFORMS}, got {input_transform!r}")
        if scheduler_type not in SCHEDULER_TYPES:
            raise ValueError(f"scheduler_type must be one of {SCHEDULER_TYPES}, got {scheduler_type!r}")
        if physics_weight_schedule not in PHYSICS_WEIGHT_SCHEDULES:
            raise ValueError(f"physics_weight_schedule must be one of {PHYSICS_WEIGHT_SCHEDULES}")
        if probe.shape[-1] % 2 ** len(channels):
            raise ValueError(f"N={probe.shape[-1]} must be divisible by {2 ** len(channels)}")
        self.save_hyperparameters(ignore=["probe", "mask"])
        probes = probe.reshape(-1, *probe.shape[-2:]).to(torch.complex64)
        self.register_buffer("probe", probes)
        self.register_buffer("mask", mask.to(torch.bool))
        intensity = probes.abs().square()
        peak = intensity.amax(dim=(-2, -1), keepdim=True)
        self.register_buffer("support", intensity > PROBE_SUPPORT_FRACTION * peak)
        # derived from the probe, so kept out of the state dict (checkpoints stay as they were)
        self.register_buffer("merge_weight", intensity / peak + MERGE_WEIGHT_FLOOR, persistent=False)
        self.net = PtychoNet(
            channels=tuple(channels),
            eca_encoder=eca_encoder,
            cbam_encoder=cbam_encoder,
            cbam_bottleneck=cbam_bottleneck,
            cbam_decoder=cbam_decoder,
            eca_decoder=eca_decoder,
            spatial_decoder=spatial_decoder,
            decoder_spatial_kernel=decoder_spatial_kernel,
            skip_connections=skip_connections,
            norm=norm,
        )

    def normalise(self, counts: torch.Tensor) -> torch.Tensor:
        """Network input from counts, relative to the mean per-pixel count of a transparent object.

        ``input_transform='sqrt'``: sqrt(counts / mean) (unit RMS, global scale
        kept); ``'log1p'``: log1p(counts / mean), which compresses the bright
        centre so the weak high-angle speckle carries comparable weight.
        """
        n_pix = counts.shape[-1] * counts.shape[-2]
        scaled = counts.float() * (n_pix / self.hparams.nphotons)
        if self.hparams.input_transform == "log1p":
            return torch.log1p(scaled)
        return torch.sqrt(scaled)

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        """Counts ``[..., N, N]`` -> complex64 object patches ``[..., N, N]``, one per pattern."""
        amplitude, phase = self.net(self.normalise(counts.flatten(0, -3)))
        return torch.polar(amplitude.float(), phase.float()).view(counts.shape)

    def _loss(self, pred: torch.Tensor, probe: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        intensity = far_field_intensity(probe, pred, self.hparams.nphotons)
        counts = counts.float()
        w = physics_weight(
            self.current_epoch,
            stage_1_epochs=self.hparams.stage_1_epochs,
            stage_2_epochs=self.hparams.stage_2_epochs,
            stage_3_epochs=self.hparams.stage_3_epochs,
            schedule=self.hparams.physics_weight_schedule,
        )
        loss = intensity.new_zeros(())
        if w > 0.0:
            loss = loss + w * poisson_deviance(intensity, counts, self.mask)
        if w < 1.0:
            loss = loss + (1.0 - w) * amplitude_mae(intensity, counts, self.mask)
        return loss

    def _fit_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, raw prediction, probe support) for a batch of single patterns or of K-pattern groups.

        Groups are reconciled by :func:`overlap_merge` before the loss; the
        raw prediction (what inference stitches) is returned for the metrics.
        """
        pred = self(batch["counts"])
        index = batch.get("probe_index")

        def lit(buffer: torch.Tensor) -> torch.Tensor:  # the per-probe buffer for each pattern of the batch
            return (buffer[index] if index is not None else buffer[0]).expand(pred.shape)

        probe = lit(self.probe)
        fitted = overlap_merge(pred, batch["offsets"], lit(self.merge_weight)) if pred.dim() == 4 else pred
        return self._loss(fitted, probe, batch["counts"]), pred, lit(self.support)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._fit_step(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, pred, region = self._fit_step(batch)
        amp, phase = patch_errors(pred, batch["truth"], region)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_amplitude_mae", amp, on_epoch=True, sync_dist=True)
        self.log("val_phase_mae", phase, on_epoch=True, prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> dict[str, object]:
        hp = self.hparams
        return build_optimizers(
            self.parameters(),
            learning_rate=hp.learning_rate,
            scheduler_type=hp.scheduler_type,
            stage_1_epochs=hp.stage_1_epochs,
            stage_2_epochs=hp.stage_2_epochs,
            stage_3_epochs=hp.stage_3_epochs,
            stage_3_lr_factor=hp.stage_3_lr_factor,
            monitor=hp.checkpoint_monitor_metric,
        )
