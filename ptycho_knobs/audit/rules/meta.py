from __future__ import annotations

from ptycho_knobs.audit.rule import AuditRule, Invalid, Valid

NAMES = {
    "PK900": "parse-error",
    "PK901": "unused-suppression",
    "PK902": "unreadable-file",
    "PK903": "empty-file",
    "PK999": "internal-error",
}


class ParseError(AuditRule):
    """A file that cannot be parsed: a syntax error, or bytes that are not UTF-8.

    **What.** The file is reported at the position of the error and skipped; every other
    file is still audited.

    **Why.** A file the audit cannot read is a file it cannot vouch for.

    **Example.** `def broken(:`

    **Use instead.** Fix the syntax, or save the file as UTF-8.
    """

    CODE = "PK900"
    NAME = NAMES[CODE]
    MESSAGE = "A file does not parse (syntax error or not UTF-8)."
    VALID = [Valid("x = 1\n")]
    INVALID = [Invalid("import lightning as L\ndef broken(:\n    pass\n", 2, 12,
                       "syntax error: invalid syntax; file skipped")]


class UnusedSuppression(AuditRule):
    """An inline `# ptycho-knobs: ignore[...]` comment that suppresses nothing.

    **What.** Suppressions sit on any line of a statement or on the line before it:
    `# ptycho-knobs: ignore[PK001] reason`, `ignore[PK001,PK002]`, or a bare `ignore`. One
    that matches no finding of a selected rule is reported, so they do not outlive the
    code they excused.

    **Why.** A stale suppression silently excuses the next problem written on that line.

    **Example.** `# ptycho-knobs: ignore[PK001]` above a call that now reads its config.

    **Use instead.** Delete the comment.
    """

    CODE = "PK901"
    NAME = NAMES[CODE]
    MESSAGE = "An inline suppression comment suppresses nothing."
    VALID = [
        Valid("from lightning.pytorch.callbacks import EarlyStopping\n"
              "# ptycho-knobs: ignore[PK001,PK002] upstream default, see #12\nstop = EarlyStopping(patience=5)\n"),
    ]
    INVALID = [
        Invalid("from lightning.pytorch.callbacks import EarlyStopping\n"
                "stop = EarlyStopping(patience=cfg.patience)  # ptycho-knobs: ignore[PK001] old\n", 2, 46,
                "unused suppression: no PK001 finding here to ignore; remove the comment"),
    ]


class UnreadableFile(AuditRule):
    """A file that cannot be read: over the size limit (5 MB), reached through a symlink
    loop, or denied by the file system.

    **What.** The file (or the looping folder) is reported and skipped; every other file is
    still audited.

    **Why.** A skipped file is a file the audit cannot vouch for; saying so beats silence.

    **Example.** `ptycho_torch/data -> ..` (a symlink to its own parent).

    **Use instead.** Remove the loop, or exclude the file from the audited paths.
    """

    CODE = "PK902"
    NAME = NAMES[CODE]
    MESSAGE = "A file cannot be read (too large, symlink loop, permission)."


class EmptyFile(AuditRule):
    """A Python module that is empty (only whitespace). Empty `__init__.py` files are normal
    and not reported.

    **What.** A zero-byte `train_utils.py` is usually a failed checkout or an editor accident.

    **Why.** If the registry points into it, every one of its knobs is gone.

    **Example.** an empty `ptycho_torch/helpers/__main__.py`

    **Use instead.** Restore or delete the file.
    """

    CODE = "PK903"
    NAME = NAMES[CODE]
    MESSAGE = "A Python module is empty."
    VALID = [Valid("# a comment is content\n")]
    INVALID = [Invalid("\n\n", 1, 1, "file is empty")]


class InternalError(AuditRule):
    """The audit itself failed on a file (a bug in ptycho-knobs). Always reported, and the exit
    code is 2 whatever else was found.

    **What.** The file is reported with the exception; the rest of the tree is still audited.

    **Why.** A crash must never look like a clean result.

    **Example.** (none: please report it)

    **Use instead.** Report the bug with the file that triggers it.
    """

    CODE = "PK999"
    NAME = NAMES[CODE]
    MESSAGE = "The audit failed on a file (a bug in ptycho-knobs)."
