"""Which registry a command uses. Standard library only: the warm audit fast path
(`ptycho_knobs.fastpath`) must find exactly the file the CLI would, without loading YAML.

The order: `--registry` (or `$PTYCHO_KNOBS_REGISTRY`), else `knob_registry.yaml` in the
current folder or the nearest one above it, else the PtychoPINN registry that ships with the
package (the "bundled" one: `ptycho_knobs/bundled/` in an installed wheel, the checkout's own
file in an editable install), so an installed tool works from any folder.
"""

from __future__ import annotations

from pathlib import Path

from ptycho_knobs.errors import UsageError

REGISTRY_FILENAME = "knob_registry.yaml"
EXAMPLES_DIRNAME = "examples"

_PACKAGE = Path(__file__).parent
_WHEEL_DATA = _PACKAGE / "bundled"  # where the wheel puts the registry and examples/ (pyproject.toml)


class Located:
    """The registry a command uses, and whether it is the bundled one (read-only: `generate`
    and `audit --fix-locations` refuse it, and `audit` leaves out the findings about its
    own sources, PK003/PK004). `fallback` is true when nothing else was found.
    (A plain class: `typing.NamedTuple` would add `typing` to the audit fast path's imports.)"""

    __slots__ = ("path", "bundled", "fallback")

    def __init__(self, path: Path, bundled: bool, fallback: bool) -> None:
        self.path, self.bundled, self.fallback = path, bundled, fallback

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Located) and (self.path, self.bundled, self.fallback) == (
            other.path, other.bundled, other.fallback)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Located(path={self.path!r}, bundled={self.bundled}, fallback={self.fallback})"


def find_registry(start: Path | None = None) -> Path | None:
    """`knob_registry.yaml` in `start` or the nearest folder above it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / REGISTRY_FILENAME
        if candidate.is_file():
            return candidate
    return None


def bundled_registry() -> Path | None:
    """The PtychoPINN registry shipped with the package: inside an installed wheel, else the
    checkout this package runs from (editable install); None in a broken install."""
    for candidate in (_WHEEL_DATA / REGISTRY_FILENAME, _PACKAGE.parent / REGISTRY_FILENAME):
        if candidate.is_file():
            return candidate
    return None


def bundled_examples() -> Path | None:
    """The shipped `examples/` folder (run.yaml, ...), found the way `bundled_registry` is."""
    for candidate in (_WHEEL_DATA / EXAMPLES_DIRNAME, _PACKAGE.parent / EXAMPLES_DIRNAME):
        if (candidate / "run.yaml").is_file():
            return candidate
    return None


def is_installed_copy(path: Path) -> bool:
    """True for the registry file inside an installed wheel, this one's or another
    environment's (never written to): `.../ptycho_knobs/bundled/knob_registry.yaml`."""
    if not (_WHEEL_DATA.is_dir() or path.parent.name == _WHEEL_DATA.name):
        return False  # a checkout, and a registry of its own: no resolve on the fast path
    try:
        real = path.resolve()
    except OSError:
        return False
    return (real.name, real.parent.name, real.parent.parent.name) == (REGISTRY_FILENAME, _WHEEL_DATA.name, _PACKAGE.name)


def locate_registry(option: Path | None) -> Located:
    """The `--registry` option (or `$PTYCHO_KNOBS_REGISTRY`, which click folds into it) when
    given, else the nearest `knob_registry.yaml`, else the bundled one; a `UsageError` when
    the option names no file, or (a broken install) there is none at all."""
    if option is not None:
        if not option.is_file():
            raise UsageError(f"registry {option} does not exist (from --registry)")
        return Located(option, is_installed_copy(option), False)
    found = find_registry()
    if found is not None:
        return Located(found, is_installed_copy(found), False)
    shipped = bundled_registry()
    if shipped is None:
        raise UsageError(
            "no knob_registry.yaml in this folder or any folder above it; "
            "pass --registry PATH, run from your repository, or run 'ptycho-knobs init' to start one"
        )
    return Located(shipped, True, True)


def registry_path(option: Path | None) -> Path:
    """The registry file a command uses (see `locate_registry`); the fast path keys this file."""
    return locate_registry(option).path


def fallback_notice(located: Located, extra: str = "") -> str | None:
    """The one stderr line saying the bundled registry is in use because none was found;
    None when the registry was found or named. `extra` goes before the hint."""
    if not located.fallback:
        return None
    return (f"ptycho-knobs: no {REGISTRY_FILENAME} here or above; using the bundled PtychoPINN registry "
            f"({located.path}){extra}; run 'ptycho-knobs init' to start your own")
