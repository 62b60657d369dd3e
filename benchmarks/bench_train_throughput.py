"""Training throughput on CPU at the example size, and reconstruction quality vs the constant baseline.

Usage: python benchmarks/bench_train_throughput.py
The knob values in EXAMPLE are the ones recommended for examples/run.yaml.
"""

from __future__ import annotations

import tempfile
import time
import warnings

import lightning

from ptycho_knobs.runtime.workload import build_workload, reconstruct_and_report

EXAMPLE = {
    "datagen": {"objects_per_probe": 4, "diff_per_object": 256, "object_class": "gaussian_field", "beamstop_diameter": 4, "nphotons": 1e5},
    "optimisation": {"learning_rate": 2e-3, "scheduler_type": "default"},
    "batch_size": 32,
    "epochs": 15,
}


def main() -> None:
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    lightning.seed_everything(0, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        model, dm = build_workload(datagen=EXAMPLE["datagen"], optimisation=EXAMPLE["optimisation"], batch_size=EXAMPLE["batch_size"], cache_dir=tmp)
        trainer = lightning.Trainer(
            max_epochs=EXAMPLE["epochs"], accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
        )
        start = time.perf_counter()
        trainer.fit(model, dm)
        elapsed = time.perf_counter() - start
        samples = len(dm.train_indices) * EXAMPLE["epochs"]
        print(f"fit: {elapsed:.1f} s, {samples / elapsed:.0f} training samples/s ({len(dm.train_indices)} patterns x {EXAMPLE['epochs']} epochs)")
        print({k: round(float(v), 4) for k, v in trainer.callback_metrics.items()})
        for stitched in (True, False):
            s = reconstruct_and_report(model, dm.data, tmp, do_stitching=stitched)
            print(
                f"{'stitched ' if stitched else 'per-patch'}: phase_mae {s['phase_mae']:.3f} / baseline {s['baseline_phase_mae']:.3f}"
                f" = ratio {s['phase_mae_ratio']:.3f}; amplitude_mae {s['amplitude_mae']:.3f} (baseline {s['baseline_amplitude_mae']:.3f})"
            )


if __name__ == "__main__":
    main()
