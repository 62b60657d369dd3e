"""The `ptycho-knobs` entry point: replays a repeated `audit` without starting the CLI.

Why this exists: a warm audit does ~0.1 s of work, but starting the click CLI (click, YAML,
every verb's module, the registry) costs several times that. So, using the standard library
only, an `audit` command line is keyed by everything its output depends on -- the tool
version and a stamp of its code, the Python version, the argv, the working directory, the
environment variables the audit reads, the registry's bytes, the `--tf-config` file's bytes,
and the path and bytes of every file the engine would scan (all read and hashed; mtimes are
not trusted) -- and the (stdout, stderr, exit code) stored under that key is written back.

On a miss, or for anything this module does not fully understand (`--no-cache`, baselines,
`--fix-locations`, `--help`, any other verb or unknown option), the normal CLI runs. On a
miss the files already read are handed to the engine (`files.prefetch`), so the audit sees
exactly the bytes that were keyed; when it ends with exit 0 or 1 the audit command hands its
output to `files.finished`, which calls `remember` here; that stores the run if the registry
and --tf-config are unchanged. Exit 2 is never stored. (The audit command never imports this
module: the hook is how the two meet, so there is no import cycle.)

Stored runs are `ptycho_knobs.cache` entries: outside the audited tree by default, plain
marshal data, and authenticated with the per-user key, so a `run-*` file planted in a cache
folder (to make a tree with findings "pass") is a miss, never replayed.

PTYCHO_KNOBS_DEBUG_FASTPATH=1 reports on stderr whether it hit, missed or stepped aside.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from pathlib import Path

from ptycho_knobs import __version__
from ptycho_knobs.audit.files import (
    Entry,
    cache_folder,
    noted_inputs,
    on_finished,
    prefetch,
    prefetched,
    read,
    walk,
)
from ptycho_knobs.cache import Store, code_stamp
from ptycho_knobs.errors import UsageError
from ptycho_knobs.locate import registry_path

ENV = ("PTYCHO_KNOBS_REGISTRY", "PTYCHO_KNOBS_CACHE_DIR", "XDG_CACHE_HOME")  # what the audit reads
_VALUE_OPTIONS = {"--format", "--select", "--ignore", "--tf-config", "--jobs", "-j", "--cache-dir"}
_FLAGS = {"--exit-zero"}
_PACKAGE = Path(__file__).parent
_pending: tuple[dict[str, object], str, str, Path] | None = None  # request, key, side key, cache folder
KIND = "run"  # cache entries `run-<key>.pkc`


def main(prog_name: str | None = None) -> None:
    """Replay a stored audit when the key matches; otherwise run the click CLI."""
    global _pending
    request = parse(sys.argv[1:])
    keyed = _key(request) if request is not None else None
    if request is None:
        _debug("skip (not a plain audit)")
    elif keyed is None:
        _debug("skip (cannot key this run)")
    else:
        key, side, folder, walked = keyed
        stored = _load(folder / f"{KIND}-{key}") if folder is not None else None
        _debug(f"{'hit' if stored else 'miss'} {key[:16]}")
        if stored is not None:
            out, err, code = stored
            sys.stdout.write(out)
            sys.stdout.flush()
            sys.stderr.write(err)
            sys.stderr.flush()
            raise SystemExit(code)
        prefetch(request["paths"], *walked)  # type: ignore[arg-type]
        if folder is not None:
            _pending = (request, key, side, folder)
            on_finished(remember)
    from ptycho_knobs.cli import main as cli_main

    cli_main(prog_name=prog_name)


def remember(out: str, err: str, code: int) -> None:
    """Store a finished audit under the key `main` computed, if it still describes the run:
    the audit used the walk that was keyed (else the whole key is computed again) and the
    registry and --tf-config files have not changed meanwhile."""
    if _pending is None or code not in (0, 1):
        return
    request, key, side, folder = _pending
    if prefetched(request["paths"]):  # type: ignore[arg-type]  # the audit did not use the keyed walk
        again = _key(request)
        same = again is not None and again[0] == key
    else:
        same = _side_key(request) == side
    if not same:
        _debug("not stored (inputs changed during the run)")
        return
    extras = noted_inputs()  # files read beyond the walk: the replay checks them again
    Store(folder).put(KIND, key, marshal.dumps((out, err, code, extras)))  # a read-only place: one warning


def parse(argv: list[str]) -> dict[str, object] | None:
    """`[--registry R] audit PATHS... [options]` when every option is one that only selects or
    formats findings; None otherwise. Mirrors click: options and paths may mix, `--opt=v`,
    `-jN`, the last of a repeated option wins."""
    registry: str | None = None
    i = 0
    while i < len(argv) and argv[i] != "audit":
        if argv[i] == "--registry" and i + 1 < len(argv):
            registry, i = argv[i + 1], i + 2
        elif argv[i].startswith("--registry="):
            registry, i = argv[i].partition("=")[2], i + 1
        else:
            return None
    if i == len(argv):
        return None
    paths: list[str] = []
    values: dict[str, str] = {}
    rest = argv[i + 1:]
    j = 0
    while j < len(rest):
        token = rest[j]
        j += 1
        if token[:1] != "-" or token == "-":
            paths.append(token)
        elif token in _FLAGS:
            continue
        elif token in _VALUE_OPTIONS:
            if j == len(rest):
                return None
            values[token], j = rest[j], j + 1
        elif token.startswith("--") and token.partition("=")[0] in _VALUE_OPTIONS:
            name, _, value = token.partition("=")
            values[name] = value
        elif token.startswith("-j") and not token.startswith("--"):
            values["-j"] = token[2:]
        else:
            return None  # --no-cache, --baseline, --write-baseline, --fix-locations, --help, `--`, ...
    if not paths:
        return None
    return {"argv": list(argv), "registry": registry, "paths": paths,
            "tf_config": values.get("--tf-config"), "cache_dir": values.get("--cache-dir")}


def _feed(digest: hashlib._Hash, *parts: object) -> None:
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode("utf-8", "surrogateescape")
        digest.update(len(data).to_bytes(8, "little") + data)


def _side_key(request: dict[str, object]) -> str | None:
    """sha256 of the registry (found as the CLI finds it) and the --tf-config file; None when
    either is missing (the CLI reports that)."""
    option = request["registry"]
    if option is None:  # click's envvar for --registry; an empty value counts as unset
        option = os.environ.get("PTYCHO_KNOBS_REGISTRY") or None
    digest = hashlib.sha256()
    try:
        registry = registry_path(Path(str(option)) if option is not None else None)
        _feed(digest, registry.resolve(), registry.read_bytes())
        if request["tf_config"] is not None:
            _feed(digest, Path(str(request["tf_config"])).read_bytes())
    except (UsageError, OSError):
        return None
    return digest.hexdigest()


def _key(request: dict[str, object]) -> tuple[str, str, Path, tuple[list[Entry], list[Path]]] | None:
    """(sha256 of everything the run's output depends on, the side key, the cache folder, the
    walk with every file read); None when the run cannot be keyed."""
    argv: list[str] = request["argv"]  # type: ignore[assignment]
    paths: list[str] = request["paths"]  # type: ignore[assignment]
    side = _side_key(request)
    if side is None:
        return None
    digest = hashlib.sha256()
    _feed(digest, __version__, _code_stamp(), sys.version, os.getcwd(), len(argv), *argv, side)
    _feed(digest, *(f"{name}={os.environ.get(name)!r}" for name in ENV))
    _feed(digest, sys.stdout.isatty(), sys.stderr.isatty(), sys.stdout.encoding, sys.stderr.encoding)
    try:
        entries, roots = walk(paths)
    except (UsageError, OSError):
        return None
    for entry in entries:
        read(entry)
        _feed(digest, entry.path, entry.shown, entry.problem, entry.data or b"")
    cache_dir = request["cache_dir"]
    folder = cache_folder(paths, Path(str(cache_dir)) if cache_dir is not None else None)
    return digest.hexdigest(), side, folder, (entries, roots)


def _code_stamp() -> str:
    """Size and mtime of this package's audit code, so an edited checkout misses even when
    the version number did not change."""
    return code_stamp((_PACKAGE, _PACKAGE / "audit", _PACKAGE / "audit" / "rules", _PACKAGE / "fix"))


def _load(file: Path) -> tuple[str, str, int] | None:
    """The stored run `<folder>/run-<key>` (any suffix), if it is an authentic entry of this
    user's cache holding exactly (stdout, stderr, exit code 0 or 1); None otherwise."""
    key = file.name.partition("-")[2].partition(".")[0]
    payload = Store(file.parent).get(KIND, key)
    if payload is None:
        return None  # absent, planted, corrupt or from another version: a miss
    try:
        out, err, code, extras = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    if not (type(out) is str and type(err) is str and type(code) is int and code in (0, 1)
            and type(extras) is list):
        return None
    for path, digest in extras:  # registered files outside the walk, the spec: still the same bytes?
        try:
            with open(path, "rb") as fh:
                if hashlib.sha256(fh.read()).hexdigest() != digest:
                    return None
        except (OSError, TypeError):
            return None
    return out, err, code


def _debug(message: str) -> None:
    if os.environ.get("PTYCHO_KNOBS_DEBUG_FASTPATH") == "1":
        print(f"ptycho-knobs fastpath: {message}", file=sys.stderr)
