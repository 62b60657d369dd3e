"""Training throughput on CPU at the example size, and reconstruction quality vs the constant baseline.

Usage: python benchmarks/bench_train_throughput.py [--object-class dead_leaves]
The knob values in EXAMPLE are the ones recommended for examples/run.yaml.

EXAMPLE trains on the scan it reconstructs (one object, 256 patterns), as
PtychoPINN does in practice: the network never sees the truth, so fitting the
measured patterns of object 0 through the physics loss is the reconstruction.
With one object the budget buys many passes over those patterns.

probe_kind 'diffuser' (a seeded random phase screen in the pupil) breaks the
centro-symmetry of the focused probe, so far fewer patches converge to the
twin image conj(O(-r)); pass --probe-kind focused for the earlier probe.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import lightning
import torch

from ptycho_knobs.runtime.workload import build_workload, reconstruct_and_report

EXAMPLE = {
    "datagen": {
        "objects_per_probe": 1,
        "diff_per_object": 256,
        "object_class": "gaussian_field",
        "beamstop_diameter": 4,
        "nphotons": 1e5,
        "probe_kind": "diffuser",
    },
    "architecture": {"skip_connections": True, "input_transform": "log1p"},
    "optimisation": {"learning_rate": 3e-3, "scheduler_type": "default"},
    "batch_size": 32,
    "epochs": 100,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--object-class", default=EXAMPLE["datagen"]["object_class"], help="override the example's object_class")
    parser.add_argument("--epochs", type=int, default=EXAMPLE["epochs"])
    parser.add_argument("--probe-kind", default=EXAMPLE["datagen"]["probe_kind"], help="override the example's probe_kind")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for the fit")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulation and of the training RNGs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    torch.set_num_threads(args.threads)
    lightning.seed_everything(args.seed, verbose=False)
    datagen = {**EXAMPLE["datagen"], "object_class": args.object_class, "probe_kind": args.probe_kind}
    with tempfile.TemporaryDirectory() as tmp:
        model, dm = build_workload(
            datagen=datagen, architecture=EXAMPLE["architecture"], optimisation=EXAMPLE["optimisation"], batch_size=EXAMPLE["batch_size"], cache_dir=tmp,
            seed=args.seed
        )
        trainer = lightning.Trainer(
            max_epochs=args.epochs, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
        )
        start = time.perf_counter()
        trainer.fit(model, dm)
        elapsed = time.perf_counter() - start
        samples = len(dm.train_indices) * args.epochs
        print(f"seed {args.seed}, {args.object_class} ({args.probe_kind} probe, {args.threads} threads): fit {elapsed:.1f} s, {samples / elapsed:.0f} training samples/s ({len(dm.train_indices)} patterns x {args.epochs} epochs)")
        print({k: round(float(v), 4) for k, v in trainer.callback_metrics.items()})
        for stitched in (True, False):
            s = reconstruct_and_report(model, dm.data, tmp, do_stitching=stitched)
            print(
                f"{'stitched ' if stitched else 'per-patch'}: phase_mae {s['phase_mae']:.3f} / baseline {s['baseline_phase_mae']:.3f}"
                f" = ratio {s['phase_mae_ratio']:.3f}; amplitude_mae {s['amplitude_mae']:.3f} (baseline {s['baseline_amplitude_mae']:.3f})"
            )


if __name__ == "__main__":
    main()
