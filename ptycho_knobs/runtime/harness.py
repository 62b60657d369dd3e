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
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptycho_knobs.errors import UsageError
from ptycho_knobs.registry import Registry
from ptycho_knobs.runtime import launch, runlock, threads
from ptycho_knobs.runtime.resolve import Resolved, RunConfig, resolve
from ptycho_knobs.runtime.routing import DATA_CLASSES, RoutingTable
from ptycho_knobs.runtime.runlock import RunLock
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
    checkpoint: str | None = None  # --checkpoint: resume from this file instead of the newest last*.ckpt
    fallback_checkpoint: bool = False  # take the newest checkpoint that loads when the chosen one does not
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
    resume_note: str | None = None  # set when --fallback-checkpoint replaced a broken checkpoint
    child: bool = False
    built: Built | None = None
    lock: RunLock | None = None
    threads: int | None = None  # the torch thread count pinned for a deterministic run (threads.py)
    recorded_threads: int | None = None  # the count the run being resumed (or joined) recorded

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
        self.recorded_threads = snap.runtime.get(threads.RECORD_KEY)
        self.resume_from = self.ctx.resume_from  # ranks started by Lightning restore what rank 0 restores

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
        self.recorded_threads = snap.runtime.get(threads.RECORD_KEY)
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
        self.run_dir, self.run_name = run_dir, snap.run_name

    def claim(self, *, dry_run: bool) -> None:
        """Before anything is built: lock a resumed run's folder (real runs) and pick its checkpoint.

        The lock comes first, so a second resume of a running run is refused before it
        even reads a checkpoint the first one may be writing. Nothing is written here
        but the lock file: a broken checkpoint leaves the run folder exactly as it was.
        """
        if self.options.resume is None:
            if self.options.checkpoint or self.options.fallback_checkpoint:
                raise UsageError("--checkpoint and --fallback-checkpoint go with --resume RUN_DIR")
            return
        if self.child:  # started by rank 0's Lightning: told which checkpoint (launch.RESUME_FROM_ENV)
            return
        from ptycho_knobs.runtime import checkpoints
        from ptycho_knobs.runtime.build import CHECKPOINT_DIR

        assert self.run_dir is not None
        if not dry_run and self.ctx.is_rank_zero:  # torchrun's other ranks only read, as rank 0 does
            self.lock = runlock.acquire(self.run_dir)
        try:
            chosen, self.resume_note = checkpoints.choose(self.run_dir / CHECKPOINT_DIR, self.options.checkpoint,
                                                          self.options.fallback_checkpoint)
        except BaseException:
            self.release()
            raise
        self.resume_from = chosen.path

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def check_machine(self, run: RunConfig) -> None:
        """Refuse what cannot run here before anything heavy starts (located at run.yaml)."""
        from ptycho_knobs.runtime import machine

        machine.check(run, self.values(), self.table)

    def values(self) -> dict[str, Any]:
        """Knob name -> value, read through the generated dataclasses (validated by them)."""
        from ptycho_knobs.generated import execution_config

        assert self.run is not None
        configs = self.run.configs(execution_config)
        return {name: getattr(configs[home], name) for name, home in execution_config.KNOB_HOMES.items()}

    # -- phase 2: seed ---------------------------------------------------------------------

    def seed(self) -> int:
        """Seed python, numpy and torch (and dataloader workers), export PYTHONHASHSEED, pin torch's threads.

        PYTHONHASHSEED cannot change this interpreter's hashing; it is exported so that
        every process started from here (DDP ranks, loader workers) hashes the same way.
        The thread count is part of what a deterministic run's numbers depend on (threads.py).
        """
        import lightning

        from ptycho_knobs.runtime.build import strategy_name

        values = self.values()
        trainer = self.table.kwargs("Trainer", values)
        single = (strategy_name(values, self.table) == "auto" and self.ctx.world_size == 1
                  and not self.ctx.under_torchrun)
        self.threads = threads.pin(deterministic=bool(trainer["deterministic"]), single_process=single,
                                   recorded=self.recorded_threads)
        value = int(self.table.kwargs("seed_everything", values)["seed"])
        os.environ["PYTHONHASHSEED"] = str(value)
        return lightning.seed_everything(value, workers=True, verbose=False)  # ptycho-knobs: ignore[PK005] every run seeds its loader workers; the knob's value is printed by the harness itself

    # -- phase 3: instantiate --------------------------------------------------------------

    def instantiate(self) -> Built:
        """Data module, model, callbacks, strategy, loggers and Trainer, all real, nothing run."""
        import lightning

        from ptycho_knobs.runtime import build, builtin
        from ptycho_knobs.runtime.callbacks import RngState, RunStatus, StepGuard, StopCheckpoint
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
        # StopCheckpoint before RunStatus: "interrupted" is written once last.ckpt is saved
        extra = [StopCheckpoint(checkpoint_dir), RunStatus(self.run_dir, resume=self.resume_from is not None),
                 StepGuard(), RngState()]
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
        """Train. Rank 0 creates (or, resuming, locks) the run folder and writes the snapshot; ranks it launches reuse both."""
        from ptycho_knobs.runtime import builtin, signals

        built = self.built or self.instantiate()
        assert self.run is not None and self.run_dir is not None
        signals.reset()
        try:
            snapshot_path = self._prepare_run_dir()
            handed = {launch.SNAPSHOT_ENV: str(snapshot_path),
                      launch.RESUME_FROM_ENV: str(self.resume_from) if self.resume_from else None}
            old = {name: launch.set_env(name, value) for name, value in handed.items()}
            try:
                self._train(built)
            finally:
                for name, value in old.items():
                    launch.set_env(name, value)
            summary = None
            if built.trainer.is_global_zero:
                try:
                    if signals.requested() is not None:  # arrived during the last step: training is complete
                        raise signals.Terminated()
                    if built.inference is not None:
                        summary = builtin.report(built.model, built.datamodule, self.run_dir, built.inference)
                except signals.Terminated:
                    raise self._terminated_after_training(built) from None
        finally:
            self.release()
        checkpoint = built.callbacks.get("checkpoint")
        best = checkpoint.best_model_path if checkpoint is not None else None
        last = self.run_dir / "checkpoints" / "last.ckpt"
        return RunResult(self.run_dir, summary, best or None, last if last.is_file() else None)

    def _train(self, built: Built) -> None:
        """`Trainer.fit`, with its ways of stopping turned into the harness's errors and exit codes."""
        from ptycho_knobs.runtime import signals
        from ptycho_knobs.runtime.faults import SIGNAL_EXIT, NonFiniteLoss

        assert self.run is not None
        guard, stop = built.callbacks["StepGuard"], built.callbacks["StopCheckpoint"]
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
        except (SystemExit, signals.Terminated):
            if not stop.interrupted:
                self._undo_unstarted_resume(built)
                raise
            self._undo_unstarted_resume(built)
            if not built.trainer.is_global_zero:  # rank 0 saves last.ckpt and reports
                raise SystemExit(SIGNAL_EXIT[stop.signum]) from None
            raise self._stopped(built, stop) from None
        except BaseException as exc:
            self._undo_unstarted_resume(built)
            if self.resume_from is not None and isinstance(exc, Exception) and not stop.started:
                from ptycho_knobs.runtime.faults import CheckpointError

                # it loaded (claim checked), so Lightning could not fit it to this model or data
                first = (str(exc).strip().splitlines() or [""])[0]
                raise CheckpointError(f"{self.resume_from} could not be restored: {type(exc).__name__}: {first}\n"
                                      f"  nothing was changed; is it a checkpoint of this run?") from None
            raise

    def _stopped(self, built: Built, stop: Any) -> Exception:
        """The Interrupted error for Ctrl-C or SIGTERM: what was saved and how to continue."""
        from ptycho_knobs.runtime.faults import Interrupted

        how = "interrupted (Ctrl-C)" if stop.signum == signal.SIGINT else "stopped by SIGTERM"
        if not stop.started:
            kept = "; the run folder is as it was" if self.resume_from is not None else ""
            return Interrupted(f"{how} before training started; nothing was saved{kept}", stop.signum)
        trainer = built.trainer
        saved = f"saved {stop.saved}" if stop.saved else "no checkpoint could be saved"
        return Interrupted(
            f"{how} at epoch {trainer.current_epoch} (global step {trainer.global_step}); {saved}.\n"
            f"  continue with: ptycho-knobs train --resume {self.run_dir}", stop.signum)

    def _terminated_after_training(self, built: Built) -> Exception:
        from ptycho_knobs.runtime.faults import Interrupted

        return Interrupted(
            f"stopped by SIGTERM after training: the run finished ({built.trainer.current_epoch} epochs, checkpoints "
            f"saved), but its report was not written.\n  write it with: ptycho-knobs train --resume {self.run_dir}",
            signal.SIGTERM)

    def _undo_unstarted_resume(self, built: Built) -> None:
        """A resume that failed before training started leaves the run folder as it found it."""
        if self.resume_from is None or self.child or not self.ctx.is_rank_zero:
            return
        if built.callbacks["RunStatus"].started or not hasattr(self, "_resume_n"):
            return
        assert self.run_dir is not None
        (self.run_dir / f"resolved_config.resume-{self._resume_n}.json").unlink(missing_ok=True)
        logs = self.run_dir / f"resume-{self._resume_n}"
        if logs.is_dir() and not any(logs.iterdir()):
            logs.rmdir()

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

        runtime = {threads.RECORD_KEY: self.threads} if self.threads is not None else {}
        snap = Snapshot(self.run, self.run_name, self.registry.sha256, library_versions(), runtime)
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
        self.lock = runlock.acquire(self.run_dir)  # a --resume of this run waits until it ends
        return write_snapshot(self.run_dir, snap)

