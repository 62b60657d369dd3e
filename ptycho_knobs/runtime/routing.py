"""The registry's targets as a routing table: which resolved value goes to which keyword.

The harness never names a knob value itself. It asks this module for "the keyword
arguments of EarlyStopping" and gets `{target attr: resolved value}` for every settable
knob whose target is `EarlyStopping.*`, with inverted bools flipped. A knob added to the
registry with a `Trainer.*` target therefore reaches the Trainer without touching the
harness, and `readback.py` walks the very same table backwards. Pure Python: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ptycho_knobs.ktypes import Knob, Target
from ptycho_knobs.registry import Registry

#: Target classes that are real library classes (drift inspects these; the harness builds them).
LIBRARY_CLASSES = ("Trainer", "DDPStrategy", "DataLoader", "EarlyStopping", "ModelCheckpoint", "MLFlowLogger")

#: Targets whose values go to the data module (by knob name, when its __init__ accepts them).
DATA_CLASSES = ("DataLoader", "LightningDataModule", "workload")

#: Targets whose values go to the LightningModule (by knob name, when its __init__ accepts them).
MODEL_CLASSES = ("LightningModule", "optimizer", "lr_scheduler")

#: Trainer arguments the harness computes from knobs instead of passing the value through:
#: the strategy (None means auto or ddp by device count), the logger (a backend name becomes
#: logger objects) and default_root_dir (output_dir plus the run name).
TRAINER_DERIVED = ("strategy", "logger", "default_root_dir")


@dataclass(frozen=True)
class Route:
    """One knob landing on one target."""

    knob: Knob
    target: Target

    def value(self, resolved: Any) -> Any:
        """The value the target receives: the resolved value, flipped for inverted bools."""
        return (not resolved) if self.target.invert else resolved


class RoutingTable:
    """Every (knob, target) pair of the settable knobs, queried by target class."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.routes = tuple(Route(k, t) for k in registry.settable() for t in k.targets)

    def for_class(self, class_name: str) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.target.class_name == class_name)

    def kwargs(self, class_name: str, values: dict[str, Any], *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """`{attr: value}` for every knob targeting `class_name`, except the attrs in `skip`."""
        out: dict[str, Any] = {}
        for route in self.for_class(class_name):
            if route.target.attr not in skip:
                out[route.target.attr] = route.value(values[route.knob.name])
        return out

    def knob_names(self, class_names: tuple[str, ...]) -> tuple[str, ...]:
        """Names of the knobs with at least one target in `class_names` (registry order)."""
        names = [r.knob.name for r in self.routes if r.target.class_name in class_names]
        return tuple(dict.fromkeys(names))

    def grouped(self, class_name: str, attr: str, values: dict[str, Any]) -> dict[str, Any]:
        """`{knob name: value}` for knobs sharing one target (several knobs -> MLFlowLogger.tags)."""
        return {r.knob.name: r.value(values[r.knob.name]) for r in self.for_class(class_name) if r.target.attr == attr}

    def knob_for(self, path: str) -> Knob | None:
        return next((r.knob for r in self.routes if r.target.path == path), None)
