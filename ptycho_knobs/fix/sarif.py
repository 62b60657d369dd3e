"""SARIF `fixes` for findings that carry edits, computed by the same engine as `fix`.

Code-scanning UIs offer a result's fix when it has `artifactChanges` with `replacements`
(a `deletedRegion` and its `insertedContent`); the text is exactly what `ptycho-knobs fix`
would write. Only findings with edits get here, so an audit without edits never imports
libcst.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptycho_knobs.audit.findings import Finding


def _registry() -> Any:
    """The registry of the running command, or the nearest one; None when there is none."""
    import click

    from ptycho_knobs.errors import KnobsError

    try:
        if click.get_current_context(silent=True) is not None:
            from ptycho_knobs.cli_support import app_context

            return app_context().registry()
        from ptycho_knobs.locate import find_registry
        from ptycho_knobs.registry import load_registry

        found = find_registry()
        return load_registry(found) if found else None
    except KnobsError:
        return None


def edit_fixes(findings: list[Finding], registry: Any = None) -> dict[int, list[dict]]:
    """SARIF `fixes` by index in `findings`, for each finding `fix` can fix."""
    wanted = [(i, f) for i, f in enumerate(findings) if f.edits]
    if not wanted:
        return {}
    registry = registry if registry is not None else _registry()
    if registry is None:
        return {}
    from ptycho_knobs.fix.engine import plan_fixes

    files: dict[str, tuple[Path, bytes]] = {}
    for _, f in wanted:
        for e in f.edits:
            if e.path in files:
                continue
            path = Path(e.path)
            try:
                files[e.path] = (path.absolute(), path.read_bytes())
            except OSError:
                continue
    roots = sorted({p.parent for p, _ in files.values()})
    plan = plan_fixes([f for _, f in wanted], registry, files, roots)
    out: dict[int, list[dict]] = {}
    index = {id(f): i for i, f in wanted}
    for f, changes in plan.fixed:
        by_path: dict[str, list[dict]] = {}
        for c in changes:
            by_path.setdefault(c.path, []).append({
                "deletedRegion": {"startLine": c.at.line, "startColumn": c.at.col,
                                  "endLine": c.at.end_line, "endColumn": c.at.end_col},
                "insertedContent": {"text": c.new},
            })
        description = "; ".join(dict.fromkeys(c.description for c in changes))
        out[index[id(f)]] = [{
            "description": {"text": description},
            "artifactChanges": [{"artifactLocation": {"uri": path}, "replacements": reps}
                                for path, reps in by_path.items()],
        }]
    return out
