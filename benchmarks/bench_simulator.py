"""Patterns/sec of the vectorised simulator vs the per-pattern reference loop, measured in one run.

Usage: python benchmarks/bench_simulator.py [diff_per_object]
Reports the end-to-end ratio (both paths share object/probe/scan generation and
the chunked Poisson draw, which dominate) and the ratio for the per-pattern
forward model (patch extraction + far field) alone.
"""

from __future__ import annotations

import sys
import time

import torch

from ptycho_knobs.runtime.workload import simulator
from ptycho_knobs.runtime.workload.simulator import SimulationSpec, naive_simulate_loop, simulate


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    dpo = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    spec = SimulationSpec(objects_per_probe=4, diff_per_object=dpo, seed=0)
    total = spec.n_objects * dpo
    simulate(SimulationSpec(objects_per_probe=1, diff_per_object=16))  # warm-up (FFT plans, allocator)
    vec, t_vec = _timed(simulate, spec, None)
    ref, t_ref = _timed(naive_simulate_loop, spec)
    assert torch.equal(vec.counts, ref.counts), "vectorised and reference simulators disagree"
    objects, probes, positions, object_index, probe_index, _ = simulator._layout(spec)

    def forward_vectorised() -> None:
        for _, sl in simulator._chunks(total):
            patches = simulator.extract_patches(objects, object_index[sl], positions[sl], spec.N)
            simulator.far_field_intensity(probes[probe_index[sl]], patches, spec.nphotons)

    def forward_loop() -> None:
        for i in range(total):
            r, c = positions[i].tolist()
            patch = objects[object_index[i], r : r + spec.N, c : c + spec.N]
            simulator.far_field_intensity(probes[probe_index[i]], patch, spec.nphotons)

    _, fwd_vec = _timed(forward_vectorised)
    _, fwd_ref = _timed(forward_loop)
    print(f"patterns: {total} (N={spec.N}, object {spec.resolved_object_size}px, {spec.n_objects} objects)")
    print(f"vectorised: {total / t_vec:10.0f} patterns/s  ({t_vec:.2f} s)")
    print(f"naive loop: {total / t_ref:10.0f} patterns/s  ({t_ref:.2f} s)")
    print(f"end-to-end speed-up: {t_ref / t_vec:.2f}x")
    print(f"forward-model stage only (patch extraction + far field): {total / fwd_vec:.0f} vs {total / fwd_ref:.0f} patterns/s = {fwd_ref / fwd_vec:.1f}x")


if __name__ == "__main__":
    main()
