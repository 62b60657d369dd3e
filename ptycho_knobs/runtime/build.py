"""Build the real Lightning objects of a run from resolved knob values and the routing table.

Each builder takes `values` (knob name -> value, read from the generated dataclasses) and
the `RoutingTable`; keyword arguments come from the registry's targets, never from
literals here. What the harness computes itself is limited to what no single knob holds:
where the run folder is, which strategy `strategy: null` means, and which logger objects a
backend name stands for.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger
from lightning.pytorch.strategies import StrategyRegistry
from lightning.pytorch.utilities.model_helpers import is_overridden

from ptycho_knobs.runtime.faults import HarnessError
from ptycho_knobs.runtime.resolve import RunConfig
from ptycho_knobs.runtime.routing import TRAINER_DERIVED, RoutingTable

CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
MLRUNS_DIR = "mlruns"
#: mlflow 3 refuses the plain-file tracking store unless this is set; we keep runs local.
MLFLOW_FILE_STORE_ENV = "MLFLOW_ALLOW_FILE_STORE"
DDP_STRATEGIES = ("ddp", "ddp_spawn")
_LIBRARY_ROOTS = ("lightning", "pytorch_lightning", "torch", "builtins")


def import_class(run: RunConfig, key: str, base: type) -> type | None:
    """The class named by run.yaml `model:` / `data:`; an error at its line when it does not import.

    The module is looked up on sys.path, then in run.yaml's own folder (appended, so it
    never shadows an installed module): a config and the module beside it work from
    any working folder, as `examples/custom_model.yaml` does from the repository root.
    """
    path = getattr(run, key)
    if path is None:
        return None
    module_name, _, attr = path.partition(":")
    if run.config_path is not None:  # a module beside run.yaml is found from any working folder
        folder = str(Path(run.config_path).resolve().parent)
        if folder not in sys.path:
            sys.path.append(folder)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's path or module
        raise run.error(key, f"{key}: cannot import {path!r}: {type(exc).__name__}: {exc}",
                        "check the module is on PYTHONPATH or beside run.yaml, and the class name") from None
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise run.error(key, f"{key}: {path!r} is not a {base.__name__} subclass")
    return obj


def accepted_names(factory: Callable[..., Any]) -> set[str]:
    """Keyword names a constructor accepts, following `**kwargs` up to the first library class."""
    if not isinstance(factory, type):
        params = inspect.signature(factory).parameters.values()
        return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    names: set[str] = set()
    for klass in factory.__mro__:
        if klass.__module__.split(".")[0] in _LIBRARY_ROOTS:
            break
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def split_accepted(factory: Callable[..., Any], candidates: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(knobs the constructor accepts by name, names it does not)."""
    names = accepted_names(factory)
    return {k: v for k, v in candidates.items() if k in names}, [k for k in candidates if k not in names]


def merge_args(run: RunConfig, key: str, knob_kwargs: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    clash = sorted(set(knob_kwargs) & set(extra))
    if clash:
        raise run.error(key, f"{key} sets {', '.join(clash)}, which are knobs: set them as knobs instead")
    return {**knob_kwargs, **extra}


def construct(run: RunConfig, key: str, factory: Callable[..., Any], kwargs: dict[str, Any], name: str | None = None) -> Any:
    """Call a model or data-module constructor with the knobs and `key` (model_args / data_args).

    A `ValueError` or `TypeError` raised while constructing means the arguments were
    rejected (a wrong value, an unknown keyword), so it is reported in run.yaml with the
    constructor's own message rather than as a traceback: at the rejected argument when
    the error names one of `key`'s entries (the workload's errors carry `.argument`),
    else at `key` itself.
    """
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as exc:
        name = name or getattr(factory, "__qualname__", repr(factory))
        where = _rejected_argument(run, key, exc)
        raise run.error(where, f"{name} rejected its arguments: {exc}",
                        f"fix {key} (or the knobs passed to it: `ptycho-knobs train --dry-run` lists them)") from None


def _rejected_argument(run: RunConfig, key: str, exc: Exception) -> str:
    """`key.arg` for the run.yaml entry the error is about, when it can tell; else `key`."""
    given = [k.split(".", 1)[1] for k in run.positions if k.startswith(key + ".")]
    named = getattr(exc, "argument", None)
    if named in given:
        return f"{key}.{named}"
    text = str(exc)
    mentioned = [arg for arg in given if re.search(rf"(?<![\w.]){re.escape(arg)}(?![\w])", text)]
    return f"{key}.{mentioned[0]}" if len(mentioned) == 1 else key


def inject_optimizers(model: lightning.LightningModule, build: Callable[..., Any], kwargs: dict[str, Any]) -> bool:
    """Give a model without `configure_optimizers` one from the knobs (LightningCLI does the same)."""
    if is_overridden("configure_optimizers", model, lightning.LightningModule):
        return False

    def configure_optimizers(self: lightning.LightningModule) -> Any:
        return build(self.parameters(), **kwargs)

    model.configure_optimizers = types.MethodType(configure_optimizers, model)  # type: ignore[method-assign]
    return True


def callbacks(values: dict[str, Any], table: RoutingTable, run_dir: Path) -> dict[str, lightning.Callback]:
    """ModelCheckpoint (only when checkpointing is on) and EarlyStopping, from their targets."""
    made: dict[str, lightning.Callback] = {}
    if values[table.registry.get("enable_checkpointing").name]:
        made["checkpoint"] = ModelCheckpoint(dirpath=run_dir / CHECKPOINT_DIR, **table.kwargs("ModelCheckpoint", values))  # ptycho-knobs: ignore[PK007] keywords routed from registry targets
    made["early_stopping"] = EarlyStopping(**table.kwargs("EarlyStopping", values))  # ptycho-knobs: ignore[PK007] keywords routed from registry targets
    return made


def strategy_name(values: dict[str, Any], table: RoutingTable) -> str:
    """`strategy: null` means auto for one device on one node, ddp otherwise."""
    trainer = table.kwargs("Trainer", values)
    if trainer["strategy"] is not None:
        return str(trainer["strategy"])
    return "auto" if trainer["devices"] == 1 and trainer["num_nodes"] == 1 else "ddp"


def strategy(name: str, values: dict[str, Any], table: RoutingTable) -> Any:
    """A real DDPStrategy carrying the DDP knobs for ddp / ddp_spawn; the name otherwise."""
    if name not in DDP_STRATEGIES:
        return name
    entry = StrategyRegistry[name]
    return entry["strategy"](**{**entry["init_params"], **table.kwargs("DDPStrategy", values)})


def loggers(values: dict[str, Any], table: RoutingTable, run_dir: Path, run_name: str,
            csv_version: str = "") -> list[Logger]:
    """CSV always (metrics.csv in the run folder, or in resume-N/ for a resume), plus the backend's logger."""
    # The run folder already holds our config files; Lightning would warn that it "will
    # delete previous log files", which is untrue for a fresh folder and alarming.
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    made: list[Logger] = [CSVLogger(save_dir=run_dir, name="", version=csv_version)]
    backend = table.kwargs("Trainer", values)["logger"]
    if backend == "tensorboard":
        made.append(TensorBoardLogger(save_dir=run_dir, name=TENSORBOARD_DIR, version=""))
    elif backend == "mlflow":
        os.environ.setdefault(MLFLOW_FILE_STORE_ENV, "true")
        output_dir = run_dir.parent
        tags = {k: str(v) for k, v in table.grouped("MLFlowLogger", "tags", values).items()}
        made.append(MLFlowLogger(**table.kwargs("MLFlowLogger", values, skip=("tags",)), tags=tags,  # ptycho-knobs: ignore[PK007] keywords routed from registry targets
                                 run_name=run_name, tracking_uri=f"file:{output_dir / MLRUNS_DIR}"))
    return made


def trainer(values: dict[str, Any], table: RoutingTable, run_dir: Path, strategy_obj: Any,
            callback_list: list[lightning.Callback], logger_list: list[Logger]) -> lightning.Trainer:
    kwargs = table.kwargs("Trainer", values, skip=TRAINER_DERIVED)
    try:
        return lightning.Trainer(**kwargs, strategy=strategy_obj, logger=logger_list, callbacks=callback_list,  # ptycho-knobs: ignore[PK007] keywords routed from registry targets
                                 default_root_dir=run_dir)
    except Exception as exc:  # noqa: BLE001 - Lightning raises several types for bad combinations
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise HarnessError(f"Lightning rejected the Trainer arguments: {exc}\n  Trainer({shown})") from None
