"""One training process per run folder: `<run>/run.lock`, held from before a run touches the folder until it ends.

Without it two `--resume` of one run train into the same folder at once (both exit 0,
`last-v1.ckpt` and `last-v2.ckpt` appear, and the next resume picks either).

The lock is a POSIX record lock (`fcntl.lockf`) on the file, and the file says who holds
it (pid, host, since when, the command), so a refusal can name the holder. Why lockf:
the kernel drops it when its process dies, however it dies (SIGKILL, the OOM killer), so
a dead holder never blocks a later run; forked children (DataLoader workers) do not
inherit it; and NFS carries it to other hosts (lockd / NFSv4). The holder removes the
file when it releases the lock; a file left by a killed process is simply taken over.
On a file system without POSIX locks the file itself is the lock (created exclusively),
and a holder that is recorded on this host but no longer running is detected and replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ptycho_knobs.runtime.faults import RunInUse

LOCK_FILE = "run.lock"
_BUSY = (errno.EACCES, errno.EAGAIN)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)


@dataclass
class RunLock:
    """A held lock; `release()` (also run at exit) removes the file, then drops the lock."""

    path: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is None:
            return
        # unlink while still holding it: a process waiting on the old file sees it is gone and retries
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = None


def acquire(run_dir: Path) -> RunLock:
    """Lock `run_dir` for this process, or raise `RunInUse` naming the live holder."""
    path = run_dir / LOCK_FILE
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lockf(fd)
        except BlockingIOError:
            os.close(fd)
            raise RunInUse(_refusal(run_dir, path, _holder(path))) from None
        except _Unsupported:
            os.close(fd)
            return _acquire_by_file(run_dir, path)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:  # the holder released (and removed) it between our open and our lock
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, _record().encode(), 0)
        return _held(RunLock(path, fd))
    raise RunInUse(f"could not lock {path}: it keeps being replaced; is another process starting this run?")


class _Unsupported(Exception):
    """The file system does not implement POSIX record locks."""


def _lockf(fd: int) -> None:
    import fcntl

    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _BUSY:
            raise BlockingIOError(exc.errno, exc.strerror) from None
        if exc.errno in _NO_LOCKS:
            raise _Unsupported() from None
        raise


def _acquire_by_file(run_dir: Path, path: Path) -> RunLock:
    """Fallback without record locks: the file's existence is the lock (created with O_EXCL)."""
    for _ in range(10):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder and holder.get("host") == socket.gethostname() and not _alive(holder.get("pid")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # a dead holder on this host: its lock is stale
                continue
            raise RunInUse(_refusal(run_dir, path, holder)) from None
        os.write(fd, _record().encode())
        return _held(RunLock(path, fd))
    raise RunInUse(f"could not lock {path}: it keeps being replaced; is another process starting this run?")


def _held(lock: RunLock) -> RunLock:
    atexit.register(lock.release)
    return lock


def _record() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                       "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}) + "\n"


def _holder(path: Path) -> dict[str, object] | None:
    """The holder record; None when unreadable (a holder may be writing it this very moment)."""
    for _ in range(3):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            return body if isinstance(body, dict) else None
        except (OSError, ValueError):
            time.sleep(0.05)
    return None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _refusal(run_dir: Path, path: Path, holder: dict[str, object] | None) -> str:
    if holder is None:
        who = "another process (its lock file does not say which)"
    else:
        since = holder.get("since")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
        who = f"pid {holder.get('pid')} on host {holder.get('host')} since {when} ({holder.get('command', '?')})"
    return (f"run folder {run_dir} is in use by {who}.\n"
            f"  wait for it to end, or stop it (SIGTERM or Ctrl-C saves last.ckpt) and resume then; lock: {path}")
