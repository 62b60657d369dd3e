"""Harness overhead: a short fit through `ptycho-knobs train` vs a hand-written Lightning script.

Same model, data and settings (the built-in workload at a small size, CPU, CSV logger,
checkpointing on); both run in this process, interleaved, `--repeats` times each. Prints
the median wall times, their ratio (target <= 1.05), and the harness's own set-up time:
resolve + build (Trainer, callbacks, loggers, data module, model), imports excluded.

    python benchmarks/bench_harness.py [--repeats 3] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from ptycho_knobs import load_registry
from ptycho_knobs.runtime.builtin import BuiltinDataModule, make_model
from ptycho_knobs.runtime.harness import Harness, Options

ROOT = Path(__file__).resolve().parents[1]
SIZE = {"objects_per_probe": 2, "diff_per_object": 64}
DATA = {"N": 16, "batch_size": 16}


def run_yaml(folder: Path, epochs: int) -> Path:
    text = "\n".join([
        f"epochs: {epochs}", "accelerator: cpu", "quiet: true", "logger_backend: csv", "num_workers: 0",
        "persistent_workers: false", "prefetch_factor: null", "pin_memory: false",
        *(f"{k}: {v}" for k, v in SIZE.items()), f"data_args: {DATA}",
    ])
    path = folder / "run.yaml"
    path.write_text(text + "\n")
    return path


def harness_fit(registry: object, config: Path, out: Path, name: str) -> tuple[float, float]:
    """(total wall time, set-up time) for one run through the harness phases."""
    start = time.perf_counter()
    h = Harness(registry, Options(config=config, args=["--output-dir", str(out)], run_name=name))  # type: ignore[arg-type]
    h.resolve()
    h.seed()
    h.instantiate()
    setup = time.perf_counter() - start
    h.fit()
    return time.perf_counter() - start, setup


def plain_fit(registry: object, out: Path, name: str, epochs: int) -> float:
    """The same run written by hand: the values a user would type, from the registry defaults."""
    d = {k.name: k.default for k in registry.settable()}  # type: ignore[attr-defined]
    start = time.perf_counter()
    lightning.seed_everything(d["seed"], workers=True, verbose=False)
    run = out / name
    dm = BuiltinDataModule(subsample_seed=d["subsample_seed"], **SIZE, **DATA, nphotons=d["nphotons"],
                           object_class=d["object_class"], beamstop_diameter=d["beamstop_diameter"],
                           num_workers=0, pin_memory=False, persistent_workers=False, prefetch_factor=None,
                           val_split=d["val_split"], val_split_seed=d["val_split_seed"])
    model = make_model(dm, learning_rate=d["learning_rate"], physics_weight_schedule=d["physics_weight_schedule"])
    trainer = lightning.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, enable_progress_bar=False, deterministic=True,
        default_root_dir=run, logger=[CSVLogger(save_dir=run, name="", version="")],
        callbacks=[ModelCheckpoint(dirpath=run / "checkpoints", monitor="val_loss", save_last=True),
                   EarlyStopping(monitor="val_loss", patience=d["early_stop_patience"])],
    )
    trainer.fit(model, datamodule=dm)
    from ptycho_knobs.runtime.builtin import report

    report(model, dm, run, {})  # the harness also reconstructs after training
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    registry = load_registry(ROOT / "knob_registry.yaml")
    harness_t, plain_t, setup_t = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        config = run_yaml(out, args.epochs)
        plain_fit(registry, out, "warmup-plain", 1)  # first-call costs (imports, kernels) paid by neither side
        for i in range(args.repeats):
            total, setup = harness_fit(registry, config, out / "h", f"h{i}")
            harness_t.append(total)
            setup_t.append(setup)
            plain_t.append(plain_fit(registry, out / "p", f"p{i}", args.epochs))
    h, p, s = statistics.median(harness_t), statistics.median(plain_t), statistics.median(setup_t)
    print(f"harness fit   median {h:.2f}s  runs {[round(t, 2) for t in harness_t]}")
    print(f"plain script  median {p:.2f}s  runs {[round(t, 2) for t in plain_t]}")
    print(f"ratio harness/plain: {h / p:.3f} (target <= 1.05)")
    print(f"harness set-up (resolve + build, imports excluded): median {s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
