"""One `Target` per generated file: where its text comes from and how it is checked.

A post-check runs on the rendered text before anything is written: Python must compile,
JSON must parse. A failing check is a bug in a template (or a registry value no filter
anticipated), reported as an error naming the file, never written to disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from ptycho_knobs.codegen.header import HeaderStyle
from ptycho_knobs.errors import KnobsError


class GenerateError(KnobsError):
    """A rendered file failed its post-check, or output could not be written."""


def check_python(filename: str, text: str) -> None:
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise GenerateError(f"generated {filename} does not compile: {exc.msg} at line {exc.lineno}") from None


def check_json(filename: str, text: str) -> None:
    try:
        json.loads(text)
    except ValueError as exc:
        raise GenerateError(f"generated {filename} is not valid JSON: {exc}") from None


def check_nothing(filename: str, text: str) -> None:
    return None


@dataclass(frozen=True)
class Target:
    """One output file."""

    filename: str  # a bare file name inside the output folder
    template: str  # jinja template name, or the renderer's name for code-built files
    style: HeaderStyle
    check: Callable[[str, str], None]
    renderer: Callable[[], str] | None = None  # code-built body instead of a template


def _rules_reference() -> Callable[[], str] | None:
    """The audit rules reference renderer, once the audit package provides it."""
    try:
        from ptycho_knobs.audit.docs import render_rules_reference
    except ImportError:
        return None
    return render_rules_reference


TEMPLATE_TARGETS = (
    Target("execution_config.py", "execution_config.py.j2", HeaderStyle.PYTHON, check_python),
    Target("cli.py", "cli.py.j2", HeaderStyle.PYTHON, check_python),
    Target("config_bridge.py", "config_bridge.py.j2", HeaderStyle.PYTHON, check_python),
    Target("spec_execution_config.md", "spec_execution_config.md.j2", HeaderStyle.MARKDOWN, check_nothing),
    Target("run.schema.json", "run.schema.json.j2", HeaderStyle.JSON, check_json),
)

RULES_FILENAME = "rules.md"


def all_targets() -> tuple[tuple[Target, ...], tuple[str, ...]]:
    """(targets to render, file names that are known but skipped this run)."""
    renderer = _rules_reference()
    if renderer is None:
        return TEMPLATE_TARGETS, (RULES_FILENAME,)
    rules = Target(RULES_FILENAME, "ptycho_knobs.audit.docs.render_rules_reference", HeaderStyle.MARKDOWN,
                   check_nothing, renderer)
    return (*TEMPLATE_TARGETS, rules), ()
