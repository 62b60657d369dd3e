"""The training harness, as LightningCLI-style phases: resolve, seed, instantiate, run.

Each phase is a method, so tests and the benchmark can stop after any of them, and
`args=` (the knob flags as strings) is injectable like LightningCLI's. `--dry-run` is
resolve + seed + instantiate + `materialize` (loaders and optimizers built) + read-back;
a real run is resolve + seed + instantiate + `fit`.

Every value reaches an object through the generated dataclasses (`RunConfig.configs`) and
the registry's routing table: no knob value is written in this file.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptycho_knobs.errors import UsageError
from ptycho_knobs.registry import Registry
from ptycho_knobs.runtime import launch
from ptycho_knobs.runtime.resolve import Resolved, RunConfig, resolve
from ptycho_knobs.runtime.routing import DATA_CLASSES, RoutingTable
from ptycho_knobs.runtime.snapshot import SNAPSHOT_JSON, Snapshot, library_versions
from ptycho_knobs.runtime.snapshot import write as write_snapshot

#: The one knob a resume may change (raise), and the flag that names it.
RESUME_MAY_RAISE = "epochs"
RESUME_MAY_SET = ("epochs", "output_dir")


@dataclass
class Options:
    """What the command line asked for, besides knob values (which come as `args` flags)."""

    config: Path | None = None
    args: Sequence[str] = ()
    run_name: str | None = None
    resume: str | None = None  # "" = the latest run under output_dir
    env: Mapping[str, str] | None = None
    snapshot_wait_s: float = 300.0


@dataclass
class Built:
    """The real objects of one run, kept together for fit and for read-back."""

    trainer: Any
    model: Any
    datamodule: Any
    callbacks: dict[str, Any]
    strategy: Any
    strategy_name: str
    loggers: list[Any]
    inference: dict[str, Any] | None  # what reconstruct_and_report will get (built-in model only)
    unrouted: dict[str, str]  # knob -> class that does not accept it (custom model/data)
    optimizers_injected: bool
    train_loader: Any = None
    val_loader: Any = None
    optimizers: Any = None


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, object] | None
    best_checkpoint: str | None
    last_checkpoint: Path | None


@dataclass
class Harness:
    registry: Registry
    options: Options = field(default_factory=Options)
    run: RunConfig | None = None
    run_dir: Path | None = None
    run_name: str | None = None
    resume_from: Path | None = None
    child: bool = False
    built: Built | None = None

    def __post_init__(self) -> None:
        self.env: Mapping[str, str] = os.environ if self.options.env is None else self.options.env
        self.ctx = launch.context(self.registry, self.env)
        self.table = RoutingTable(self.registry)

    # -- phase 1: resolve ------------------------------------------------------------------

    def resolve(self) -> RunConfig:
        """Resolve once: from the layers (rank 0), or from a snapshot (other ranks, --resume)."""
        from ptycho_knobs.runtime.flags import parse_knob_flags

        flags = parse_knob_flags(self.options.args)
        if self.ctx.snapshot is not None:
            self._adopt(Snapshot.load(self.ctx.snapshot), self.ctx.snapshot.parent)
            self.child = True
        elif self.options.resume is not None:
            self._resume(flags)
        else:
            run = resolve(self.registry, self.options.config, flags, self.env)
            name = launch.run_name(self.ctx, self.options.run_name)
            run_dir = Path(run.value("output_dir")).resolve() / name
            if self.ctx.under_torchrun and not self.ctx.is_rank_zero:
                launch.wait_for(run_dir / SNAPSHOT_JSON, self.options.snapshot_wait_s)
                self._adopt(Snapshot.load(run_dir / SNAPSHOT_JSON), run_dir)
                self.child = True
            else:
                self.run, self.run_dir, self.run_name = run, run_dir, name
        assert self.run is not None
        return self.run

    def _adopt(self, snap: Snapshot, run_dir: Path) -> None:
        self.run, self.run_dir, self.run_name = snap.run, run_dir, snap.run_name

    def _resume(self, flags: dict[str, Any]) -> None:
        if self.options.config is not None:
            raise UsageError("--resume takes its config from the run folder; drop --config")
        other = sorted(set(flags) - set(RESUME_MAY_SET))
        if other:
            raise UsageError(
                f"--resume continues the saved config; only --epochs (to raise max_epochs) and "
                f"--output-dir (to find the run) may be given, not {', '.join(other)}"
            )
        if self.options.resume:
            run_dir = Path(self.options.resume).resolve()
        else:
            where = resolve(self.registry, None, {k: v for k, v in flags.items() if k == "output_dir"}, self.env)
            run_dir = launch.latest_run(Path(where.value("output_dir")).resolve(), SNAPSHOT_JSON)
        snap = Snapshot.load(run_dir / SNAPSHOT_JSON)
        from ptycho_knobs.runtime.build import CHECKPOINT_DIR
        from ptycho_knobs.runtime.callbacks import LAST_CHECKPOINT

        last = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
        if not last.is_file():
            raise UsageError(f"--resume: {last} does not exist (was checkpointing on with save_last?)")
        values = dict(snap.run.values)
        if RESUME_MAY_RAISE in flags:
            old, new = values[RESUME_MAY_RAISE].value, flags[RESUME_MAY_RAISE]
            if new < old:
                raise UsageError(f"--resume may raise epochs, not lower it ({old} -> {new})")
            flag = self.registry.get(RESUME_MAY_RAISE).cli_flag
            values[RESUME_MAY_RAISE] = Resolved(new, flag)
        run = snap.run
        self.run = RunConfig(values=values, model=run.model, data=run.data, model_args=run.model_args,
                             data_args=run.data_args, config_path=run.config_path, positions=run.positions)
        self.run_dir, self.run_name, self.resume_from = run_dir, snap.run_name, last

    def check_machine(self, run: RunConfig) -> None:
        """Refuse what cannot run here before anything heavy starts (located at run.yaml)."""
        import torch

        from ptycho_knobs.runtime.build import DDP_STRATEGIES, strategy_name

        values = self.values()
        accelerator = self.table.kwargs("Trainer", values)["accelerator"]
        if accelerator == "gpu" and not torch.cuda.is_available():
            raise _located(run, "accelerator", "accelerator 'gpu' but this machine has no CUDA GPU",
                           "use accelerator: cpu (or auto) here")
        if accelerator == "mps" and not torch.backends.mps.is_available():
            raise _located(run, "accelerator", "accelerator 'mps' but MPS is not available here", "use accelerator: cpu")
        ddp = self.table.kwargs("DDPStrategy", values)
        on_cpu = accelerator == "cpu" or not torch.cuda.is_available()
        if strategy_name(values, self.table) in DDP_STRATEGIES and on_cpu and ddp.get("process_group_backend") == "nccl":
            knob = self.table.knob_for("DDPStrategy.process_group_backend")
            raise _located(run, knob.name if knob else "strategy",
                           "ddp with process_group_backend 'nccl' needs CUDA GPUs, and this run is on CPU",
                           f"set {knob.name if knob else 'the backend'}: gloo for DDP on CPU")

    def values(self) -> dict[str, Any]:
        """Knob name -> value, read through the generated dataclasses (validated by them)."""
        from ptycho_knobs.generated import execution_config

        assert self.run is not None
        configs = self.run.configs(execution_config)
        return {name: getattr(configs[home], name) for name, home in execution_config.KNOB_HOMES.items()}

    # -- phase 2: seed ---------------------------------------------------------------------

    def seed(self) -> int:
        """Seed python, numpy and torch (and dataloader workers) and export PYTHONHASHSEED.

        PYTHONHASHSEED cannot change this interpreter's hashing; it is exported so that
        every process started from here (DDP ranks, loader workers) hashes the same way.
        """
        import lightning

        value = int(self.table.kwargs("seed_everything", self.values())["seed"])
        os.environ["PYTHONHASHSEED"] = str(value)
        return lightning.seed_everything(value, workers=True, verbose=False)  # ptycho-knobs: ignore[PK005] every run seeds its loader workers; the knob's value is printed by the harness itself

    # -- phase 3: instantiate --------------------------------------------------------------

    def instantiate(self) -> Built:
        """Data module, model, callbacks, strategy, loggers and Trainer, all real, nothing run."""
        import lightning

        from ptycho_knobs.runtime import build, builtin
        from ptycho_knobs.runtime.callbacks import InterruptCheckpoint, NaNGuard, RngState, RunStatus
        from ptycho_knobs.runtime.workload import build_optimizers

        assert self.run is not None and self.run_dir is not None and self.run_name is not None
        self.check_machine(self.run)
        run, values, unrouted = self.run, self.values(), {}
        data_knobs = set(self.table.knob_names(DATA_CLASSES))

        data_cls = build.import_class(run, "data", lightning.LightningDataModule)
        model_cls = build.import_class(run, "model", lightning.LightningModule)
        data_factory = data_cls or builtin.BuiltinDataModule
        data_kw, missed = build.split_accepted(data_factory, {k: values[k] for k in data_knobs})
        unrouted.update(dict.fromkeys(missed, data_factory.__name__))
        datamodule = build.construct(run, "data_args", data_factory, build.merge_args(run, "data_args", data_kw, run.data_args))

        model_candidates = {k: v for k, v in values.items() if k not in data_knobs}
        if model_cls is None:
            from ptycho_knobs.runtime.workload import PtychoPINNModule

            model_kw, _ = build.split_accepted(PtychoPINNModule, model_candidates)
            model_args = build.merge_args(run, "model_args", model_kw, run.model_args)
            model = build.construct(run, "model_args", functools.partial(builtin.make_model, datamodule), model_args,
                                    PtychoPINNModule.__name__)
        else:
            model_kw, _ = build.split_accepted(model_cls, model_candidates)
            model = build.construct(run, "model_args", model_cls, build.merge_args(run, "model_args", model_kw, run.model_args))
        optimizer_kw = self._optimizer_kwargs(build_optimizers, values)
        injected = build.inject_optimizers(model, build_optimizers, optimizer_kw)
        for name in self.table.knob_names(("LightningModule",)):
            if name not in model_kw:
                unrouted.setdefault(name, type(model).__name__)

        made = build.callbacks(values, self.table, self.run_dir)
        checkpoint_dir = self.run_dir / build.CHECKPOINT_DIR
        extra = [RunStatus(self.run_dir), NaNGuard(), InterruptCheckpoint(checkpoint_dir), RngState()]
        made.update({type(c).__name__: c for c in extra})
        name = build.strategy_name(values, self.table)
        strategy = build.strategy(name, values, self.table)
        # A resumed run logs its CSV metrics beside the first ones (CSVLogger would delete them).
        csv_version = f"resume-{self._resume_index()}" if self.resume_from is not None else ""
        logger_list = build.loggers(values, self.table, self.run_dir, self.run_name, csv_version)
        trainer = build.trainer(values, self.table, self.run_dir, strategy, list(made.values()), logger_list)
        inference = self.table.kwargs("inference", values) if builtin.is_builtin(model) else None
        self.built = Built(trainer, model, datamodule, made, strategy, name, logger_list, inference,
                           unrouted, injected)
        return self.built

    def _optimizer_kwargs(self, build_optimizers: Any, values: dict[str, Any]) -> dict[str, Any]:
        """build_optimizers' keywords by knob name; its `monitor` is the checkpoint monitor knob."""
        import inspect

        params = [p for p in inspect.signature(build_optimizers).parameters if p != "parameters"]
        monitor = self.table.knob_for("ModelCheckpoint.monitor")
        named = {**values, **({"monitor": values[monitor.name]} if monitor else {})}
        return {p: named[p] for p in params if p in named}

    def materialize(self) -> Built:
        """Dry-run only: set the data up, build the loaders and the optimizers, train nothing."""
        built = self.built or self.instantiate()
        dm = built.datamodule
        dm.prepare_data()
        dm.setup("fit")
        built.train_loader, built.val_loader = dm.train_dataloader(), dm.val_dataloader()
        built.optimizers = built.model.configure_optimizers()
        return built

    # -- phase 4: run ----------------------------------------------------------------------

    def fit(self) -> RunResult:
        """Train. Rank 0 creates the run folder and its snapshot; ranks it launches reuse both."""
        from ptycho_knobs.runtime import builtin
        from ptycho_knobs.runtime.faults import Interrupted, NonFiniteLoss

        built = self.built or self.instantiate()
        assert self.run is not None and self.run_dir is not None
        snapshot_path = self._prepare_run_dir()
        old = launch.set_env(launch.SNAPSHOT_ENV, str(snapshot_path))
        guard, interrupt = built.callbacks["NaNGuard"], built.callbacks["InterruptCheckpoint"]
        try:
            built.trainer.fit(built.model, datamodule=built.datamodule, ckpt_path=self.resume_from)
        except FloatingPointError:
            if guard.bad is None:
                raise
            bad = guard.bad
            if not built.trainer.is_global_zero:  # every rank stops at this step; rank 0 reports it
                raise SystemExit(NonFiniteLoss.exit_code) from None
            lr = self.run.values[self.table.knob_for("optimizer.lr").name]  # type: ignore[union-attr]
            where = f" on rank {bad['rank']}" if bad["rank"] is not None else ""
            raise NonFiniteLoss(
                f"training loss became {bad['loss']}{where} at epoch {bad['epoch']}, batch {bad['batch']} "
                f"(global step {bad['global_step']}); the run was stopped, and no checkpoint of the non-finite state was saved.\n"
                f"  learning_rate is {lr.value} (from {lr.source}); lower it or set gradient_clip_val"
            ) from None
        except SystemExit:
            if not interrupt.interrupted:
                raise
            if not built.trainer.is_global_zero:  # rank 0 saves last.ckpt and reports
                raise SystemExit(Interrupted.exit_code) from None
            saved = f"saved {interrupt.saved}" if interrupt.saved else "no checkpoint could be saved"
            raise Interrupted(
                f"interrupted (Ctrl-C) at epoch {built.trainer.current_epoch}; {saved}.\n"
                f"  continue with: ptycho-knobs train --resume {self.run_dir}"
            ) from None
        finally:
            launch.set_env(launch.SNAPSHOT_ENV, old)
        summary = None
        if built.trainer.is_global_zero and built.inference is not None:
            summary = builtin.report(built.model, built.datamodule, self.run_dir, built.inference)
        checkpoint = built.callbacks.get("checkpoint")
        best = checkpoint.best_model_path if checkpoint is not None else None
        last = self.run_dir / "checkpoints" / "last.ckpt"
        return RunResult(self.run_dir, summary, best or None, last if last.is_file() else None)

    def _resume_index(self) -> int:
        assert self.run_dir is not None
        if not hasattr(self, "_resume_n"):
            self._resume_n = len(list(self.run_dir.glob("resolved_config.resume-*.json"))) + 1
        return self._resume_n

    def _prepare_run_dir(self) -> Path:
        """Create the run folder and write the snapshot (rank 0, once); never overwrite a run."""
        assert self.run is not None and self.run_dir is not None and self.run_name is not None
        snapshot_path = self.run_dir / SNAPSHOT_JSON
        if self.child:
            return self.ctx.snapshot or snapshot_path
        if not self.ctx.is_rank_zero:
            return snapshot_path
        from ptycho_knobs.generated.execution_config import REGISTRY_SHA256

        snap = Snapshot(self.run, self.run_name, self.registry.sha256, library_versions())
        if REGISTRY_SHA256 != self.registry.sha256:
            snap.versions["generated_from_registry_sha256"] = REGISTRY_SHA256
        if self.resume_from is not None:
            return write_snapshot(self.run_dir, snap, name=f"resolved_config.resume-{self._resume_index()}.json")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise UsageError(
                f"run folder {self.run_dir} already exists; it is never overwritten. "
                f"Pick another --run-name, or continue it with --resume {self.run_dir}"
            ) from None
        return write_snapshot(self.run_dir, snap)


def _located(run: RunConfig, knob: str, message: str, hint: str) -> Exception:
    """A HarnessError at the knob's run.yaml line when it came from run.yaml."""
    from ptycho_knobs.runtime.faults import HarnessError

    err = run.error(knob, message, hint)
    if isinstance(err, UsageError):
        source = run.values[knob].source if knob in run.values else "default"
        return HarnessError(f"{message} ({knob} from {source}); {hint}")
    return err
