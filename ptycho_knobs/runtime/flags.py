"""Knob flags of `train`, parsed by the generated argparse code.

`train` is a click command, but its knob flags come from `generated/cli.py`
(`add_knob_arguments(..., suppress_defaults=True)`), so the flags the harness accepts are
exactly the ones the registry generates, and only the flags actually given reach the
resolver (a default here would hide run.yaml). Unknown flags are a usage error with the
nearest known flags.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any

from ptycho_knobs.errors import UsageError


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` instead of printing usage and exiting."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(message)


def knob_parser() -> argparse.ArgumentParser:
    from ptycho_knobs.generated.cli import add_knob_arguments

    parser = _Parser(prog="ptycho-knobs train", add_help=False, allow_abbrev=False)
    add_knob_arguments(parser, suppress_defaults=True)
    return parser


def parse_knob_flags(args: Sequence[str], other_flags: Sequence[str] = ()) -> dict[str, Any]:
    """`{knob name: value}` for the knob flags in `args`; anything else is a `UsageError`.

    `other_flags` are train's own options, offered as suggestions too.
    """
    from ptycho_knobs.generated.cli import explicit_knob_values

    parser = knob_parser()
    namespace, rest = parser.parse_known_args(list(args))
    if rest:
        known = [s for a in parser._actions for s in a.option_strings] + list(other_flags)
        bad = rest[0]
        flag = bad.split("=", 1)[0]
        if not flag.startswith("-"):
            raise UsageError(f"unexpected argument {bad!r} (knob values go after their flag, e.g. --epochs 5)")
        near = difflib.get_close_matches(flag, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(near)}?" if near else "; see `ptycho-knobs train --help`"
        raise UsageError(f"unknown option {flag}{hint}")
    return explicit_knob_values(namespace)


def knob_help() -> str:
    """The knob flags' help, grouped by category, for `ptycho-knobs train --help`."""
    parser = knob_parser()
    formatter = parser._get_formatter()
    for group in parser._action_groups:
        if not group._group_actions:
            continue
        formatter.start_section(group.title)
        formatter.add_arguments(group._group_actions)
        formatter.end_section()
    return formatter.format_help()
