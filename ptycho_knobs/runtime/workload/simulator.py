"""Seeded far-field ptychography simulator.

The simulator produces what a PtychoPINN training run needs: Poisson-noisy
diffraction counts behind a beamstop, the probe that made them, the beamstop
mask, and (for evaluation only) the true object patches and scan positions.

Geometry.  Each object is scanned on a jittered raster with step
``scan_step`` (default ``N // 4``, i.e. 75 % linear overlap between
neighbouring patches).  The raster has ``ceil(sqrt(diff_per_object))`` points
per side and the first ``diff_per_object`` points (row-major) are used, so the
object size is derived from ``diff_per_object`` and the step:
``object_size = N + scan_step * (side - 1) + 2 * jitter``.  The overlap
therefore stays constant when ``diff_per_object`` grows; a larger value means
more (and larger) objects' worth of distinct training content.

Intensity convention (shared with the model's forward model through
:func:`far_field_intensity`): the probe is normalised to unit energy and the
far field is ``nphotons * |fftshift(fft2(probe * patch, norm="ortho"))|**2``,
so a fully transmitting object yields ``nphotons`` expected counts per
pattern and a partially absorbing one proportionally fewer.

Probe (``probe_kind``): ``"diffuser"`` (default) puts a seeded, smoothed
random phase screen in the band-limiting pupil, as in diffuser /
structured-illumination ptychography; ``"focused"`` is the plain defocused
disc pupil of earlier versions, whose centro-symmetric intensity lets a
large fraction of patches converge to the twin image ``conj(O(-r))``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import torch

from ptycho_knobs.atomic import atomic_open

SIMULATOR_VERSION = "1"
OBJECT_CLASSES = ("dead_leaves", "gaussian_field", "lines")
PROBE_KINDS = ("focused", "diffuser")
"""``focused``: disc pupil + defocus (|P| centro-symmetric, so the twin image
fits the data almost as well as the object); ``diffuser`` (default): the same
pupil times a seeded random phase screen (structured illumination), whose
speckled, non-centro-symmetric intensity makes the twin implausible."""
DIFFUSER_CORRELATION = 1.5
"""Correlation length of the diffuser phase screen in pupil (Fourier) pixels; longer = more compact probe."""
DIFFUSER_STRENGTH = 2.0
"""Standard deviation of the diffuser phase screen in radians."""
CHUNK_SIZE = 4096
"""Patterns simulated per batched FFT; bounds peak memory for large scans."""

AMPLITUDE_RANGE = (0.3, 1.0)
PHASE_RANGE = (-math.pi / 2, math.pi / 2)


@dataclasses.dataclass(frozen=True)
class SimulationSpec:
    """Everything that determines a simulated data set (and hence its cache key)."""

    objects_per_probe: int = 4
    diff_per_object: int = 7000
    object_class: str = "dead_leaves"
    beamstop_diameter: int = 4
    nphotons: float = 1e5
    N: int = 32
    object_size: int | None = None
    scan_step: int | None = None
    n_probes: int = 1
    seed: int = 0  # ptycho-knobs: ignore[PK002] the simulation's own seed (the harness passes the data seed), not the training seed
    probe_kind: str = "diffuser"

    def __post_init__(self) -> None:
        if self.object_class not in OBJECT_CLASSES:
            raise ValueError(f"object_class must be one of {OBJECT_CLASSES}, got {self.object_class!r}")
        if self.probe_kind not in PROBE_KINDS:
            raise ValueError(f"probe_kind must be one of {PROBE_KINDS}, got {self.probe_kind!r}")
        if self.objects_per_probe < 1 or self.diff_per_object < 1 or self.n_probes < 1:
            raise ValueError("objects_per_probe, diff_per_object and n_probes must be >= 1")
        if self.N < 8 or self.N % 2:
            raise ValueError("N must be an even number >= 8")
        if self.beamstop_diameter < 0 or self.nphotons <= 0:
            raise ValueError("beamstop_diameter must be >= 0 and nphotons > 0")
        if self.object_size is not None and self.object_size < self.N:
            raise ValueError("object_size must be >= N")

    @property
    def step(self) -> int:
        return self.scan_step if self.scan_step is not None else max(1, self.N // 4)

    @property
    def jitter(self) -> int:
        return self.step // 4

    @property
    def raster_side(self) -> int:
        return math.ceil(math.sqrt(self.diff_per_object))

    @property
    def resolved_object_size(self) -> int:
        if self.object_size is not None:
            return self.object_size
        return self.N + self.step * (self.raster_side - 1) + 2 * self.jitter

    @property
    def n_objects(self) -> int:
        return self.n_probes * self.objects_per_probe

    def cache_key(self) -> str:
        payload = {"simulator_version": SIMULATOR_VERSION, **dataclasses.asdict(self)}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclasses.dataclass
class SimulatedData:
    """Simulated data set; ``probe`` is probe 0, ``probes[probe_index[i]]`` lit pattern i."""

    counts: torch.Tensor  # [P, N, N] float32
    truth: torch.Tensor  # [P, N, N] complex64
    positions: torch.Tensor  # [P, 2] int64 (row, col) of the patch's top-left pixel
    object_index: torch.Tensor  # [P] int64
    probe_index: torch.Tensor  # [P] int64
    objects: torch.Tensor  # [n_obj, H, W] complex64
    probes: torch.Tensor  # [n_probes, N, N] complex64
    mask: torch.Tensor  # [N, N] bool, True = measured
    spec: SimulationSpec

    @property
    def probe(self) -> torch.Tensor:
        return self.probes[0]

    def to_state(self) -> dict[str, object]:
        state: dict[str, object] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        state["spec"] = dataclasses.asdict(self.spec)
        return state

    @classmethod
    def from_state(cls, state: dict[str, object]) -> SimulatedData:
        fields = dict(state)
        fields["spec"] = SimulationSpec(**fields["spec"])  # type: ignore[arg-type]
        return cls(**fields)  # type: ignore[arg-type]


def _derived_seed(seed: int, *tags: object) -> int:
    """Independent, reproducible sub-seeds so each stage has its own RNG stream."""
    digest = hashlib.sha256(json.dumps([seed, *tags]).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _generator(seed: int, *tags: object) -> torch.Generator:
    return torch.Generator().manual_seed(_derived_seed(seed, *tags))


def _uniform(gen: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=gen)


DISC_BLOCK = 1024
"""Discs rasterised per vectorised step in :func:`_dead_leaves` (bounds memory on large objects)."""


def _dead_leaves(size: int, gen: torch.Generator, N: int) -> torch.Tensor:
    """Overlapping discs with log-uniform radii (up to half a patch), each with its own amplitude and phase.

    Discs are painted in order (a later disc covers an earlier one).  Rather
    than painting one disc per Python iteration, every disc's bounding box is
    rasterised at once (in blocks) and each pixel keeps the highest-numbered
    disc that covers it (``scatter_reduce`` amax): bit-identical to painting
    disc by disc (so cached data stay valid), about 3x faster at 700 px.
    """
    r_min, r_max = 1.5, N / 2
    mean_area = math.pi * (r_max**2 - r_min**2) / (2 * math.log(r_max / r_min))
    n_discs = max(8, round(3 * (size + 2 * r_max) ** 2 / mean_area))  # ~3x coverage
    radii = r_min * (r_max / r_min) ** torch.rand(n_discs, generator=gen)
    centres = _uniform(gen, (n_discs, 2), -r_max, size + r_max)
    values = torch.polar(_uniform(gen, (n_discs,), *AMPLITUDE_RANGE), _uniform(gen, (n_discs,), *PHASE_RANGE))
    span = torch.arange(math.ceil(2 * r_max) + 2)
    winner = torch.full((size * size,), -1, dtype=torch.long)
    for start in range(0, n_discs, DISC_BLOCK):
        block = slice(start, start + DISC_BLOCK)
        cy, cx, r = centres[block, 0, None, None], centres[block, 1, None, None], radii[block, None, None]
        rows = torch.floor(cy - r).long() + span[None, :, None]
        cols = torch.floor(cx - r).long() + span[None, None, :]
        inside = ((rows.float() - cy) ** 2 + (cols.float() - cx) ** 2 < r * r) & (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
        disc = torch.arange(start, start + len(r))[:, None, None].expand(inside.shape)
        winner.scatter_reduce_(0, (rows * size + cols)[inside], disc[inside], reduce="amax")
    painted = winner >= 0
    obj = torch.ones(size * size, dtype=torch.complex64)
    obj[painted] = values[winner[painted]]
    return obj.view(size, size)


def _lines(size: int, gen: torch.Generator, N: int) -> torch.Tensor:
    """Random straight bars 1-4 px wide, painted in order like dead leaves (about 1.5x coverage)."""
    n_lines = max(12, (3 * size) // 5)
    angle = _uniform(gen, (n_lines,), 0.0, math.pi)
    offset = _uniform(gen, (n_lines,), -size / 2, size / 2)
    width = _uniform(gen, (n_lines,), 1.0, 4.0)
    values = torch.polar(_uniform(gen, (n_lines,), *AMPLITUDE_RANGE), _uniform(gen, (n_lines,), *PHASE_RANGE))
    c = (size - 1) / 2
    yy = torch.arange(size, dtype=torch.float32)[:, None] - c
    xx = torch.arange(size, dtype=torch.float32)[None, :] - c
    obj = torch.ones(size, size, dtype=torch.complex64)
    for th, off, w, v in zip(angle.tolist(), offset.tolist(), width.tolist(), values, strict=True):
        obj[(xx * math.cos(th) + yy * math.sin(th) - off).abs() < w / 2] = v
    return obj


def _smooth_field(size: int, gen: torch.Generator, correlation: float) -> torch.Tensor:
    """Zero-mean, unit-variance Gaussian random field with a Gaussian spectrum."""
    noise = torch.randn((size, size), generator=gen)
    k = torch.fft.fftfreq(size)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    field = torch.fft.ifft2(torch.fft.fft2(noise) * torch.exp(-2 * (math.pi * correlation) ** 2 * k2)).real
    return (field - field.mean()) / field.std().clamp_min(1e-6)


def _gaussian_field(size: int, gen: torch.Generator, N: int) -> torch.Tensor:
    """Smooth amplitude and phase maps (independent fields) mapped into the value ranges."""
    lo, hi = AMPLITUDE_RANGE
    amp = lo + (hi - lo) * torch.sigmoid(1.5 * _smooth_field(size, gen, N / 8))
    phase = PHASE_RANGE[1] * torch.tanh(0.8 * _smooth_field(size, gen, N / 8))
    return torch.polar(amp, phase)


_OBJECT_MAKERS = {"dead_leaves": _dead_leaves, "gaussian_field": _gaussian_field, "lines": _lines}


def make_objects(spec: SimulationSpec) -> torch.Tensor:
    size = spec.resolved_object_size
    maker = _OBJECT_MAKERS[spec.object_class]
    return torch.stack([maker(size, _generator(spec.seed, "object", i), spec.N) for i in range(spec.n_objects)]).to(torch.complex64)


def make_probe(
    N: int,
    defocus: float = 3.0,
    *,
    diffuser: torch.Generator | None = None,
    correlation: float = DIFFUSER_CORRELATION,
    strength: float = DIFFUSER_STRENGTH,
) -> torch.Tensor:
    """Probe at the sample: disc pupil with a quadratic (defocus) phase, propagated to the sample.

    The pupil radius ``N / 8`` keeps the probe's footprint to about half the
    patch (the oversampling phase retrieval needs) and band-limits it.  A
    symmetric pupil gives ``|P(r)| = |P(-r)|``, so the twin
    ``conj(O(-r))`` (times a smooth probe-phase factor) fits the data almost
    as well as the object.  ``diffuser`` (a generator) multiplies the pupil by
    a random phase screen of ``strength`` rad std, Gaussian-smoothed over
    ``correlation`` pupil pixels: the probe stays band-limited (same disc) and
    compact (smooth screen), but its intensity is a speckle pattern with no
    centro-symmetry, which makes the twin implausible.
    """
    k = torch.fft.fftshift(torch.fft.fftfreq(N)) * N
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    radius = N / 8
    phase = defocus * k2 / radius**2
    if diffuser is not None:
        phase = phase + strength * _smooth_field(N, diffuser, correlation)
    pupil = torch.polar((k2 <= radius**2).float(), phase)
    probe = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(pupil), norm="ortho"))
    if diffuser is not None:  # undo the screen's random tilt: integer roll of the intensity centroid to N/2
        intensity = probe.abs().square()
        grid = torch.arange(N, dtype=torch.float32)
        centre = [(intensity.sum(dim) * grid).sum() / intensity.sum() for dim in (1, 0)]
        probe = torch.roll(probe, [N // 2 - round(c.item()) for c in centre], dims=(0, 1))
    return (probe / probe.abs().pow(2).sum().sqrt()).to(torch.complex64)


def make_probes(spec: SimulationSpec) -> torch.Tensor:
    """``n_probes`` probes differing in defocus (and, for ``probe_kind='diffuser'``, in their seeded phase screen)."""
    probes = []
    for i in range(spec.n_probes):
        diffuser = _generator(spec.seed, "diffuser", i) if spec.probe_kind == "diffuser" else None
        probes.append(make_probe(spec.N, 3.0 + 1.0 * i, diffuser=diffuser, correlation=DIFFUSER_CORRELATION, strength=DIFFUSER_STRENGTH))
    return torch.stack(probes)


def beamstop_mask(N: int, diameter: int) -> torch.Tensor:
    """True where measured; a disc of ``diameter`` pixels around the (fftshifted) DC pixel is blocked."""
    k = torch.arange(N, dtype=torch.float32) - N // 2
    r2 = k[:, None] ** 2 + k[None, :] ** 2
    return ~(r2 <= (diameter / 2) ** 2) if diameter > 0 else torch.ones(N, N, dtype=torch.bool)


def scan_positions(spec: SimulationSpec) -> torch.Tensor:
    """Jittered raster positions ``[n_objects * diff_per_object, 2]`` (top-left pixel, row/col)."""
    side, step, jitter = spec.raster_side, spec.step, spec.jitter
    grid = torch.arange(side) * step + jitter
    raster = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), dim=-1).reshape(-1, 2)[: spec.diff_per_object]
    limit = spec.resolved_object_size - spec.N
    per_object = []
    for i in range(spec.n_objects):
        shake = torch.randint(-jitter, jitter + 1, raster.shape, generator=_generator(spec.seed, "scan", i))
        per_object.append((raster + shake).clamp(0, limit))
    return torch.cat(per_object)


def extract_patches(objects: torch.Tensor, object_index: torch.Tensor, positions: torch.Tensor, N: int) -> torch.Tensor:
    """Gather ``[B, N, N]`` patches with one advanced-indexing call (no Python loop)."""
    offs = torch.arange(N)
    rows = (positions[:, 0, None] + offs)[:, :, None]
    cols = (positions[:, 1, None] + offs)[:, None, :]
    return objects[object_index[:, None, None], rows, cols]


def far_field_intensity(probe: torch.Tensor, patches: torch.Tensor, nphotons: float) -> torch.Tensor:
    """Expected counts ``nphotons * |fftshift(fft2(probe * patch))|^2`` computed in complex64.

    Shared by the simulator and the model's physics loss so both use exactly
    one convention; inputs of lower precision (bf16 autocast) are promoted.
    """
    exit_wave = probe.to(torch.complex64) * patches.to(torch.complex64)
    far = torch.fft.fftshift(torch.fft.fft2(exit_wave, norm="ortho"), dim=(-2, -1))
    return nphotons * (far.real.square() + far.imag.square())


def _chunks(total: int) -> Iterator[tuple[int, slice]]:
    for i, start in enumerate(range(0, total, CHUNK_SIZE)):
        yield i, slice(start, min(start + CHUNK_SIZE, total))


def _layout(spec: SimulationSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    objects = make_objects(spec)
    probes = make_probes(spec)
    positions = scan_positions(spec)
    object_index = torch.arange(spec.n_objects).repeat_interleave(spec.diff_per_object)
    probe_index = object_index // spec.objects_per_probe
    return objects, probes, positions, object_index, probe_index, beamstop_mask(spec.N, spec.beamstop_diameter)


def _detect(spec: SimulationSpec, chunk: int, intensity: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Poisson counting with a per-chunk RNG stream, then the beamstop."""
    counts = torch.poisson(intensity, generator=_generator(spec.seed, "noise", chunk))
    return counts * mask


def _simulate(spec: SimulationSpec, vectorised: bool) -> SimulatedData:
    objects, probes, positions, object_index, probe_index, mask = _layout(spec)
    total = positions.shape[0]
    counts = torch.empty(total, spec.N, spec.N, dtype=torch.float32)
    truth = torch.empty(total, spec.N, spec.N, dtype=torch.complex64)
    for chunk, sl in _chunks(total):
        if vectorised:
            patches = extract_patches(objects, object_index[sl], positions[sl], spec.N)
            intensity = far_field_intensity(probes[probe_index[sl]], patches, spec.nphotons)
        else:
            patch_list, intensity_list = [], []
            for i in range(sl.start, sl.stop):
                r, c = positions[i].tolist()
                patch = objects[object_index[i], r : r + spec.N, c : c + spec.N]
                patch_list.append(patch)
                intensity_list.append(far_field_intensity(probes[probe_index[i]], patch, spec.nphotons))
            patches, intensity = torch.stack(patch_list), torch.stack(intensity_list)
        truth[sl] = patches
        counts[sl] = _detect(spec, chunk, intensity, mask)
    return SimulatedData(counts, truth, positions, object_index, probe_index, objects, probes, mask, spec)


def naive_simulate_loop(spec: SimulationSpec) -> SimulatedData:
    """Reference implementation: one patch and one FFT per Python iteration, same math and RNG."""
    return _simulate(spec, vectorised=False)


def _atomic_save(obj: object, path: Path) -> None:
    with atomic_open(path, binary=True) as fh:
        torch.save(obj, fh)


def cache_path(spec: SimulationSpec, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"{spec.cache_key()}.pt"


def simulate(spec: SimulationSpec, cache_dir: Path | None = None) -> SimulatedData:
    """Simulate (batched FFTs over chunks), reusing ``cache_dir/<cache_key>.pt`` when present."""
    path = cache_path(spec, cache_dir) if cache_dir is not None else None
    if path is not None and path.exists():
        return SimulatedData.from_state(torch.load(path, weights_only=True))
    data = _simulate(spec, vectorised=True)
    if path is not None:
        _atomic_save(data.to_state(), path)
    return data
