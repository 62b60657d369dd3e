"""Where ptycho-knobs keeps its caches, and why a planted cache file cannot fool it.

`audit` and `generate --check` run in CI on unreviewed pull requests, so nothing a pull
request can write is trusted:

- The cache lives outside the repository by default: `$XDG_CACHE_HOME/ptycho-knobs/`
  (`~/.cache/ptycho-knobs/` when unset), one folder per project (named after the project
  path and a hash of it). `--cache-dir` or `$PTYCHO_KNOBS_CACHE_DIR` choose another folder;
  every cache folder gets a `.gitignore` holding `*`, so one put inside a checkout is never
  committed.
- Entries hold plain data only (`marshal` of str, int, float, tuples, lists, dicts and the
  like; see `ptycho_knobs.plaindata`), never pickles.
- Every entry is authenticated: HMAC-SHA256, under a 32-byte secret in the user cache
  folder (`secret.key`, created 0600, never inside a project), over the entry's kind, its
  file name (which carries the content hash of its inputs) and its bytes. An entry that is
  planted, copied from another key, truncated, corrupt or from another format version fails
  the check and is a miss: it is recomputed and rewritten, never fatal.
- Reading creates nothing. A folder that cannot be written means no cache, with one
  warning. `Store(..., defer=True)` holds writes until `flush()`, so a run that fails
  leaves no cache behind.

Standard library only: the warm audit fast path (`ptycho_knobs.fastpath`) uses it before
anything heavy is imported.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMAT = b"PKC1"  # magic + format version; a change makes every old entry a miss
SUFFIX = ".pkc"
SECRET_NAME = "secret.key"
SECRET_BYTES = 32
MAX_ENTRY_BYTES = 512 * 1024 * 1024
GITIGNORE = "# Created by ptycho-knobs: its cache is never committed.\n*\n"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not hang the run
_O_BINARY = getattr(os, "O_BINARY", 0)

_warned = False
_secret_cache: dict[str, bytes | None] = {}


def warn(message: str) -> None:
    """One cache warning per process on stderr (the run goes on without the cache)."""
    global _warned
    if not _warned:
        _warned = True
        sys.stderr.write(f"warning: {message}\n")
        sys.stderr.flush()


# -- where ---------------------------------------------------------------------------------


def user_root() -> Path | None:
    """`$XDG_CACHE_HOME/ptycho-knobs` (an absolute XDG_CACHE_HOME only, as the spec says),
    else `~/.cache/ptycho-knobs`; None when there is no home folder."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "ptycho-knobs"
    try:
        home = Path.home()
    except (RuntimeError, KeyError, OSError):
        return None
    return home / ".cache" / "ptycho-knobs"


def project_folder(project: str | Path) -> Path | None:
    """The user cache folder of one project: `<user_root>/projects/<name>-<hash of its path>`."""
    root = user_root()
    if root is None:
        return None
    real = os.path.realpath(project)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(real))[:40] or "root"
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return root / "projects" / f"{name}-{digest}"


def folder_for(project: str | Path, option: str | Path | None = None) -> Path | None:
    """The cache folder: the command-line option, else `$PTYCHO_KNOBS_CACHE_DIR`, else the
    project's folder under the user cache."""
    if option is not None:
        return Path(option)
    if os.environ.get("PTYCHO_KNOBS_CACHE_DIR"):
        return Path(os.environ["PTYCHO_KNOBS_CACHE_DIR"])
    return project_folder(project)


# -- the secret ----------------------------------------------------------------------------


def _read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of `path` if it is a regular file (not a link, FIFO or device) of at most
    `limit` bytes; None otherwise or when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_BINARY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        chunks = []
        left = st.st_size + 1  # one more byte, to notice a file that grew meanwhile
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _secret_ok(path: Path) -> bytes | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
        return None
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return None
    data = _read_regular(path, SECRET_BYTES)
    return data if data is not None and len(data) == SECRET_BYTES else None


def secret(create: bool = False) -> bytes | None:
    """The per-user HMAC key (`<user_root>/secret.key`, mode 0600, owned by this user).

    Without `create`, None when there is none yet (so nothing cached can be valid). With it,
    a missing or unusable one (wrong size, other owner, readable by others) is replaced by a
    fresh random key, which invalidates every entry made under the old one. Never read from
    or written to a project folder, whatever `--cache-dir` says.
    """
    root = user_root()
    if root is None:
        return None
    path = root / SECRET_NAME
    key = str(path)
    known = _secret_cache.get(key)
    if known is not None or (key in _secret_cache and not create):
        return known
    found = _secret_ok(path)
    if found is None and create:
        found = _create_secret(root, path)
    _secret_cache[key] = found
    return found


def _create_secret(root: Path, path: Path) -> bytes | None:
    import tempfile

    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".secret.", suffix=".tmp")  # mode 0600
    except OSError as exc:
        warn(f"cache disabled: cannot create the cache key in {root} ({exc.strerror or exc}); continuing without it")
        return None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(SECRET_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and loses to a key another process made meanwhile
        except FileExistsError:
            if _secret_ok(path) is None:  # an unusable key: replace it
                os.replace(tmp, path)
        except OSError:  # no hard links here
            if _secret_ok(path) is None:
                os.replace(tmp, path)
    except OSError as exc:
        warn(f"cache disabled: cannot create the cache key {path} ({exc.strerror or exc}); continuing without it")
        return None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return _secret_ok(path)


# -- sealed entries ------------------------------------------------------------------------


def _mac(key: bytes, kind: str, name: str, payload: bytes) -> bytes:
    mac = hmac.new(key, FORMAT + b"\0" + kind.encode() + b"\0" + name.encode() + b"\0", hashlib.sha256)
    mac.update(payload)
    return mac.digest()


def seal(key: bytes, kind: str, name: str, payload: bytes) -> bytes:
    return FORMAT + _mac(key, kind, name, payload) + payload


def unseal(key: bytes, kind: str, name: str, blob: bytes) -> bytes | None:
    """The payload when `blob` is an intact entry made under `key` for exactly this kind
    and name; None otherwise."""
    head = len(FORMAT) + 32
    if len(blob) < head or not blob.startswith(FORMAT):
        return None
    payload = blob[head:]
    if not hmac.compare_digest(blob[len(FORMAT):head], _mac(key, kind, name, payload)):
        return None
    return payload


class Store:
    """One cache folder: `get` returns only authenticated payloads, `put` seals them.

    `folder=None` is no cache. With `defer`, writes wait for `flush()` (a failed run calls
    nothing, so it leaves nothing behind). Any write problem disables the store, with one
    warning, and the run goes on.
    """

    def __init__(self, folder: str | Path | None, defer: bool = False) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.defer = defer
        self.pending: dict[tuple[str, str], bytes] = {}
        self.broken = False

    def __bool__(self) -> bool:
        return self.folder is not None

    def path(self, kind: str, name: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{kind}-{name}{SUFFIX}"

    def get(self, kind: str, name: str) -> bytes | None:
        if self.folder is None:
            return None
        pending = self.pending.get((kind, name))
        if pending is not None:
            return pending
        key = secret()
        if key is None:
            return None
        blob = _read_regular(self.path(kind, name), MAX_ENTRY_BYTES)
        if blob is None:
            return None
        return unseal(key, kind, name, blob)  # None: planted, copied, cut short or corrupt

    def put(self, kind: str, name: str, payload: bytes) -> None:
        if self.folder is None or self.broken:
            return
        self.pending[(kind, name)] = payload
        if not self.defer:
            self.flush()

    def discard(self) -> None:
        self.pending.clear()

    def flush(self) -> None:
        if self.folder is None or not self.pending:
            return
        pending, self.pending = self.pending, {}
        if self.broken:
            return
        key = secret(create=True)
        if key is None:
            self.broken = True
            return
        try:
            self._prepare()
            from ptycho_knobs.atomic import atomic_open

            for (kind, name), payload in pending.items():
                with atomic_open(self.path(kind, name), binary=True) as fh:
                    fh.write(seal(key, kind, name, payload))
        except OSError as exc:
            self.broken = True
            where = exc.filename or self.folder
            warn(f"cache disabled: cannot write {where} ({exc.strerror or exc}); continuing without it")

    def _prepare(self) -> None:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        ignore = self.folder / ".gitignore"
        if not os.path.lexists(ignore):
            try:  # O_EXCL: never follows a planted link
                fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
            except FileExistsError:
                return
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(GITIGNORE)


# -- keys ----------------------------------------------------------------------------------


def digest(*parts: Any) -> str:
    """sha256 over length-prefixed parts (so no two part lists collide)."""
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode("utf-8", "surrogateescape")
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


PACKAGE = Path(__file__).parent


def code_stamp(folders: Iterable[Path], suffixes: tuple[str, ...] = (".py",)) -> str:
    """Path, size and mtime of every file with one of `suffixes` in `folders`, so an
    edited checkout misses even when the version number did not change."""
    stamp = []
    for folder in folders:
        try:
            with os.scandir(folder) as it:
                for e in it:
                    if e.name.endswith(suffixes):
                        st = e.stat()
                        stamp.append(f"{e.path}:{st.st_size}:{st.st_mtime_ns}")
        except OSError as exc:
            stamp.append(f"{folder}:{exc}")
    return "|".join(sorted(stamp))


# -- the two caches of typed objects -------------------------------------------------------


class FactsCache:
    """The audit's facts by file content hash: one entry per (tool version, registry,
    watched names, shape of the fact classes, scanner code). Plain data, authenticated; any
    problem with the entry is a miss."""

    def __init__(self, folder: Path | None, namespace: str) -> None:
        from ptycho_knobs.audit import findings
        from ptycho_knobs.plaindata import Codec

        self.codec = Codec((findings,))
        self.store = Store(folder)
        # The scanner's code is in the key too: an edited checkout does not reuse old facts.
        self.name = digest(namespace, self.codec.stamp, code_stamp((PACKAGE / "audit",)))[:32]
        self.data: dict[str, Any] = {}
        self.dirty = False
        payload = self.store.get("audit", self.name)
        if payload is not None:
            try:
                loaded = self.codec.loads(payload)
            except ValueError:
                loaded = None
            if isinstance(loaded, dict) and all(isinstance(v, findings.FileFacts) for v in loaded.values()):
                self.data = loaded

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, facts: Any) -> None:
        self.data[key] = facts
        self.dirty = True

    def save(self) -> None:
        if not self.store or not self.dirty:
            return
        try:
            payload = self.codec.dumps(self.data)
        except ValueError:  # a value the codec does not know: not cached, never an error
            return
        self.store.put("audit", self.name, payload)


def cached_registry(path: Path, store: Store | Path | None) -> Any:
    """The registry, from an authenticated plain-data entry keyed by its bytes, its path,
    the tool version and code, when one exists (YAML parsing with positions is most of a
    warm audit's time); loaded and validated otherwise (errors are raised as usual)."""
    from ptycho_knobs.registry import load_registry

    if store is None or isinstance(store, Path):
        store = Store(store)
    if not store:
        return load_registry(path)
    try:
        raw = path.read_bytes()
    except OSError:
        return load_registry(path)  # raises the located, friendly error
    from ptycho_knobs import __version__, ktypes, registry, typelang
    from ptycho_knobs.plaindata import Codec

    codec = Codec((registry, ktypes, typelang))
    name = digest(__version__, sys.version, codec.stamp, str(path), os.path.realpath(path), raw,
                  code_stamp([PACKAGE]))[:32]
    payload = store.get("registry", name)
    if payload is not None:
        try:
            loaded = codec.loads(payload)
        except ValueError:
            loaded = None
        if isinstance(loaded, registry.Registry) and loaded.path == path and _still_confined(loaded):
            return loaded
    result = load_registry(path)
    try:
        store.put("registry", name, codec.dumps(result))
    except ValueError:
        pass
    return result


def _still_confined(registry: Any) -> bool:
    """Whether the output folder still resolves inside the registry's folder: a symbolic
    link added since the entry was made must meet the loader's check, not the cache."""
    base = registry.path.parent.resolve()
    out = registry.output_dir.resolve()
    return out != base and out.is_relative_to(base)
