"""A scratch project as a user's working directory, shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# Settings of the developer's shell that would point a test at another registry or cache.
OUTSIDE_SETTINGS = ("PTYCHO_KNOBS_REGISTRY", "PTYCHO_KNOBS_DEBUG_FASTPATH", "XDG_CACHE_HOME")


def enter_project(monkeypatch: pytest.MonkeyPatch, root: Path, cache: Path, files: dict[str, str] | None = None,
                  registry: str | None = None) -> Path:
    """`root` as the working directory, `files` (and `registry` as knob_registry.yaml) written
    into it, `cache` as the only cache, and nothing of the developer's own settings."""
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    if registry is not None:
        (root / "knob_registry.yaml").write_text(registry)
    monkeypatch.chdir(root)
    for name in OUTSIDE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PTYCHO_KNOBS_CACHE_DIR", str(cache))
    return root
