"""The jinja2 environment every template renders in, and its escaping filters.

Templates never write a registry value by hand: `py_literal` (Python source),
`py_docstring` (inside triple quotes), `md` (a markdown table cell) and `json` are the
only ways a value reaches output, so no purpose, default or name can break a file.
"""

from __future__ import annotations

import functools
import json as _json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ptycho_knobs.templates

if TYPE_CHECKING:  # jinja2 is imported only when a template is compiled or rendered
    import jinja2

    from ptycho_knobs.cache import Store

TEMPLATE_DIR = Path(ptycho_knobs.templates.__file__).parent


def py_literal(value: Any) -> str:
    """Python source for `value` that evaluates back to an equal value.

    str/int/float/bool/None and tuples, lists and dicts of them. Infinities are
    written as `1e999` so `ast.literal_eval` still reads them; NaN has no literal and
    becomes `float("nan")`.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(py_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"py_literal cannot write {type(value).__name__} values")


_TRAILING_SPACE = re.compile(r"[ \t]+(?=\n)")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def py_docstring(text: str) -> str:
    """`text` made safe between `\"\"\"` quotes; the string's value stays exactly `text`.

    Backslashes are doubled, quotes escaped where they could end the string, control
    characters (CR, NUL, line separators) and trailing blanks escaped, so the source
    compiles and passes a linter whatever the registry says.
    """
    out = text.replace("\\", "\\\\")
    if '"""' in out or out.endswith('"'):
        out = out.replace('"', '\\"')
    out = "".join(ch if ch == "\n" or ch.isprintable() else _escape_char(ch) for ch in out)
    return _TRAILING_SPACE.sub(lambda m: "".join(_escape_char(c) for c in m.group()), out)


def md(value: Any) -> str:
    """A value as one markdown table cell: pipes escaped, newlines as `<br>`."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "<br>".join(line.strip() for line in text.split("\n"))


def to_json(value: Any, indent: int | None = None) -> str:
    """Deterministic JSON (keys in given order, non-ASCII kept)."""
    return _json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)


_store: Store | None = None


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment: strict undefined, whitespace control, our filters."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(py_literal=py_literal, py_docstring=py_docstring, md=md, json=to_json)
    env.bytecode_cache = _bytecode_cache(_store) if _store else None
    return env


def use_cache(store: Store | None) -> None:
    """Cache what `generate` computes in `store` (a `ptycho_knobs.cache.Store`; None: no cache):
    the rendered files (see `writer.render_all`) and the compiled templates.

    Compiled templates go through an authenticated `jinja2.BytecodeCache`, never jinja's
    `FileSystemBytecodeCache`: that one unpickles and executes whatever file sits in its
    folder. Ours keeps (template checksum, Python cache tag, jinja version, code object) in
    an HMAC-checked entry, so only code this user's own runs compiled is ever loaded.
    """
    global _store
    _store = store
    if environment.cache_info().currsize:
        environment().bytecode_cache = _bytecode_cache(store) if store else None


def current_store() -> Store | None:
    return _store


def _bytecode_cache(store: Store) -> jinja2.BytecodeCache:
    return _bytecode_cache_class()(store)


@functools.lru_cache(maxsize=1)
def _bytecode_cache_class() -> type:
    import marshal
    import sys
    import types

    import jinja2

    tag = f"{sys.implementation.cache_tag}|jinja2 {jinja2.__version__}"

    class AuthenticatedBytecodeCache(jinja2.BytecodeCache):
        def __init__(self, store: Store) -> None:
            self.store = store

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            payload = self.store.get("jinja", bucket.key)
            if payload is None:
                return
            try:
                checksum, made_by, code = marshal.loads(payload)
            except (EOFError, ValueError, TypeError):
                return
            if checksum == bucket.checksum and made_by == tag and isinstance(code, types.CodeType):
                bucket.code = code

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            if bucket.code is not None:
                self.store.put("jinja", bucket.key, marshal.dumps((bucket.checksum, tag, bucket.code)))

    return AuthenticatedBytecodeCache
