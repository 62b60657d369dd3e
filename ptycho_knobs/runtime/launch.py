"""Who launched this process and which run folder it belongs to.

Three launch modes share one rule: the config is resolved once and every rank uses the
same snapshot.
- plain `ptycho-knobs train`: rank 0 resolves, writes the snapshot, and, before fit, puts
  its path in `PTYCHO_KNOBS_RUN_SNAPSHOT`; Lightning's subprocess launcher re-runs the
  command line for the other ranks with that variable inherited, and they load it.
- `torchrun`: every rank is started by the launcher with RANK / LOCAL_RANK / WORLD_SIZE
  (read through the registry's env knobs `rank` and `local_rank`); the run folder name
  must agree across ranks, so it comes from `--run-name` or TORCHELASTIC_RUN_ID, and
  ranks above 0 wait for rank 0's snapshot.
- `--resume`: the snapshot of the run folder being continued; the ranks Lightning starts
  also get the checkpoint rank 0 chose (`PTYCHO_KNOBS_RESUME_CHECKPOINT`), so every rank
  restores the same one.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ptycho_knobs.errors import UsageError
from ptycho_knobs.registry import Registry
from ptycho_knobs.typelang import coerce_text

SNAPSHOT_ENV = "PTYCHO_KNOBS_RUN_SNAPSHOT"
RESUME_FROM_ENV = "PTYCHO_KNOBS_RESUME_CHECKPOINT"  # the checkpoint rank 0 resumes from, for the ranks it starts
TORCHRUN_ID_ENV = "TORCHELASTIC_RUN_ID"
WORLD_SIZE_ENV = "WORLD_SIZE"


@dataclass(frozen=True)
class LaunchContext:
    """This process's place in the job."""

    rank: int
    local_rank: int
    world_size: int
    snapshot: Path | None  # set for ranks started by Lightning's launcher
    torchrun_id: str | None
    resume_from: Path | None = None  # with `snapshot`: the checkpoint rank 0 resumes from

    @property
    def is_rank_zero(self) -> bool:
        return self.rank == 0 and self.local_rank == 0

    @property
    def under_torchrun(self) -> bool:
        return self.torchrun_id is not None and self.snapshot is None


def env_knob(registry: Registry, name: str, env: Mapping[str, str]) -> object:
    """A read-only env knob's value: the first of its sources' variables that is set, else its default."""
    knob = registry.get(name)
    for source in knob.sources:
        if source.env and source.env in env:
            try:
                return coerce_text(knob.type, env[source.env])
            except ValueError as exc:
                raise UsageError(f"environment variable {source.env}={env[source.env]!r}: {exc}") from None
    return knob.default


def context(registry: Registry, env: Mapping[str, str]) -> LaunchContext:
    snapshot, resume_from = env.get(SNAPSHOT_ENV), env.get(RESUME_FROM_ENV)
    return LaunchContext(
        rank=int(env_knob(registry, "rank", env)),  # type: ignore[arg-type]
        local_rank=int(env_knob(registry, "local_rank", env)),  # type: ignore[arg-type]
        world_size=int(env.get(WORLD_SIZE_ENV, "1")),
        snapshot=Path(snapshot) if snapshot else None,
        torchrun_id=env.get(TORCHRUN_ID_ENV),
        resume_from=Path(resume_from) if snapshot and resume_from else None,
    )


def run_name(ctx: LaunchContext, given: str | None) -> str:
    """The run folder's name: given, agreed across torchrun ranks, or timestamp + short id."""
    if given:
        if "/" in given or given in (".", ".."):
            raise UsageError(f"--run-name {given!r} must be a plain folder name")
        return given
    if ctx.under_torchrun and ctx.world_size > 1:
        if ctx.torchrun_id and ctx.torchrun_id != "none":
            return f"torchrun-{ctx.torchrun_id}"
        raise UsageError(
            "under torchrun every rank must agree on the run folder: pass --run-name NAME, "
            "or launch with --standalone or --rdzv-id so TORCHELASTIC_RUN_ID is set"
        )
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def wait_for(path: Path, timeout_s: float) -> None:
    """Block until rank 0 has written `path` (ranks above 0 under torchrun)."""
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        if time.monotonic() > deadline:
            raise UsageError(f"rank 0 did not write {path} within {timeout_s:.0f}s; see rank 0's error")
        time.sleep(0.2)


def latest_run(output_dir: Path, marker: str) -> Path:
    """The most recently started run folder under `output_dir` (for a bare --resume)."""
    runs = sorted(output_dir.glob(f"*/{marker}"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise UsageError(f"--resume: no run folder with {marker} under {output_dir}; pass --resume RUN_DIR")
    return runs[-1].parent


def set_env(name: str, value: str | None) -> str | None:
    """Set (or with None, remove) an environment variable; returns the old value."""
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    return old
