"""ptycho-knobs: one registry for PtychoPINN's PyTorch execution knobs.

The registry (`knob_registry.yaml`) is the single source of truth; `generate` derives the
dataclasses, CLI, bridge, spec section and JSON Schema from it, `audit` checks real source
against it, and `train` runs a real Lightning job from it.

The public names are imported lazily so that `ptycho-knobs --help` does not load YAML.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Knob", "Registry", "__version__", "find_registry", "load_registry"]


def __getattr__(name: str) -> object:
    if name == "Knob":
        from ptycho_knobs.ktypes import Knob

        return Knob
    if name in ("Registry", "find_registry", "load_registry"):
        from ptycho_knobs import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'ptycho_knobs' has no attribute {name!r}")
