"""--dry-run read-back: for every settable knob, where its value landed in the built objects.

The value is read from the objects themselves (`trainer.check_val_every_n_epoch`, the
EarlyStopping callback's `patience`, the DDP strategy's `_ddp_kwargs`, the loader's
`pin_memory`, the optimizer's param group), never from the config that built them, and
compared with the resolved value. A difference is a runtime parity failure: the knob
did not reach its target. One row per (knob, target); knobs without a target get one row.

Statuses: `ok`; `MISMATCH` (an error); `n/a` (the target does not exist in this run, e.g.
DDP knobs on one device, with the reason); `unrouted` (a user's model or data module does
not accept that knob by name; a warning, since their code owns the value).
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ptycho_knobs.runtime.harness import Built, Harness
from ptycho_knobs.runtime.routing import Route

OK, MISMATCH, NA, UNROUTED = "ok", "MISMATCH", "n/a", "unrouted"
_ACCELERATORS = {"CPUAccelerator": "cpu", "CUDAAccelerator": "gpu", "MPSAccelerator": "mps", "XLAAccelerator": "tpu"}


@dataclass(frozen=True)
class Row:
    knob: str
    value: Any
    source: str
    target: str | None
    readback: Any
    status: str
    note: str = ""


class _NotHere(Exception):
    """The target does not exist in this run; the message says why."""


def rows(harness: Harness) -> list[Row]:
    """Read every settable knob back from the harness's built (and materialized) objects."""
    assert harness.run is not None and harness.built is not None
    built, out = harness.built, []
    for knob in harness.registry.settable():
        resolved = harness.run.values[knob.name]
        routes = [r for r in harness.table.routes if r.knob is knob] or [None]
        for route in routes:
            out.append(_row(harness, built, knob.name, resolved.value, resolved.source, route))
    return out


def _row(harness: Harness, built: Built, name: str, value: Any, source: str, route: Route | None) -> Row:
    target = route.target.path if route else None
    if name in built.unrouted:
        return Row(name, value, source, target, None, UNROUTED, f"{built.unrouted[name]} does not accept {name}")
    try:
        readback, expected = _read(harness, built, name, value, route)
    except _NotHere as why:
        return Row(name, value, source, target, None, NA, str(why))
    status = OK if _same(readback, expected) else MISMATCH
    return Row(name, value, source, target, readback, status)


def _read(harness: Harness, built: Built, name: str, value: Any, route: Route | None) -> tuple[Any, Any]:
    """(value read back, value expected there) for one route."""
    if route is None:
        return _untargeted(harness, built, name, value)
    cls, attr = route.target.class_name, route.target.attr
    expected = route.value(value)
    reader = _READERS.get(cls)
    if reader is None:
        raise _NotHere(f"no reader for target class {cls}")
    return reader(harness, built, attr, expected, name)


def _trainer(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    import torch

    from ptycho_knobs.runtime.build import strategy_name

    t = built.trainer
    if attr == "accelerator":
        got = _ACCELERATORS.get(type(t.accelerator).__name__, type(t.accelerator).__name__)
        return got, got if expected == "auto" else expected
    if attr == "devices":
        return t.num_devices, expected
    if attr == "strategy":
        return _strategy_name(t.strategy), strategy_name(harness.values(), harness.table)
    if attr == "enable_checkpointing":
        return t.checkpoint_callback is not None, expected
    if attr == "enable_progress_bar":
        return t.progress_bar_callback is not None, expected
    if attr == "default_root_dir":
        return str(Path(t.default_root_dir).parent), str(Path(expected).resolve())
    if attr == "deterministic":
        return torch.are_deterministic_algorithms_enabled(), expected
    if attr == "logger":
        kinds = [type(lg).__name__ for lg in t.loggers]
        extra = [k for k in ("TensorBoardLogger", "MLFlowLogger") if k in kinds]
        got = {"TensorBoardLogger": "tensorboard", "MLFlowLogger": "mlflow"}[extra[0]] if extra else "csv"
        return got, "csv" if expected in (None, "csv") else expected
    if attr == "precision":
        return t.precision_plugin.precision, expected
    return getattr(t, attr), expected


def _strategy_name(strategy: Any) -> str:
    from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

    if isinstance(strategy, DDPStrategy):
        return "ddp_spawn" if strategy._start_method == "spawn" else "ddp"
    if isinstance(strategy, SingleDeviceStrategy):
        return "auto"
    return type(strategy).__name__


def _ddp(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    from lightning.pytorch.strategies import DDPStrategy

    s = built.trainer.strategy
    if not isinstance(s, DDPStrategy):
        raise _NotHere(f"strategy is {_strategy_name(s)}, not DDP")
    if attr == "process_group_backend":
        return s._process_group_backend, expected
    return s._ddp_kwargs.get(attr), expected


def _loader(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    from torch.utils.data import RandomSampler

    loader = built.train_loader
    if loader is None:
        raise _NotHere("loaders not built")
    if attr == "shuffle":
        sampler = loader.sampler
        return isinstance(sampler, RandomSampler) or bool(getattr(sampler, "shuffle", False)), expected
    return getattr(loader, attr), expected


def _datamodule(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    return getattr(built.datamodule, attr), expected


def _workload(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    from ptycho_knobs.runtime import builtin

    if not hasattr(built.datamodule, "spec"):
        raise _NotHere(f"{type(built.datamodule).__name__} has no simulation spec")
    return builtin.workload_value(built.datamodule, attr), expected


def _module(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    hparams = built.model.hparams
    if attr not in hparams:
        raise _NotHere(f"{type(built.model).__name__} has no hparam {attr}")
    return hparams[attr], expected


def _optimizer_and_scheduler(built: Built) -> tuple[Any, Any]:
    import torch

    conf = built.optimizers
    if conf is None:
        raise _NotHere("optimizers not built")
    if isinstance(conf, dict):
        sched = conf.get("lr_scheduler")
        return conf["optimizer"], sched["scheduler"] if isinstance(sched, dict) else sched
    if isinstance(conf, torch.optim.Optimizer):
        return conf, None
    if isinstance(conf, (list, tuple)) and conf:
        first = conf[0]
        return (first[0] if isinstance(first, (list, tuple)) else first), None
    raise _NotHere(f"configure_optimizers returned {type(conf).__name__}")


def _optimizer(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    optimizer, _ = _optimizer_and_scheduler(built)
    group = optimizer.param_groups[0]
    return group.get("initial_" + attr, group[attr]), expected


def _scheduler(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    from ptycho_knobs.runtime.builtin import SCHEDULER_NAMES

    _, scheduler = _optimizer_and_scheduler(built)
    if attr == "type":
        return SCHEDULER_NAMES.get(type(scheduler).__name__ if scheduler is not None else None, type(scheduler).__name__), expected
    lam = getattr(scheduler, "lr_lambdas", [None])[0]
    if isinstance(lam, functools.partial) and attr in lam.keywords:
        return lam.keywords[attr], expected
    if attr in built.model.hparams:
        return built.model.hparams[attr], expected
    raise _NotHere(f"scheduler {type(scheduler).__name__} does not use {attr}")


def _callback(role: str) -> Any:
    def read(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
        cb = built.callbacks.get(role)
        if cb is None:
            raise _NotHere("checkpointing is off (enable_checkpointing false)")
        return getattr(cb, attr), expected

    return read


def _mlflow(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    logger = next((lg for lg in built.loggers if type(lg).__name__ == "MLFlowLogger"), None)
    if logger is None:
        raise _NotHere("logger_backend is not mlflow")
    if attr == "tags":
        return logger.tags.get(name), str(expected)
    return getattr(logger, "_" + attr), expected


def _inference(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    if built.inference is None:
        raise _NotHere("custom model: the harness runs no reconstruction")
    return built.inference.get(attr), expected


def _seed(harness: Harness, built: Built, attr: str, expected: Any, name: str) -> tuple[Any, Any]:
    pl_seed, hash_seed = os.environ.get("PL_GLOBAL_SEED"), os.environ.get("PYTHONHASHSEED")
    if pl_seed is None or hash_seed != pl_seed:
        return f"PL_GLOBAL_SEED={pl_seed}, PYTHONHASHSEED={hash_seed}", expected
    return int(pl_seed), expected


def _untargeted(harness: Harness, built: Built, name: str, value: Any) -> tuple[Any, Any]:
    """A deprecated knob lands through the knobs it sets: read those back instead."""
    from ptycho_knobs.runtime.resolve import deprecated_sets

    knob = harness.registry.get(name)
    if knob.deprecated is None:
        raise _NotHere("no target in the registry")
    assert harness.run is not None
    if harness.run.values[name].source == "default":
        raise _NotHere(f"deprecated; sets {', '.join(o for o, _ in knob.deprecated.sets)} when given")
    sets = deprecated_sets(knob, value)
    explicit = {o for o in sets if "(deprecated" not in harness.run.values[o].source}
    got = {o: harness.run.values[o].value for o in sets if o not in explicit}
    return got, {o: v for o, v in sets.items() if o not in explicit}


_READERS = {
    "Trainer": _trainer,
    "DDPStrategy": _ddp,
    "DataLoader": _loader,
    "LightningDataModule": _datamodule,
    "workload": _workload,
    "LightningModule": _module,
    "optimizer": _optimizer,
    "lr_scheduler": _scheduler,
    "EarlyStopping": _callback("early_stopping"),
    "ModelCheckpoint": _callback("checkpoint"),
    "MLFlowLogger": _mlflow,
    "inference": _inference,
    "seed_everything": _seed,
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


def mismatches(table: list[Row]) -> list[Row]:
    return [r for r in table if r.status == MISMATCH]


def to_json(table: list[Row]) -> str:
    return json.dumps([asdict(r) for r in table], indent=2, default=str) + "\n"


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_table(table: list[Row]) -> str:
    header = ("knob", "value", "source", "target", "readback", "status")
    body = [(r.knob, _show(r.value), r.source, r.target or "-",
             _show(r.readback) if r.status in (OK, MISMATCH) else f"({r.note})", r.status) for r in table]
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in body]
    return "\n".join(lines) + "\n"
