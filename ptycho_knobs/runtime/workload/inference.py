"""Reconstruct one scanned object with a trained model and score it against the truth.

Evaluation set: all patterns of one object (``object_id``, default 0).  The
model is trained self-supervised on measured counts only, so reconstructing
the scanned object from its own measurements is PtychoPINN's use case; the
truth enters only here.

Knob semantics (each patch keeps a central window before stitching):

* ``middle_trim`` - pixels trimmed from each side of a predicted patch,
  clamped to ``N // 4`` so at least the central half survives for small N.
* ``M`` - reassembly size: the kept window is the central
  ``min(M, N - 2 * trim)`` square (PtychoPINN's ``reassemble_position(M)``).
* ``flip_x`` / ``flip_y`` / ``transpose`` - transform the scan coordinates
  (flips mirror them within the scan range, then transpose swaps row and
  column) to fix a convention mismatch; patch contents are not transformed.
* ``do_stitching`` - True: average overlapping windows on the object grid
  and evaluate the stitched image; False: evaluate each window separately
  (per-patch phase offset removed); ``pad_eval``/``reconstruction_window``
  then do not apply.
* ``pad_eval`` - True: evaluate the full object grid, with pixels no window
  covered padded by the mean reconstructed value; False: evaluate only the
  bounding box of covered pixels.
* ``reconstruction_window`` - pixels cropped from each border of the
  evaluated region (clamped to leave at least one pixel).
* ``inference_batch_size`` - patterns per forward call (results identical).
* ``stitch_weighting`` (default 'probe') / ``align_patch_phase`` (default
  True) - stitching only: weight each window's pixels by the probe
  intensity that lit them, and remove each window's (unobservable) constant
  phase offset relative to the stitched canvas before averaging.  Neither
  uses the truth; 'uniform' + False is the plain average of earlier versions.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ptycho_knobs.atomic import atomic_open, write_text

from .model import align_global_phase  # noqa: E402
from .simulator import SimulatedData  # noqa: E402

STITCH_WEIGHTINGS = ("probe", "uniform")
ALIGN_ITERATIONS = 30
"""Rounds of per-window phase-offset alignment to the stitched canvas."""


def kept_window(N: int, middle_trim: int, M: int) -> tuple[int, int]:
    """(start, size) of the central window of each patch that is kept for stitching."""
    trim = min(max(middle_trim, 0), N // 4)
    size = max(1, min(M, N - 2 * trim))
    return (N - size) // 2, size


def transform_positions(positions: torch.Tensor, extent: tuple[int, int], *, flip_x: bool, flip_y: bool, transpose: bool) -> torch.Tensor:
    """Apply the coordinate-convention knobs to (row, col) top-left positions within ``extent``."""
    rows, cols = positions[:, 0].clone(), positions[:, 1].clone()
    if flip_y:
        rows = extent[0] - rows
    if flip_x:
        cols = extent[1] - cols
    if transpose:
        rows, cols = cols, rows
    return torch.stack([rows, cols], dim=1)


@torch.no_grad()
def predict(model: torch.nn.Module, counts: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Complex patches for ``counts`` in batches of ``batch_size`` (eval mode, restored afterwards)."""
    if batch_size < 1:
        raise ValueError("inference_batch_size must be >= 1")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        outs = [model(counts[i : i + batch_size].to(device)).cpu() for i in range(0, counts.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(outs)


def stitch(
    windows: torch.Tensor,
    corners: torch.Tensor,
    shape: tuple[int, int],
    weight: torch.Tensor | None = None,
    align_iterations: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average overlapping ``[P, w, w]`` windows placed at ``corners`` on a canvas; returns (image, coverage).

    ``weight`` (``[w, w]``, e.g. the probe intensity) makes the average a
    weighted one, so each pixel is taken mostly from the patterns that
    illuminated it strongly; coverage is then the summed weight.
    ``align_iterations`` > 0 then removes each window's unobservable
    constant phase relative to the consensus: every window is rotated onto
    the current stitched canvas (weighted inner product over its footprint)
    and the canvas rebuilt, that many times.  No ground truth is involved.
    (A greedy scan-order pass was tried and rejected: alignment errors
    accumulate along the scan and the canvas drifts.)
    """
    w = windows.shape[-1]
    offs = torch.arange(w)
    rows = corners[:, 0, None, None] + offs[None, :, None]
    cols = corners[:, 1, None, None] + offs[None, None, :]
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    flat = (rows * shape[1] + cols).clamp(0, shape[0] * shape[1] - 1)  # outside pixels get zero weight
    wt = (torch.ones(w, w) if weight is None else weight.to(torch.float32)) * inside
    count = torch.zeros(shape[0] * shape[1]).index_add_(0, flat.flatten(), wt.flatten())

    def assemble(win: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(shape[0] * shape[1], dtype=win.dtype).index_add_(0, flat.flatten(), (win * wt).flatten())
        return torch.where(count > 0, total / count.clamp_min(1e-12), torch.zeros((), dtype=win.dtype))

    image = assemble(windows)
    for _ in range(max(align_iterations, 0)):
        rotation = torch.sgn((image[flat] * windows.conj() * wt).sum(dim=(-2, -1), keepdim=True))
        windows = windows * torch.where(rotation == 0, torch.ones_like(rotation), rotation)
        image = assemble(windows)
    return image.view(shape), count.view(shape)


def _errors(recon: torch.Tensor, truth: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """Amplitude/phase MAE after removing the global phase offset (per leading item if batched)."""
    aligned = align_global_phase(recon, truth, torch.ones(truth.shape[-2:]))
    amp = (aligned.abs() - truth.abs()).abs().mean().item()
    phase = torch.angle(aligned * truth.conj()).abs().mean().item()
    return amp, phase, aligned


def _crop_border(t: torch.Tensor, border: int) -> torch.Tensor:
    b = min(max(border, 0), (min(t.shape[-2:]) - 1) // 2)
    return t[..., b : t.shape[-2] - b, b : t.shape[-1] - b]


def _evaluation_region(image: torch.Tensor, coverage: torch.Tensor, truth: torch.Tensor, pad_eval: bool) -> tuple[torch.Tensor, torch.Tensor]:
    covered = coverage > 0
    if not covered.any():
        raise ValueError("no reconstructed pixel lands on the object grid")
    if pad_eval:
        return torch.where(covered, image, image[covered].mean()), truth
    rows, cols = covered.any(dim=1).nonzero(), covered.any(dim=0).nonzero()
    r0, r1, c0, c1 = rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1
    return image[r0:r1, c0:c1], truth[r0:r1, c0:c1]


def _plot(truth: torch.Tensor, recon: torch.Tensor, path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(8, 8))
    panels = [(truth.abs(), "truth amplitude"), (recon.abs(), "reconstructed amplitude"), (truth.angle(), "truth phase"), (recon.angle(), "reconstructed phase")]
    for ax, (img, title) in zip(axes.flat, panels, strict=True):
        im = ax.imshow(img.numpy(), cmap="gray" if "amplitude" in title else "twilight")
        ax.set_title(title)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    try:
        with atomic_open(path, binary=True) as fh:
            fig.savefig(fh, format="png", dpi=80)
    finally:
        plt.close(fig)


def reconstruct_and_report(
    model: torch.nn.Module,
    data: SimulatedData,
    out_dir: Path | str,
    *,
    inference_batch_size: int = 1000,
    middle_trim: int = 32,
    pad_eval: bool = True,
    reconstruction_window: int = 20,
    do_stitching: bool = False,
    flip_x: bool = False,
    flip_y: bool = False,
    transpose: bool = False,
    M: int = 20,
    object_id: int = 0,
    stitch_weighting: str = "probe",
    align_patch_phase: bool = True,
) -> dict[str, object]:
    """Reconstruct object ``object_id``, write ``summary.json`` and ``reconstruction.png``, return the summary.

    ``stitch_weighting`` ('probe' or 'uniform') and ``align_patch_phase``
    only affect stitching (see :func:`stitch`): 'probe' weights each window's
    pixels by the probe intensity that lit them, and ``align_patch_phase``
    removes each window's constant phase offset relative to the canvas
    before averaging, as ptychographic stitching does.
    """
    if stitch_weighting not in STITCH_WEIGHTINGS:
        raise ValueError(f"stitch_weighting must be one of {STITCH_WEIGHTINGS}, got {stitch_weighting!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    select = (data.object_index == object_id).nonzero().squeeze(1)
    N = data.counts.shape[-1]
    start, size = kept_window(N, middle_trim, M)
    pred = predict(model, data.counts[select], inference_batch_size)
    windows = pred[:, start : start + size, start : start + size]
    truth_windows = data.truth[select][:, start : start + size, start : start + size]
    if do_stitching:
        truth = data.objects[object_id]
        extent = (truth.shape[0] - N, truth.shape[1] - N)
        corners = transform_positions(data.positions[select], extent, flip_x=flip_x, flip_y=flip_y, transpose=transpose) + start
        probe = data.probes[data.probe_index[select[0]]]
        weight = probe.abs().square()[start : start + size, start : start + size] if stitch_weighting == "probe" else None
        iterations = ALIGN_ITERATIONS if align_patch_phase else 0
        image, coverage = stitch(windows, corners, tuple(truth.shape), weight, iterations)
        recon, truth = _evaluation_region(image, coverage, truth, pad_eval)
        recon, truth = _crop_border(recon, reconstruction_window), _crop_border(truth, reconstruction_window)
    else:
        recon, truth = windows, truth_windows
    amp_mae, phase_mae, aligned = _errors(recon, truth)
    constant = torch.full_like(truth, truth.abs().mean().item())
    base_amp, base_phase, _ = _errors(constant, truth)
    summary: dict[str, object] = {
        "amplitude_mae": amp_mae,
        "phase_mae": phase_mae,
        "baseline_amplitude_mae": base_amp,
        "baseline_phase_mae": base_phase,
        "phase_mae_ratio": phase_mae / base_phase if base_phase > 0 else float("nan"),
        "object_id": object_id,
        "n_patterns": int(select.numel()),
        "n_forward_calls": -(-int(select.numel()) // inference_batch_size),
        "stitched": do_stitching,
        "window_size": size,
        "evaluated_shape": list(truth.shape),
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    shown = (truth, aligned) if do_stitching else (truth[0], aligned[0])
    _plot(shown[0], shown[1], out / "reconstruction.png")
    return summary
