"""Tests for the built-in simulated ptychography workload (real torch, tiny sizes)."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import lightning
import pytest
import torch
from torch.utils.data import RandomSampler, SequentialSampler

from ptycho_knobs.runtime.workload import (
    PtychoDataModule,
    PtychoPINNModule,
    SimulationSpec,
    build_optimizers,
    build_workload,
    multistage_lr_factor,
    naive_simulate_loop,
    physics_weight,
    reconstruct_and_report,
    simulate,
)
from ptycho_knobs.runtime.workload import simulator as sim_module
from ptycho_knobs.runtime.workload.attention import CBAM, ECA, SpatialAttention
from ptycho_knobs.runtime.workload.datamodule import neighbour_groups
from ptycho_knobs.runtime.workload.inference import kept_window, stitch
from ptycho_knobs.runtime.workload.model import MERGE_WEIGHT_FLOOR, overlap_merge, poisson_deviance
from ptycho_knobs.runtime.workload.simulator import far_field_intensity

TINY = dict(objects_per_probe=2, diff_per_object=16, N=16)


def tiny_spec(**overrides: object) -> SimulationSpec:
    return SimulationSpec(**{**TINY, **overrides})


# --------------------------------------------------------------------------- simulator


def test_simulation_is_deterministic_and_seeded() -> None:
    a, b = simulate(tiny_spec(seed=3)), simulate(tiny_spec(seed=3))
    c = simulate(tiny_spec(seed=4))
    assert torch.equal(a.counts, b.counts) and torch.equal(a.objects, b.objects)
    assert not torch.equal(a.counts, c.counts) and not torch.equal(a.objects, c.objects)


def _paint_dead_leaves_one_by_one(size: int, gen: torch.Generator, N: int) -> torch.Tensor:
    """The obvious painter's algorithm, the reference for the vectorised rasteriser."""
    r_min, r_max = 1.5, N / 2
    mean_area = math.pi * (r_max**2 - r_min**2) / (2 * math.log(r_max / r_min))
    n_discs = max(8, round(3 * (size + 2 * r_max) ** 2 / mean_area))
    radii = r_min * (r_max / r_min) ** torch.rand(n_discs, generator=gen)
    centres = sim_module._uniform(gen, (n_discs, 2), -r_max, size + r_max)
    values = torch.polar(sim_module._uniform(gen, (n_discs,), *sim_module.AMPLITUDE_RANGE), sim_module._uniform(gen, (n_discs,), *sim_module.PHASE_RANGE))
    yy = torch.arange(size, dtype=torch.float32)[:, None]
    xx = torch.arange(size, dtype=torch.float32)[None, :]
    obj = torch.ones(size, size, dtype=torch.complex64)
    for (cy, cx), r, v in zip(centres, radii, values, strict=True):
        obj[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = v
    return obj


@pytest.mark.parametrize(("size", "N"), [(40, 16), (120, 32), (30, 64)])
def test_dead_leaves_rasteriser_matches_painting_disc_by_disc(size: int, N: int) -> None:
    fast = sim_module._dead_leaves(size, sim_module._generator(size, "object"), N)
    assert torch.equal(fast, _paint_dead_leaves_one_by_one(size, sim_module._generator(size, "object"), N))
    assert (fast != 1).float().mean() > 0.8  # ~3x coverage: most pixels painted


def test_shapes_and_dtypes() -> None:
    d = simulate(tiny_spec())
    P, N = 2 * 16, 16
    assert d.counts.shape == (P, N, N) and d.counts.dtype == torch.float32
    assert d.truth.shape == (P, N, N) and d.truth.dtype == torch.complex64
    assert d.positions.shape == (P, 2) and d.object_index.shape == (P,)
    assert d.objects.dtype == torch.complex64 and d.objects.shape[0] == 2
    assert d.probe.shape == (N, N) and d.probe.dtype == torch.complex64
    assert d.mask.shape == (N, N) and d.mask.dtype == torch.bool
    # truth is exactly the object patch at the recorded position
    i = 7
    r, c = d.positions[i].tolist()
    assert torch.equal(d.truth[i], d.objects[d.object_index[i], r : r + N, c : c + N])


def test_cache_is_written_atomically_and_reused(tmp_path, monkeypatch) -> None:
    spec = tiny_spec(seed=11)
    first = simulate(spec, tmp_path)
    path = tmp_path / f"{spec.cache_key()}.pt"
    assert path.exists() and not list(tmp_path.glob("*.tmp"))
    mtime = path.stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(sim_module, "_simulate", lambda *a, **k: calls.append(1))
    second = simulate(spec, tmp_path)
    assert calls == [] and path.stat().st_mtime_ns == mtime
    assert torch.equal(first.counts, second.counts) and second.spec == spec


def test_cache_key_covers_every_field() -> None:
    base = tiny_spec()
    keys = {base.cache_key()}
    changes = [("seed", 1), ("nphotons", 2e5), ("beamstop_diameter", 2), ("object_class", "lines"), ("N", 32), ("probe_kind", "focused")]
    for field, value in changes:
        keys.add(tiny_spec(**{field: value}).cache_key())
    assert len(keys) == len(changes) + 1


def _centro_asymmetry(probe: torch.Tensor) -> float:
    """Smallest total-variation distance between |P|^2 and its point reflection over all (cyclic) centres."""
    intensity = probe.abs().square()
    intensity = intensity / intensity.sum()
    flipped = torch.flip(intensity, (0, 1))
    n = intensity.shape[-1]
    return min(0.5 * (intensity - torch.roll(flipped, (a, b), (0, 1))).abs().sum().item() for a in range(n) for b in range(n))


def test_diffuser_probe_is_seeded_and_not_centro_symmetric() -> None:
    spec = SimulationSpec(objects_per_probe=1, diff_per_object=16, N=32, probe_kind="diffuser", seed=3)
    a, b = sim_module.make_probes(spec), sim_module.make_probes(spec)
    other = sim_module.make_probes(dataclasses.replace(spec, seed=4))
    focused = sim_module.make_probes(dataclasses.replace(spec, probe_kind="focused"))
    assert torch.equal(a, b) and not torch.allclose(a, other)
    assert a.abs().square().sum().item() == pytest.approx(1.0, rel=1e-5)
    assert _centro_asymmetry(focused[0]) < 1e-4
    assert _centro_asymmetry(a[0]) > 0.2 and _centro_asymmetry(other[0]) > 0.2
    # band-limited by the same pupil disc as the focused probe (no energy beyond radius N/8)
    spectrum = torch.fft.fftshift(torch.fft.fft2(a[0])).abs()
    k = torch.arange(32) - 16
    outside = k[:, None] ** 2 + k[None, :] ** 2 > 4**2
    assert spectrum[outside].max() < 1e-4 * spectrum.max()
    # compact enough to leave most energy away from the window border, wide enough to overlap at step N // 4
    intensity = a[0].abs().square()
    assert intensity[4:-4, 4:-4].sum() > 0.85
    assert (intensity.sqrt() * torch.roll(intensity, spec.step, 1).sqrt()).sum() > 0.3
    assert spec.cache_key() != dataclasses.replace(spec, probe_kind="focused").cache_key()
    data = simulate(tiny_spec(probe_kind="diffuser"))
    assert not torch.allclose(data.counts, simulate(tiny_spec(probe_kind="focused")).counts)
    dm = tiny_datamodule(probe_kind="diffuser")
    assert dm.spec.probe_kind == "diffuser" and torch.equal(dm.data.probes, data.probes)
    # the model's forward model uses exactly the probe that made the data
    model, dm = build_workload(datagen=dict(objects_per_probe=1, diff_per_object=4, probe_kind="diffuser"), N=16, architecture=dict(channels=(4, 8)))
    assert torch.equal(model.probe[0], dm.data.probe)
    with pytest.raises(ValueError):
        tiny_spec(probe_kind="gaussian")


def test_vectorised_equals_naive_loop() -> None:
    spec = tiny_spec(seed=5, n_probes=2)
    vec, naive = simulate(spec), naive_simulate_loop(spec)
    assert torch.equal(vec.truth, naive.truth)
    assert torch.equal(vec.counts, naive.counts)


def test_nphotons_scales_total_counts() -> None:
    low = simulate(tiny_spec(nphotons=1e4, beamstop_diameter=0)).counts.sum()
    high = simulate(tiny_spec(nphotons=1e6, beamstop_diameter=0)).counts.sum()
    assert high / low == pytest.approx(100.0, rel=0.02)
    # a fully transmitting object would give nphotons; ours absorbs, so fewer but same order
    per_pattern = simulate(tiny_spec(nphotons=1e5, beamstop_diameter=0)).counts.sum((1, 2)).mean()
    assert 1e4 < per_pattern <= 1e5


@pytest.mark.parametrize("diameter", [0, 2, 4, 6])
def test_beamstop_blocks_central_pixels(diameter: int) -> None:
    d = simulate(tiny_spec(beamstop_diameter=diameter))
    blocked = ~d.mask
    assert bool(blocked[8, 8]) == (diameter > 0)
    assert blocked.sum() == sum(1 for y in range(16) for x in range(16) if diameter and (y - 8) ** 2 + (x - 8) ** 2 <= (diameter / 2) ** 2)
    assert torch.all(d.counts[:, blocked] == 0)


def test_object_class_changes_objects() -> None:
    objects = {c: simulate(tiny_spec(object_class=c)).objects for c in sim_module.OBJECT_CLASSES}
    assert len(objects) >= 2
    for a in objects:
        amp = objects[a].abs()
        assert amp.min() >= 0.3 - 1e-5 and amp.max() <= 1.0 + 1e-5
        for b in objects:
            if a != b:
                assert not torch.allclose(objects[a], objects[b])
    with pytest.raises(ValueError):
        tiny_spec(object_class="nope")


def test_objects_per_probe_and_diff_per_object_set_counts() -> None:
    d = simulate(tiny_spec(objects_per_probe=3, diff_per_object=10))
    assert d.objects.shape[0] == 3 and d.counts.shape[0] == 30
    assert torch.equal(torch.bincount(d.object_index), torch.full((3,), 10))
    bigger = tiny_spec(diff_per_object=40)
    assert bigger.resolved_object_size > tiny_spec(diff_per_object=10).resolved_object_size
    limit = bigger.resolved_object_size - bigger.N
    pos = simulate(bigger).positions
    assert pos.min() >= 0 and pos.max() <= limit


# --------------------------------------------------------------------------- model


def tiny_model(**kwargs: object) -> PtychoPINNModule:
    d = simulate(tiny_spec())
    return PtychoPINNModule(d.probes, d.mask, 1e5, channels=(4, 8), **kwargs)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "flag, module_type",
    [
        ("eca_encoder", ECA),
        ("cbam_encoder", CBAM),
        ("cbam_bottleneck", CBAM),
        ("cbam_decoder", CBAM),
        ("eca_decoder", ECA),
        ("spatial_decoder", SpatialAttention),
    ],
)
def test_architecture_flags_insert_modules(flag: str, module_type: type) -> None:
    torch.manual_seed(0)
    base = tiny_model()
    torch.manual_seed(0)
    flagged = tiny_model(**{flag: True})
    assert not any(isinstance(m, module_type) for m in base.modules())
    section = {"eca_encoder": "net.encoder", "cbam_encoder": "net.encoder", "cbam_bottleneck": "net.bottleneck"}.get(flag, "net.decoder")
    assert any(isinstance(m, module_type) and name.startswith(section) for name, m in flagged.named_modules())
    assert n_params(flagged) > n_params(base)
    x = torch.poisson(torch.rand(2, 16, 16) * 50)
    flagged.eval(), base.eval()
    assert not torch.allclose(flagged(x), base(x))


def test_skip_connections_norm_and_input_transform() -> None:
    torch.manual_seed(0)
    base = tiny_model()
    torch.manual_seed(0)
    skip = tiny_model(skip_connections=True)
    assert n_params(skip) > n_params(base)
    x = torch.poisson(torch.rand(2, 16, 16) * 50)
    base.eval(), skip.eval()
    assert skip(x).shape == base(x).shape and not torch.allclose(skip(x), base(x))
    group = tiny_model(norm="group")
    assert any(isinstance(m, torch.nn.GroupNorm) for m in group.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in group.modules())
    assert not any(isinstance(m, (torch.nn.GroupNorm, torch.nn.BatchNorm2d)) for m in tiny_model(norm="none").modules())
    log_model = tiny_model(input_transform="log1p")
    assert torch.allclose(log_model.normalise(x), torch.log1p(x * (256 / 1e5)))
    assert torch.allclose(base.normalise(x), torch.sqrt(x * (256 / 1e5)))
    with pytest.raises(ValueError):
        tiny_model(norm="layer")
    with pytest.raises(ValueError):
        tiny_model(input_transform="raw")


def test_decoder_spatial_kernel_sets_conv_size() -> None:
    for k in (3, 7):
        m = tiny_model(spatial_decoder=True, cbam_decoder=True, decoder_spatial_kernel=k)
        sizes = {mod.conv.kernel_size for name, mod in m.named_modules() if isinstance(mod, SpatialAttention) and name.startswith("net.decoder")}
        assert sizes == {(k, k)}
    assert n_params(tiny_model(spatial_decoder=True, decoder_spatial_kernel=3)) < n_params(tiny_model(spatial_decoder=True, decoder_spatial_kernel=7))


def test_forward_is_complex_patch_and_hparams_saved() -> None:
    m = tiny_model(learning_rate=3e-3, fine_tune_lr_factor=0.25)
    out = m(torch.poisson(torch.rand(3, 16, 16) * 50))
    assert out.shape == (3, 16, 16) and out.dtype == torch.complex64
    assert out.abs().max() <= 1.0 and out.angle().abs().max() <= math.pi
    assert m.hparams.learning_rate == 3e-3 and m.hparams.fine_tune_lr_factor == 0.25
    assert "probe" not in m.hparams and {"probe", "mask"} <= {n for n, _ in m.named_buffers()}


def test_bf16_autocast_forward_and_loss() -> None:
    m = tiny_model()
    d = simulate(tiny_spec())
    batch = {"counts": d.counts[:4], "probe_index": d.probe_index[:4]}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _, _ = m._fit_step(batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_physics_weight_schedules() -> None:
    stages = dict(stage_1_epochs=2, stage_2_epochs=4, stage_3_epochs=3)
    for schedule in ("linear", "cosine", "exponential"):
        w = [physics_weight(e, schedule=schedule, **stages) for e in range(10)]
        assert w[:2] == [0.0, 0.0] and w[6:] == [1.0] * 4
        ramp = w[2:6]
        assert all(0.0 < x < 1.0 for x in ramp) and ramp == sorted(ramp)
    lin = [physics_weight(e, schedule="linear", **stages) for e in range(2, 6)]
    cos = [physics_weight(e, schedule="cosine", **stages) for e in range(2, 6)]
    exp = [physics_weight(e, schedule="exponential", **stages) for e in range(2, 6)]
    assert lin == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert cos[0] < lin[0] and cos[-1] > lin[-1]
    assert all(e < lin_w for e, lin_w in zip(exp, lin, strict=True))
    assert physics_weight(0, stage_1_epochs=0, stage_2_epochs=0, stage_3_epochs=0, schedule="linear") == 1.0
    with pytest.raises(ValueError):
        physics_weight(0, schedule="step", **stages)


def test_stage_losses_switch_terms(monkeypatch) -> None:
    m = tiny_model(stage_1_epochs=1, stage_2_epochs=1, stage_3_epochs=1)
    d = simulate(tiny_spec())
    batch = {"counts": d.counts[:4], "probe_index": d.probe_index[:4]}
    pred = m(batch["counts"])
    losses = []
    for epoch in range(3):
        monkeypatch.setattr(type(m), "current_epoch", property(lambda self, e=epoch: e))
        losses.append(m._loss(pred, m.probe[batch["probe_index"]], batch["counts"]).item())
    mae_only, blend, physics_only = losses
    assert blend == pytest.approx(0.5 * mae_only + 0.5 * physics_only, rel=1e-5)
    assert mae_only != physics_only


def test_multistage_lr_factor_and_schedulers() -> None:
    f = [multistage_lr_factor(e, stage_1_epochs=1, stage_2_epochs=2, stage_3_epochs=2, stage_3_lr_factor=0.1) for e in range(5)]
    assert f == [1.0, 1.0, 1.0, 0.1, 0.1]
    assert multistage_lr_factor(5, stage_1_epochs=0, stage_2_epochs=0, stage_3_epochs=0, stage_3_lr_factor=0.1) == 1.0
    params = [torch.nn.Parameter(torch.zeros(1))]
    common = dict(learning_rate=1e-2, stage_1_epochs=1, stage_2_epochs=1, stage_3_epochs=1, stage_3_lr_factor=0.1, monitor="val_phase_mae")
    assert "lr_scheduler" not in build_optimizers(params, scheduler_type="default", **common)
    kinds = {
        "exponential": torch.optim.lr_scheduler.ExponentialLR,
        "multistage": torch.optim.lr_scheduler.LambdaLR,
        "adaptive": torch.optim.lr_scheduler.ReduceLROnPlateau,
    }
    for name, cls in kinds.items():
        cfg = build_optimizers(params, scheduler_type=name, **common)
        assert isinstance(cfg["lr_scheduler"]["scheduler"], cls) and cfg["lr_scheduler"]["monitor"] == "val_phase_mae"
        assert cfg["optimizer"].param_groups[0]["lr"] == pytest.approx(1e-2)
    cfg = build_optimizers(params, scheduler_type="multistage", **common)
    sched = cfg["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(4):
        lrs.append(sched.get_last_lr()[0])
        cfg["optimizer"].step()
        sched.step()
    assert lrs == pytest.approx([1e-2, 1e-2, 1e-3, 1e-3])
    with pytest.raises(ValueError):
        build_optimizers(params, scheduler_type="cyclic", **common)


# --------------------------------------------------------------------------- datamodule


def tiny_datamodule(**kwargs: object) -> PtychoDataModule:
    dm = PtychoDataModule(**{**TINY, "batch_size": 4, **kwargs})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_split_is_deterministic_and_disjoint() -> None:
    a, b = tiny_datamodule(val_split=0.25), tiny_datamodule(val_split=0.25)
    c = tiny_datamodule(val_split=0.25, val_split_seed=7)
    assert torch.equal(a.val_indices, b.val_indices) and not torch.equal(a.val_indices, c.val_indices)
    assert len(a.val_indices) == 8 and len(a.train_indices) == 24
    assert not set(a.val_indices.tolist()) & set(a.train_indices.tolist())


def test_loader_knobs_reach_dataloaders() -> None:
    dm = tiny_datamodule(num_workers=1, pin_memory=True, persistent_workers=True, prefetch_factor=3, drop_last_batch=True, shuffle_train=True)
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert train is dm.train_loader_ and val is dm.val_loader_
    assert (train.num_workers, train.pin_memory, train.persistent_workers, train.prefetch_factor, train.drop_last) == (1, True, True, 3, True)
    assert isinstance(train.sampler, RandomSampler) and isinstance(val.sampler, SequentialSampler)
    assert val.drop_last is False
    dm0 = tiny_datamodule(num_workers=0, persistent_workers=True, prefetch_factor=3, shuffle_train=False)
    loader = dm0.train_dataloader()
    assert loader.prefetch_factor is None and loader.persistent_workers is False
    assert isinstance(loader.sampler, SequentialSampler)
    assert next(iter(loader))["counts"].shape == (4, 16, 16)


# --------------------------------------------------------------------------- overlap constraint (gridsize)


def test_neighbour_groups_are_nearest_same_object_and_from_the_pool() -> None:
    d = simulate(tiny_spec())
    pool = torch.arange(0, 32, 2)  # even patterns only
    anchors = torch.tensor([0, 5, 17, 30])
    groups = neighbour_groups(d.positions, d.object_index, anchors, pool, 4)
    assert groups.shape == (4, 4) and torch.equal(groups[:, 0], anchors)
    for anchor, members in zip(anchors.tolist(), groups.tolist(), strict=True):
        others = members[1:]
        assert all(m in pool.tolist() and d.object_index[m] == d.object_index[anchor] for m in others)
        dist = (d.positions - d.positions[anchor]).float().norm(dim=1)
        same_object = [m for m in pool.tolist() if d.object_index[m] == d.object_index[anchor] and m != anchor]
        assert sorted(dist[others].tolist()) == sorted(dist[same_object].tolist())[:3]
    assert torch.equal(groups, neighbour_groups(d.positions, d.object_index, anchors, pool, 4))
    with pytest.raises(ValueError, match="fewer than gridsize"):
        neighbour_groups(d.positions, d.object_index, anchors, pool[:3], 4)


def _truth_groups(gridsize: int = 2):
    d = simulate(tiny_spec(object_class="gaussian_field"))
    everything = torch.arange(d.counts.shape[0])
    groups = neighbour_groups(d.positions, d.object_index, everything, everything, gridsize**2)
    corners = d.positions[groups]
    intensity = d.probe.abs().square()
    weights = (intensity / intensity.max() + MERGE_WEIGHT_FLOOR).expand(*groups.shape, 16, 16)
    return d, groups, corners - corners.amin(dim=1, keepdim=True), weights


def test_overlap_merge_keeps_consistent_patches_and_averages_disagreement() -> None:
    d, groups, offsets, weights = _truth_groups()
    truth = d.truth[groups]
    assert torch.allclose(overlap_merge(truth, offsets, weights), truth, atol=1e-5)
    # one member disagrees: every member's overlap with it moves, its own patch moves towards the others
    bent = truth.clone()
    bent[:, 1] = bent[:, 1] * 1j
    merged = overlap_merge(bent, offsets, weights)
    assert not torch.allclose(merged[:, 0], truth[:, 0], atol=1e-3)
    assert (merged[:, 1] - truth[:, 1]).abs().mean() < (bent[:, 1] - truth[:, 1]).abs().mean()


def test_overlap_constraint_penalises_what_single_patterns_cannot_see() -> None:
    """A constant phase per patch is invisible to one pattern's likelihood but not to the group's.

    This is what gridsize > 1 adds: without the merge both losses would be equal.
    """
    d, groups, offsets, weights = _truth_groups()
    counts, truth = d.counts[groups], d.truth[groups]
    scrambled = truth * torch.polar(torch.ones(groups.shape), torch.rand(groups.shape, generator=torch.Generator().manual_seed(0)) * 3.0)[..., None, None]

    def deviance(patches: torch.Tensor) -> float:
        return poisson_deviance(far_field_intensity(d.probe, patches, d.spec.nphotons), counts, d.mask).item()

    assert deviance(scrambled) == pytest.approx(deviance(truth), rel=1e-4)
    assert deviance(overlap_merge(truth, offsets, weights)) == pytest.approx(deviance(truth), rel=1e-3)
    assert deviance(overlap_merge(scrambled, offsets, weights)) > 2 * deviance(truth)


def test_gridsize_batches_are_groups_and_the_model_trains_on_them() -> None:
    dm = tiny_datamodule(gridsize=2, val_split=0.25)
    batch = next(iter(dm.train_dataloader()))
    assert batch["counts"].shape == (4, 4, 16, 16) and batch["offsets"].shape == (4, 4, 2)
    assert batch["offsets"].min() == 0 and batch["probe_index"].shape == (4, 4)
    train = set(dm.train_indices.tolist())
    assert all(set(g.tolist()) <= train for g in dm.train_loader_.dataset.groups)  # no held-out pattern leaks in
    val = next(iter(dm.val_dataloader()))
    assert val["counts"].shape[1:] == (4, 16, 16)
    model = PtychoPINNModule(dm.data.probes, dm.data.mask, 1e5, channels=(4, 8))
    loss, pred, region = model._fit_step(batch)
    assert pred.shape == (4, 4, 16, 16) and region.shape == pred.shape and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.net.parameters())
    with pytest.raises(ValueError, match="gridsize"):
        tiny_datamodule(gridsize=0)


# --------------------------------------------------------------------------- inference


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny real fit shared by the inference tests."""
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    lightning.seed_everything(0, verbose=False)
    model, dm = build_workload(
        datagen=dict(objects_per_probe=2, diff_per_object=36),
        N=16,
        batch_size=8,
        architecture=dict(eca_encoder=True, channels=(4, 8)),
        optimisation=dict(learning_rate=3e-3, scheduler_type="exponential"),
        cache_dir=tmp_path_factory.mktemp("cache"),
    )
    trainer = lightning.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, dm)
    return model, dm, trainer


def test_tiny_fit_produces_finite_metrics(trained) -> None:
    _, _, trainer = trained
    metrics = trainer.callback_metrics
    for name in ("train_loss", "val_loss", "val_amplitude_mae", "val_phase_mae"):
        assert name in metrics and torch.isfinite(metrics[name])


def report(trained, tmp_path, **knobs):
    model, dm, _ = trained
    defaults = dict(do_stitching=True, middle_trim=2, M=20, pad_eval=True, reconstruction_window=0)
    return reconstruct_and_report(model, dm.data, tmp_path, **{**defaults, **knobs})


def test_report_writes_files(trained, tmp_path) -> None:
    summary = report(trained, tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    assert (tmp_path / "reconstruction.png").stat().st_size > 0
    for key in ("amplitude_mae", "phase_mae", "baseline_amplitude_mae", "baseline_phase_mae", "phase_mae_ratio"):
        assert math.isfinite(summary[key])
    assert summary["phase_mae_ratio"] == pytest.approx(summary["phase_mae"] / summary["baseline_phase_mae"])


@pytest.mark.parametrize(
    "knob, value",
    [
        ("middle_trim", 4),
        ("M", 6),
        ("pad_eval", False),
        ("reconstruction_window", 6),
        ("flip_x", True),
        ("flip_y", True),
        ("transpose", True),
        ("do_stitching", False),
    ],
)
def test_inference_knobs_change_output(trained, tmp_path, knob, value) -> None:
    base = report(trained, tmp_path / "base")
    changed = report(trained, tmp_path / "changed", **{knob: value})
    assert (changed["phase_mae"], changed["amplitude_mae"]) != (base["phase_mae"], base["amplitude_mae"])


def test_stitch_alignment_removes_per_window_phase_offsets() -> None:
    d = simulate(SimulationSpec(objects_per_probe=1, diff_per_object=36, N=16, object_class="gaussian_field"))
    start, size = kept_window(16, 2, 20)
    windows = d.truth[:, start : start + size, start : start + size]
    offsets = torch.polar(torch.ones(36, 1, 1), torch.rand(36, 1, 1, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8)
    corners, shape = d.positions + start, tuple(d.objects[0].shape)
    weight = d.probe.abs().square()[start : start + size, start : start + size]

    def phase_error(image: torch.Tensor, coverage: torch.Tensor) -> float:
        rec, truth = image[coverage > 0], d.objects[0][coverage > 0]
        rec = rec * torch.sgn((truth * rec.conj()).sum())
        return torch.angle(rec * truth.conj()).abs().mean().item()

    exact = stitch(windows, corners, shape)
    assert phase_error(*exact) < 1e-5
    unaligned = phase_error(*stitch(windows * offsets, corners, shape, weight))
    aligned = phase_error(*stitch(windows * offsets, corners, shape, weight, 3))
    assert unaligned > 0.1 and aligned < 0.5 * unaligned
    # probe weighting keeps coverage where windows land and reproduces exact windows
    image, coverage = stitch(windows, corners, shape, weight)
    assert torch.equal(coverage > 0, exact[1] > 0) and torch.allclose(image, exact[0], atol=1e-5)


def test_stitching_options_change_output(trained, tmp_path) -> None:
    base = report(trained, tmp_path / "base")
    for knobs in ({"stitch_weighting": "uniform"}, {"align_patch_phase": False}):
        changed = report(trained, tmp_path / "changed", **knobs)
        assert changed["phase_mae"] != base["phase_mae"]
    with pytest.raises(ValueError):
        report(trained, tmp_path / "bad", stitch_weighting="gaussian")


def test_inference_batch_size_is_honoured_but_invariant(trained, tmp_path) -> None:
    model = trained[0]
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        small = report(trained, tmp_path / "a", inference_batch_size=5)
        n_small = len(calls)
        big = report(trained, tmp_path / "b", inference_batch_size=1000)
    finally:
        handle.remove()
    assert n_small == math.ceil(36 / 5) and len(calls) - n_small == 1
    assert small["phase_mae"] == pytest.approx(big["phase_mae"], abs=1e-6)
    assert small["amplitude_mae"] == pytest.approx(big["amplitude_mae"], abs=1e-6)
