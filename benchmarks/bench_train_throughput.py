"""Training throughput on CPU at the example size, and reconstruction quality vs the constant baseline.

Usage: python benchmarks/bench_train_throughput.py [--seed 0,1,2,3,42] [--object-class dead_leaves]
The values in EXAMPLE are those of examples/run.yaml.

EXAMPLE trains on the scan it reconstructs (one object, 256 patterns), as
PtychoPINN does in practice: the network never sees the truth, so fitting the
measured patterns of object 0 through the physics loss is the reconstruction.
With one object the budget buys many passes over those patterns.

gridsize 2 (the example's) trains on groups of 2x2 neighbouring patterns whose
predicted patches are merged on their overlap before the physics loss
(PtychoPINN's overlap constraint); --gridsize 1 trains on single patterns.

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
    "architecture": {"channels": (8, 16, 32), "skip_connections": True, "input_transform": "log1p"},
    "optimisation": {"learning_rate": 3e-3, "scheduler_type": "default"},
    "batch_size": 16,
    "epochs": 50,
    "gridsize": 2,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--object-class", default=EXAMPLE["datagen"]["object_class"], help="override the example's object_class")
    parser.add_argument("--epochs", type=int, default=EXAMPLE["epochs"])
    parser.add_argument("--probe-kind", default=EXAMPLE["datagen"]["probe_kind"], help="override the example's probe_kind")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for the fit")
    parser.add_argument("--seed", default="0", help="seed of the simulation and of the training RNGs; a comma-separated list runs each in turn")
    parser.add_argument("--gridsize", type=int, default=EXAMPLE["gridsize"], help="neighbours per group side (overlap-constrained loss when > 1)")
    parser.add_argument("--batch-size", type=int, default=EXAMPLE["batch_size"], help="groups (gridsize > 1) or patterns per step")
    parser.add_argument("--channels", default=None, help="comma-separated encoder widths, e.g. 16,32,64 (default: the example's)")
    parser.add_argument("--norm", default=None, choices=("batch", "group", "none"), help="normalisation layers (default: the model's)")
    parser.add_argument("--diff-per-object", type=int, default=EXAMPLE["datagen"]["diff_per_object"])
    parser.add_argument("--scheduler", default=EXAMPLE["optimisation"]["scheduler_type"], help="scheduler_type knob")
    parser.add_argument("--lr", type=float, default=EXAMPLE["optimisation"]["learning_rate"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    torch.set_num_threads(args.threads)
    ratios = [run(args, int(seed)) for seed in args.seed.split(",")]
    if len(ratios) > 1:
        print(f"stitched phase_mae ratio over seeds {args.seed}: {', '.join(f'{r:.2f}' for r in ratios)}; max {max(ratios):.2f}")


def run(args: argparse.Namespace, seed: int) -> float:
    """One seeded fit and its reconstruction report; returns the stitched phase-error ratio."""
    lightning.seed_everything(seed, verbose=False)
    datagen = {**EXAMPLE["datagen"], "object_class": args.object_class, "probe_kind": args.probe_kind, "diff_per_object": args.diff_per_object}
    architecture = dict(EXAMPLE["architecture"])
    if args.channels:
        architecture["channels"] = tuple(int(c) for c in args.channels.split(","))
    if args.norm:
        architecture["norm"] = args.norm
    with tempfile.TemporaryDirectory() as tmp:
        model, dm = build_workload(
            datagen=datagen, data_loading={"gridsize": args.gridsize}, architecture=architecture,
            optimisation={**EXAMPLE["optimisation"], "learning_rate": args.lr, "scheduler_type": args.scheduler}, batch_size=args.batch_size, cache_dir=tmp, seed=seed,
        )
        trainer = lightning.Trainer(
            max_epochs=args.epochs, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
        )
        start = time.perf_counter()
        trainer.fit(model, dm)
        elapsed = time.perf_counter() - start
        samples = len(dm.train_indices) * args.epochs * args.gridsize**2
        print(
            f"seed {seed}, {args.object_class} ({args.probe_kind} probe, gridsize {args.gridsize}, {args.threads} threads): fit {elapsed:.1f} s,"
            f" {samples / elapsed:.0f} patterns/s through the network ({len(dm.train_indices)} anchors x {args.gridsize**2} x {args.epochs} epochs)"
        )
        print({k: round(float(v), 4) for k, v in trainer.callback_metrics.items()})
        ratio = float("nan")
        for stitched in (True, False):
            s = reconstruct_and_report(model, dm.data, tmp, do_stitching=stitched)
            ratio = s["phase_mae_ratio"] if stitched else ratio
            print(
                f"{'stitched ' if stitched else 'per-patch'}: phase_mae {s['phase_mae']:.3f} / baseline {s['baseline_phase_mae']:.3f}"
                f" = ratio {s['phase_mae_ratio']:.3f}; amplitude_mae {s['amplitude_mae']:.3f} (baseline {s['baseline_amplitude_mae']:.3f})"
            )
        return ratio


if __name__ == "__main__":
    main()
