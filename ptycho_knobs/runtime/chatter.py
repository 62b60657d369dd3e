"""Keep what Lightning says unasked out of `train`'s output, through its own loggers.

Lightning prints hardware banners ("GPU available: False, used: False", "TPU available")
and advertisements ("💡 Tip: ... litlogger") through `rank_zero_info`, i.e. the logging
loggers `lightning.pytorch.utilities.rank_zero` and `lightning.fabric.utilities.rank_zero`
below `lightning.pytorch` / `lightning.fabric`. A dry run prints a table and nothing else,
so it raises those two parents to WARNING while the objects are built (warnings, which go
through the warnings module, still show). A real run keeps Lightning's banners and model
summary and drops only the tips. Nothing is monkeypatched: these are logging filters and
levels, restored afterwards.

One warning is dropped too: the FutureWarning torch raises when Lightning's own code builds a
`LeafSpec` (lightning 2.6 with torch >= 2.10). It is about Lightning's source, printed on every
run, and nothing a user of this tool can change; a filter on that exact message from Lightning's
modules, so every other warning, that one from any other caller included, still shows.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

PARENTS = ("lightning.pytorch", "lightning.fabric")
RANK_ZERO = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
TIP_MARK = "Tip:"
LIBRARY_INTERNAL = (r"`isinstance\(treespec, LeafSpec\)` is deprecated", r"lightning\.")


class DropTips(logging.Filter):
    """Drops Lightning's "💡 Tip: try installing ..." records (suggestions to install other products)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return TIP_MARK not in str(record.msg)[:16]


_TIPS = DropTips()


def drop_tips() -> None:
    """Installed once per process, on the loggers that emit the tips (idempotent)."""
    message, module = LIBRARY_INTERNAL
    warnings.filterwarnings("ignore", message=message, category=FutureWarning, module=module)
    for name in RANK_ZERO:
        logger = logging.getLogger(name)
        if _TIPS not in logger.filters:
            logger.addFilter(_TIPS)


@contextlib.contextmanager
def lightning_info(*, shown: bool) -> Iterator[None]:
    """Lightning's INFO records shown (tips dropped) or, with shown=False, none of them."""
    drop_tips()
    if shown:
        yield
        return
    loggers = [logging.getLogger(name) for name in PARENTS]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(logging.WARNING, lg.level))
    try:
        yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)
