"""The resolved config written next to the checkpoints, and read back by --resume and DDP ranks.

A run folder holds `resolved_config.json` (the `RunConfig` with every value's source, the
registry sha256, the generated code's sha256, the library versions and how it ran: the
pinned torch thread count) and `config.yaml`
(the same values as YAML with the source of each as a comment, for people). Both are
written once, atomically, by rank 0; every other rank and every resume loads the JSON,
so no process ever re-resolves a run that has started.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ptycho_knobs.atomic import write_text
from ptycho_knobs.errors import UsageError
from ptycho_knobs.runtime.resolve import RunConfig

SNAPSHOT_JSON = "resolved_config.json"
SNAPSHOT_YAML = "config.yaml"
_DISTRIBUTIONS = ("ptycho-knobs", "torch", "lightning", "numpy", "mlflow-skinny", "tensorboard")


@dataclass(frozen=True)
class Snapshot:
    """A saved run: its config plus what it was resolved against."""

    run: RunConfig
    run_name: str
    registry_sha256: str
    versions: dict[str, str]
    runtime: dict[str, Any] = field(default_factory=dict)  # how it ran, e.g. torch_threads (threads.py)

    def to_json(self) -> str:
        body = {
            "run_name": self.run_name,
            "registry_sha256": self.registry_sha256,
            "versions": self.versions,
            "runtime": self.runtime,
            "config": self.run.to_dict(),
        }
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                run=RunConfig.from_dict(body["config"]),
                run_name=body["run_name"],
                registry_sha256=body["registry_sha256"],
                versions=body["versions"],
                runtime=body.get("runtime", {}),
            )
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"cannot read the saved run config {path}: {exc}") from None


def library_versions() -> dict[str, str]:
    """Installed versions, read from package metadata (importing nothing)."""
    found = {"python": platform.python_version()}
    for dist in _DISTRIBUTIONS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def config_yaml(run: RunConfig, *, provenance: bool, header: str = "") -> str:
    """The resolved config as run.yaml-compatible YAML; with provenance, a source comment per line."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key in ("model", "data"):
        if getattr(run, key) is not None:
            lines.append(f"{key}: {_scalar(getattr(run, key))}")
    for key in ("model_args", "data_args"):
        if getattr(run, key):
            lines.append(yaml.safe_dump({key: getattr(run, key)}, sort_keys=False).rstrip())
    width = max((len(n) for n in run.values), default=0)
    for name, resolved in run.values.items():
        text = f"{name}: {_scalar(resolved.value)}"
        if provenance:
            text = f"{text:<{width + 24}}  # {resolved.source}"
        lines.append(text)
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").removesuffix("...").strip()


def write(run_dir: Path, snapshot: Snapshot, *, name: str = SNAPSHOT_JSON) -> Path:
    """Write the JSON snapshot (and, for the first one, config.yaml). Returns the JSON path."""
    header = (
        f"ptycho-knobs run {snapshot.run_name}: resolved config (value  # source)\n"
        f"registry sha256 {snapshot.registry_sha256}\n"
        + ", ".join(f"{k} {v}" for k, v in snapshot.versions.items())
    )
    if name == SNAPSHOT_JSON:
        write_text(run_dir / SNAPSHOT_YAML, config_yaml(snapshot.run, provenance=True, header=header))
    path = run_dir / name
    write_text(path, snapshot.to_json())
    return path
