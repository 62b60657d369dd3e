"""The literal writer: whatever the style, the text reads back as the value, and keeps the
style it was asked for."""

from __future__ import annotations

import ast

import libcst as cst
from hypothesis import given
from hypothesis import strategies as st

from ptycho_knobs.fix.literals import NumberStyle, StringStyle, format_float, format_int, literal_text

FLOAT_STYLES = ["1e-3", "1E+09", "1.0e-3", "0.5", "4.", ".5", "100_000.0", "2.5"]
INT_STYLES = ["100", "100_000", "0x1f", "0XFF", "0o17", "0b101", "1e9"]
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@given(finite, st.sampled_from(FLOAT_STYLES))
def test_floats_read_back(value, style):
    text = format_float(value, NumberStyle(style))
    assert ast.literal_eval(text) == value
    if "e" in style.lower() and value:
        assert ("E" in text) == ("E" in style)


@given(st.integers(min_value=-10**20, max_value=10**20), st.sampled_from(INT_STYLES))
def test_ints_read_back(value, style):
    text = format_int(value, NumberStyle(style))
    # an int written where a float literal was (`1e9`) is a float, rounded like any float
    assert ast.literal_eval(text) == (float(value) if NumberStyle(style).sci else value)
    if style.lower().startswith(("0x", "0o", "0b")):
        assert text.lstrip("-")[:2] == style[:2]


@given(st.text(max_size=30), st.sampled_from(["'a'", '"a"', "r'a'", 'R"a"', "'''a'''", '"""a"""', "u'a'", "b'a'"]))
def test_strings_read_back_in_the_old_quotes(value, old):
    text = StringStyle(cst.parse_expression(old)).write(value)
    assert ast.literal_eval(text) == value
    quote = old.lstrip("rRuUbBfF")[0]
    assert text.lstrip("rRuU")[0] == quote


def test_literal_text_keeps_the_kind_of_literal():
    assert literal_text(cst.parse_expression("4"), 8.0) == "8"
    assert literal_text(cst.parse_expression("4.0"), 8) == "8.0"
    assert literal_text(cst.parse_expression("1_000_000"), 2500000) == "2_500_000"
    assert literal_text(cst.parse_expression("'0.001'"), 0.01) == "'0.01'"
    assert literal_text(cst.parse_expression("'auto'"), "gpu") == "'gpu'"
    assert literal_text(cst.parse_expression("None"), "csv") == "'csv'"
