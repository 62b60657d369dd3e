"""Hypothesis strategies for knob values, shared by the generated-code tests."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from ptycho_knobs.ktypes import Knob
from ptycho_knobs.typelang import LiteralOf, OptionalOf, base_scalar


def _number_bounds(knob: Knob) -> dict[str, Any]:
    c = knob.constraints
    return {"min": c.min, "max": c.max, "xmin": c.exclusive_min, "xmax": c.exclusive_max}


def valid_values(knob: Knob) -> st.SearchStrategy[Any]:
    """Values that satisfy the knob's type and constraints (rules are checked by the caller)."""
    c = knob.constraints
    base = base_scalar(knob.type)
    if c.choices is not None:
        strategy: st.SearchStrategy[Any] = st.sampled_from(c.choices)
    elif isinstance(base, LiteralOf):
        strategy = st.sampled_from(base.values)
    elif base.name == "bool":
        strategy = st.booleans()
    elif base.name == "int":
        b = _number_bounds(knob)
        lo = [math.ceil(b["min"])] if b["min"] is not None else []
        lo += [math.floor(b["xmin"]) + 1] if b["xmin"] is not None else []
        hi = [math.floor(b["max"])] if b["max"] is not None else []
        hi += [math.ceil(b["xmax"]) - 1] if b["xmax"] is not None else []
        strategy = st.integers(min_value=max(lo) if lo else -(10**6), max_value=min(hi) if hi else 10**6)
    elif base.name == "float":
        b = _number_bounds(knob)
        kwargs: dict[str, Any] = {"allow_nan": False, "allow_infinity": False}
        if b["min"] is not None:
            kwargs["min_value"] = float(b["min"])
        if b["xmin"] is not None:
            kwargs.update(min_value=float(b["xmin"]), exclude_min=True)
        if b["max"] is not None:
            kwargs["max_value"] = float(b["max"])
        if b["xmax"] is not None:
            kwargs.update(max_value=float(b["xmax"]), exclude_max=True)
        strategy = st.floats(**kwargs)
    else:
        strategy = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
    if isinstance(knob.type, OptionalOf):
        strategy = st.none() | strategy
    return strategy


def invalid_values(knob: Knob) -> st.SearchStrategy[Any]:
    """Values that break the knob's type or one of its constraints."""
    base = base_scalar(knob.type)
    options: list[st.SearchStrategy[Any]] = []
    if not isinstance(knob.type, OptionalOf):
        options.append(st.none())
    if isinstance(base, LiteralOf) or knob.constraints.choices is not None:
        allowed = knob.constraints.choices or base.values  # type: ignore[union-attr]
        options.append(st.text(max_size=8).filter(lambda s: s not in allowed))
    elif base.name == "bool":
        options.append(st.sampled_from([0, 1, "yes"]))
    elif base.name in ("int", "float"):
        options.append(st.sampled_from(["1", True, b"1"]))
        if base.name == "int":
            options.append(st.just(1.5))
        c = knob.constraints
        if c.min is not None:
            options.append(st.just(c.min - 1))
        if c.exclusive_min is not None:
            options.append(st.just(c.exclusive_min))
        if c.max is not None:
            options.append(st.just(c.max + 1))
        if c.exclusive_max is not None:
            options.append(st.just(c.exclusive_max))
    else:
        options.append(st.sampled_from([1, 2.5, False]))
    return st.one_of(options)


def cli_text(value: Any) -> str:
    """How the generated CLI reads `value` back: `none`, `true`, repr of floats."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def argv_for(knob: Knob, value: Any) -> st.SearchStrategy[list[str]]:
    """Command-line arguments that set `knob` to `value`, through any of its spellings: its own
    flag (`--no-` form for False bools) and each cli alias that can express the value."""
    flag = knob.cli_flag
    options: list[list[str]] = []
    if str(knob.type) == "bool":
        options.append([flag] if value else ["--no-" + flag[2:]])
        for alias in knob.cli_aliases:
            if alias.values:
                keys = [k for k, v in alias.values if _same(v, value)]
                options += [[alias.flag, str(k)] for k in keys] or [[alias.flag, cli_text(value)]]
            elif alias.negative != bool(value):
                options.append([alias.flag])
        return st.sampled_from(options)
    text = cli_text(value)
    options.append([f"{flag}={text}"])
    for alias in knob.cli_aliases:
        if alias.negative:
            continue
        if not alias.values:
            options.append([f"{alias.flag}={text}"])
            continue
        keys = [str(k) for k, v in alias.values if _same(v, value)]
        if keys:
            options += [[alias.flag, k] for k in keys]
        elif text not in {str(k) for k, _ in alias.values}:
            options.append([f"{alias.flag}={text}"])  # not one of the alias's own words: the knob's spelling
    return st.sampled_from(options)
