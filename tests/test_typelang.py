"""Properties of the closed type language: what fits passes, what does not fit fails."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ptycho_knobs.typelang import (
    LiteralOf,
    OptionalOf,
    Scalar,
    TypeParseError,
    coerce_text,
    coerce_yaml,
    parse_type,
)

scalars = st.sampled_from(["int", "float", "bool", "str", "path"]).map(Scalar)
literal_members = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans())
literals = st.lists(literal_members, min_size=1, max_size=4, unique_by=lambda v: (type(v), v)).map(
    lambda vs: LiteralOf(tuple(vs))
)
ktypes = st.one_of(scalars, literals, st.one_of(scalars, literals).map(OptionalOf))


def value_of(ktype):  # noqa: ANN001, ANN201 - a strategy factory
    if isinstance(ktype, OptionalOf):
        return st.one_of(st.none(), value_of(ktype.inner))
    if isinstance(ktype, LiteralOf):
        return st.sampled_from(ktype.values)
    return {
        "int": st.integers(),
        "float": st.floats(allow_nan=False),
        "bool": st.booleans(),
        "str": st.text(),
        "path": st.text(),
    }[ktype.name]


@given(st.data(), ktypes)
def test_rendered_types_parse_back(data, ktype) -> None:  # noqa: ANN001
    assert parse_type(str(ktype)) == ktype


@given(st.data(), ktypes)
def test_conforming_values_check(data, ktype) -> None:  # noqa: ANN001
    value = data.draw(value_of(ktype))
    assert ktype.check(value)
    assert coerce_yaml(ktype, value) == value


@given(st.integers())
def test_bool_and_int_never_mix(n: int) -> None:
    assert not Scalar("bool").check(n)
    assert not Scalar("int").check(bool(n % 2))
    assert not LiteralOf((1,)).check(True)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_round_trips(x: float) -> None:
    assert coerce_text(Scalar("float"), repr(x)) == x
    assert coerce_yaml(Scalar("float"), f"{x:e}") == float(f"{x:e}")


@pytest.mark.parametrize(
    "text,col",
    [("integer", 1), ("Optional[Optional[int]]", 10), ("Literal[]", 9), ("Literal[object()]", 9), ("  dict", 3)],
)
def test_bad_types_name_a_column(text: str, col: int) -> None:
    with pytest.raises(TypeParseError) as info:
        parse_type(text)
    assert info.value.col == col


def test_optional_text_none_and_bool_words() -> None:
    assert coerce_text(OptionalOf(Scalar("int")), "none") is None
    assert coerce_text(Scalar("bool"), "off") is False
    with pytest.raises(ValueError, match="not a bool"):
        coerce_text(Scalar("bool"), "maybe")
