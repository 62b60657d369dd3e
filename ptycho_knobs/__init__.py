"""ptycho-knobs: one registry for PtychoPINN's PyTorch execution knobs.

The registry (`knob_registry.yaml`) is the single source of truth; `generate` derives the
dataclass, CLI, bridge, spec section and JSON Schema from it, `audit` checks real source
against it, and `train` runs a real Lightning job from it.
"""

from ptycho_knobs.ktypes import Knob
from ptycho_knobs.registry import Registry, find_registry, load_registry

__version__ = "0.1.0"

__all__ = ["Knob", "Registry", "__version__", "find_registry", "load_registry"]
