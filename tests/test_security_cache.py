"""Hostile caches: planted pickles, forged or copied replays, crafted template bytecode,
truncated, corrupt and wrong-version entries, unwritable folders. Nothing planted may run,
nothing may change a result, and every run ends with its normal exit code, no traceback.

Each run is a real `python -m ptycho_knobs` process with its own user cache folder
(`XDG_CACHE_HOME`); a payload that ran would create a marker file.
"""

from __future__ import annotations

import marshal
import os
import pickle
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ptycho_knobs import cache as cache_module

HERE = Path(__file__).parent
ROOT = HERE.parent
FIXTURE = HERE / "fixtures" / "audit_project"
FINDINGS = "Found 41 findings"


class Payload:
    """Unpickling this creates `marker` (stands for any code an attacker would run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (os.mkdir, (self.marker,))


def run(cwd: Path, *args: str, env: dict[str, str], user: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*(user or []), sys.executable, "-m", "ptycho_knobs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-3000:]
    return proc


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PTYCHO_KNOBS_CACHE_DIR", "PTYCHO_KNOBS_REGISTRY", "PTYCHO_KNOBS_DEBUG_FASTPATH")}
    clean["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return clean


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    return root


def user_cache(env: dict[str, str]) -> Path:
    return Path(env["XDG_CACHE_HOME"]) / "ptycho-knobs"


def forged(kind: str, name: str, payload: bytes) -> bytes:
    """A well-formed entry, sealed with a key that is not the user's (the attacker's own)."""
    return cache_module.seal(os.urandom(32), kind, name, payload)


def entry_name(path: Path) -> tuple[str, str]:
    kind, _, rest = path.name.partition("-")
    return kind, rest[: -len(cache_module.SUFFIX)]


# -- where the cache is -----------------------------------------------------------------------


def test_the_cache_lives_outside_the_audited_tree(project: Path, env: dict[str, str]) -> None:
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    first = run(project, "audit", "ptycho_torch/", env=env)
    second = run(project, "audit", "ptycho_torch/", env={**env, "PTYCHO_KNOBS_DEBUG_FASTPATH": "1"})
    assert first.returncode == second.returncode == 1 and FINDINGS in first.stderr
    assert "fastpath: hit" in second.stderr  # the cache works ...
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before  # ... and wrote nothing here
    folders = list((user_cache(env) / "projects").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("repo-")
    assert {entry_name(p)[0] for p in folders[0].glob("*.pkc")} == {"audit", "registry", "run"}
    secret = user_cache(env) / cache_module.SECRET_NAME
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_bytes()) == 32
    assert stat.S_IMODE(user_cache(env).stat().st_mode) == 0o700
    assert stat.S_IMODE(folders[0].stat().st_mode) == 0o700


def test_generate_check_writes_nothing_in_the_repository(tmp_path: Path, env: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "knob_registry.yaml", repo / "knob_registry.yaml")
    assert run(repo, "generate", env=env).returncode == 0
    before = {p: p.read_bytes() if p.is_file() else None for p in repo.rglob("*")}
    for _ in range(2):
        assert run(repo, "generate", "--check", env=env).returncode == 0
    assert {p: p.read_bytes() if p.is_file() else None for p in repo.rglob("*")} == before
    assert list((user_cache(env) / "projects").glob("repo-*/render-*.pkc"))


def test_a_cache_folder_chosen_in_the_tree_is_git_ignored(project: Path, env: dict[str, str]) -> None:
    run(project, "audit", "ptycho_torch/", "--cache-dir", ".pk-cache", env=env)
    run(project, "generate", "--check", "--cache-dir", "gen-cache", env=env)
    env_dir = {**env, "PTYCHO_KNOBS_CACHE_DIR": str(project / "env-cache")}
    run(project, "audit", "ptycho_torch/", "--select", "PK001", env=env_dir)
    for folder in (".pk-cache", "gen-cache", "env-cache"):
        assert (project / folder / ".gitignore").read_text().splitlines()[-1] == "*", folder
        assert list((project / folder).glob("*.pkc")), folder
        assert not (project / folder / cache_module.SECRET_NAME).exists()  # the key never goes in a tree
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project,
                                capture_output=True, text=True, check=True).stdout
        assert "cache" not in status, status


# -- planted and forged entries ---------------------------------------------------------------


def test_planted_pickles_never_run(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    """Every cache file an attacker could plant, in the old in-tree folder and in a cache
    folder inside the tree, holds a pickle that would create the marker: none is loaded."""
    marker = tmp_path / "PWNED"
    evil = pickle.dumps(Payload(marker))
    cold = run(project, "audit", "ptycho_torch/", "--format", "json", "--cache-dir", "cache", env=env)
    assert cold.returncode == 1 and FINDINGS in cold.stderr
    names = [entry_name(p) for p in (project / "cache").glob("*.pkc")]
    assert {kind for kind, _ in names} == {"audit", "registry", "run"}
    old = project / ".ptycho_knobs_cache"  # where the cache used to be, and pickles were loaded from
    old.mkdir()
    for kind, name in names:
        (project / "cache" / f"{kind}-{name}.pkc").write_bytes(evil)  # raw pickle
        (project / "cache" / f"{kind}-{name}.pickle").write_bytes(evil)
        (project / "cache" / f"{kind}-{name}.marshal").write_bytes(evil)
        (old / f"{kind}-{name}.pickle").write_bytes(evil)
        (old / f"{kind}-{name}.marshal").write_bytes(evil)
    for args in (("--cache-dir", "cache"), ()):
        warm = run(project, "audit", "ptycho_torch/", "--format", "json", *args, env=env)
        assert (warm.returncode, warm.stdout) == (1, cold.stdout)
        assert FINDINGS in warm.stderr and "0 from cache" in warm.stderr
    assert not marker.exists()
    for kind, name in names:  # a bad entry is a miss, and is rewritten
        assert (project / "cache" / f"{kind}-{name}.pkc").read_bytes() != evil


def test_a_forged_replay_cannot_make_a_dirty_tree_pass(project: Path, env: dict[str, str]) -> None:
    """`run-*` entries replay stdout, stderr and the exit code. A forged one (well-formed,
    sealed with another key) and a genuine one copied from a clean run are both refused."""
    debug = {**env, "PTYCHO_KNOBS_DEBUG_FASTPATH": "1"}
    dirty = run(project, "audit", "ptycho_torch/", "--cache-dir", "cache", env=env)
    assert dirty.returncode == 1 and FINDINGS in dirty.stderr
    (run_file,) = (project / "cache").glob("run-*.pkc")
    kind, key = entry_name(run_file)
    clean_file = project / "ptycho_torch" / "__init__.py"
    clean = run(project, "audit", str(clean_file.relative_to(project)), "--cache-dir", "cache", env=env)
    assert clean.returncode == 0
    (genuine_clean,) = [p for p in (project / "cache").glob("run-*.pkc") if p != run_file]
    lie = marshal.dumps(("", "Found 0 findings.\n", 0))
    for planted in (forged(kind, key, lie), genuine_clean.read_bytes(), marshal.dumps(("", "Found 0 findings.\n", 0)),
                    run_file.read_bytes()[:-1] + bytes([run_file.read_bytes()[-1] ^ 1])):
        run_file.write_bytes(planted)
        again = run(project, "audit", "ptycho_torch/", "--cache-dir", "cache", env=debug)
        assert again.returncode == 1 and FINDINGS in again.stderr, again.stderr
        assert "fastpath: miss" in again.stderr
    honest = run(project, "audit", "ptycho_torch/", "--cache-dir", "cache", env=debug)
    assert honest.returncode == 1 and "fastpath: hit" in honest.stderr  # rewritten, and genuine again


def test_forged_facts_and_registry_entries_are_refused(project: Path, env: dict[str, str]) -> None:
    """Entries in the right plain format, claiming every file has no facts and a registry
    with no sources, sealed with a key that is not the user's: ignored."""
    from ptycho_knobs.audit import findings
    from ptycho_knobs.plaindata import Codec

    cold = run(project, "audit", "ptycho_torch/", "--cache-dir", "cache", env=env)
    codec = Codec((findings,))
    for path in (project / "cache").glob("*.pkc"):
        kind, name = entry_name(path)
        if kind == "run":
            path.unlink()  # so the facts and registry entries are consulted
        elif kind == "audit":  # "no facts in any file", under the real file names
            facts = {line.split()[0]: findings.FileFacts() for line in _sha256s(project / "ptycho_torch")}
            path.write_bytes(forged(kind, name, codec.dumps(facts)))
        else:
            path.write_bytes(forged(kind, name, b"\x00" * 64))
    warm = run(project, "audit", "ptycho_torch/", "--cache-dir", "cache", env=env)
    assert (warm.returncode, warm.stdout) == (cold.returncode, cold.stdout)
    assert "7 parsed, 0 from cache" in warm.stderr


def _sha256s(folder: Path) -> list[str]:
    import hashlib

    return [f"{hashlib.sha256(p.read_bytes()).hexdigest()}{suffix} {p}" for p in sorted(folder.rglob("*.py"))
            for suffix in ("", "s")]


def valid(path: Path, env: dict[str, str]) -> bool:
    """Whether `path` is an intact entry sealed with the user's key."""
    key = (user_cache(env) / cache_module.SECRET_NAME).read_bytes()
    kind, name = entry_name(path)
    return cache_module.unseal(key, kind, name, path.read_bytes()) is not None


def test_crafted_template_bytecode_never_runs(tmp_path: Path, env: dict[str, str]) -> None:
    """jinja's own FileSystemBytecodeCache unpickles a checksum and executes the code object
    it finds. Plant both kinds of payload where the old cache lived and in a cache folder in
    the tree: `generate --check` runs none of it and still answers correctly."""
    import jinja2
    import jinja2.bccache

    registry = tmp_path / "knob_registry.yaml"
    shutil.copy(ROOT / "knob_registry.yaml", registry)
    marker = tmp_path / "PWNED"
    assert run(tmp_path, "generate", env=env).returncode == 0
    assert run(tmp_path, "generate", "--check", "--cache-dir", "cache", env=env).returncode == 0
    from ptycho_knobs.codegen.environment import TEMPLATE_DIR

    bcc = jinja2.BytecodeCache()  # jinja's key: the template name and the file it was loaded from
    sources = {bcc.get_cache_key(t.name, str(t)): t.read_text() for t in TEMPLATE_DIR.glob("*.j2")}
    assert {entry_name(p)[1] for p in (tmp_path / "cache").glob("jinja-*.pkc")} == set(sources)
    code = compile(f"import os\nos.mkdir({str(marker)!r})\n", "<payload>", "exec")
    tag = f"{sys.implementation.cache_tag}|jinja2 {jinja2.__version__}"
    old = tmp_path / ".ptycho_knobs_cache" / "jinja"
    old.mkdir(parents=True)
    for name, source in sources.items():
        old_style = jinja2.bccache.bc_magic + pickle.dumps(Payload(marker)) + marshal.dumps(code)
        (old / f"__jinja2_{name}.cache").write_bytes(old_style)
        (tmp_path / "cache" / f"__jinja2_{name}.cache").write_bytes(old_style)
        # Right checksum, right tag, right format: only the key it is sealed with is wrong.
        (tmp_path / "cache" / f"jinja-{name}.pkc").write_bytes(
            forged("jinja", name, marshal.dumps((bcc.get_source_checksum(source), tag, code))))
    for path in (tmp_path / "cache").glob("render-*.pkc"):
        path.unlink()  # so the templates are loaded through the bytecode cache
    planted = {p: p.read_bytes() for p in (tmp_path / "cache").glob("jinja-*.pkc")}
    for args in (("--cache-dir", "cache"), ()):
        result = run(tmp_path, "generate", "--check", *args, env=env)
        assert result.returncode == 0 and "up to date" in result.stderr
    assert not marker.exists()
    assert all(path.read_bytes() != data and valid(path, env) for path, data in planted.items())  # refused, rewritten


@pytest.mark.parametrize("damage", ["truncated-after-header", "truncated-half", "empty", "wrong-version", "flipped-bit"])
def test_damaged_entries_are_misses_and_are_rewritten(tmp_path: Path, env: dict[str, str], damage: str) -> None:
    registry = tmp_path / "knob_registry.yaml"
    shutil.copy(ROOT / "knob_registry.yaml", registry)
    shutil.copytree(FIXTURE / "ptycho_torch", tmp_path / "ptycho_torch")
    assert run(tmp_path, "generate", env=env).returncode == 0
    cold = run(tmp_path, "audit", "ptycho_torch/", "--cache-dir", "cache", env=env)
    assert run(tmp_path, "generate", "--check", "--cache-dir", "cache", env=env).returncode == 0
    entries = {p: p.read_bytes() for p in (tmp_path / "cache").glob("*.pkc")}
    assert {entry_name(p)[0] for p in entries} == {"audit", "registry", "run", "render", "jinja"}
    for path, data in entries.items():
        head = len(cache_module.FORMAT) + 32
        path.write_bytes({
            "truncated-after-header": data[:head],
            "truncated-half": data[: len(data) // 2],
            "empty": b"",
            "wrong-version": b"PKC0" + data[4:],
            "flipped-bit": data[:-1] + bytes([data[-1] ^ 0x40]),
        }[damage])
    for path in entries:  # the render entry hides the template entries: take them one at a time
        if entry_name(path)[0] == "render":
            path.unlink()
    check = run(tmp_path, "generate", "--check", "--cache-dir", "cache", env=env)
    warm = run(tmp_path, "audit", "ptycho_torch/", "--cache-dir", "cache", env=env)
    assert check.returncode == 0 and "up to date" in check.stderr
    assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    for path in entries:
        assert valid(path, env), path.name  # every damaged entry was rewritten whole


def test_the_old_truncated_jinja_cache_is_not_read(tmp_path: Path, env: dict[str, str]) -> None:
    """The reported failure: a jinja cache truncated after its header made every `generate`
    end in an UnpicklingError traceback, exit 1, until someone deleted the folder."""
    import jinja2.bccache

    shutil.copy(ROOT / "knob_registry.yaml", tmp_path / "knob_registry.yaml")
    old = tmp_path / ".ptycho_knobs_cache" / "jinja"
    old.mkdir(parents=True)
    env_cache = {**env, "PTYCHO_KNOBS_CACHE_DIR": str(old)}
    from ptycho_knobs.codegen.environment import TEMPLATE_DIR

    for template in TEMPLATE_DIR.glob("*.j2"):
        key = jinja2.BytecodeCache().get_cache_key(template.name, str(template))
        (old / f"__jinja2_{key}.cache").write_bytes(jinja2.bccache.bc_magic + b"\x80")
        (old / f"jinja-{key}.pkc").write_bytes(cache_module.FORMAT)
    for _ in range(2):
        assert run(tmp_path, "generate", env=env_cache).returncode == 0
        assert run(tmp_path, "generate", "--check", env=env_cache).returncode == 0


# -- the key ----------------------------------------------------------------------------------


def test_a_secret_others_can_read_is_replaced(project: Path, env: dict[str, str]) -> None:
    run(project, "audit", "ptycho_torch/", env=env)
    secret = user_cache(env) / cache_module.SECRET_NAME
    old = secret.read_bytes()
    os.chmod(secret, 0o644)  # someone else may have read it: nothing made under it is trusted
    again = run(project, "audit", "ptycho_torch/", env={**env, "PTYCHO_KNOBS_DEBUG_FASTPATH": "1"})
    assert again.returncode == 1 and "fastpath: miss" in again.stderr
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and secret.read_bytes() != old


def test_seal_binds_kind_and_name() -> None:
    key = os.urandom(32)
    blob = cache_module.seal(key, "run", "abc", b"payload")
    assert cache_module.unseal(key, "run", "abc", blob) == b"payload"
    assert cache_module.unseal(key, "run", "abd", blob) is None
    assert cache_module.unseal(key, "audit", "abc", blob) is None
    assert cache_module.unseal(os.urandom(32), "run", "abc", blob) is None
    assert cache_module.unseal(key, "run", "abc", blob[:-1]) is None


def test_a_planted_fifo_or_link_does_not_hang_or_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(cache_module, "_secret_cache", {})
    store = cache_module.Store(tmp_path / "c")
    store.put("run", "k", b"data")
    assert store.get("run", "k") == b"data"
    fresh = cache_module.Store(tmp_path / "c")
    assert fresh.get("run", "k") == b"data"
    path = fresh.path("run", "k")
    path.unlink()
    os.mkfifo(path)
    assert fresh.get("run", "k") is None  # would block forever if opened for a plain read
    path.unlink()
    os.symlink("/dev/zero", path)
    assert fresh.get("run", "k") is None


# -- folders that cannot be written -----------------------------------------------------------


def _as_other_user() -> list[str] | None:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if shutil.which("setpriv") else None


def test_an_unwritable_cache_folder_is_one_warning_not_a_traceback() -> None:
    user = _as_other_user()
    if user is None:
        pytest.skip("running as root without setpriv: cannot make a folder read-only for this process")
    base = Path(tempfile.mkdtemp(prefix="pk-ro-"))
    try:
        os.chmod(base, 0o755)
        project = base / "repo"
        shutil.copytree(FIXTURE, project)
        shutil.copy(ROOT / "knob_registry.yaml", base / "gen-registry.yaml")
        (base / "ro").mkdir()
        home = base / "home"
        home.mkdir()
        subprocess.run([sys.executable, "-m", "ptycho_knobs", "--registry", str(base / "gen-registry.yaml"),
                        "generate", "--no-cache"], cwd=base, check=True, capture_output=True)
        for p in [base, *base.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        if os.geteuid() == 0:
            os.chown(home, 65534, 65534)
        else:
            os.chmod(base / "ro", 0o555)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PTYCHO_KNOBS_")}
        env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
        cases = [
            (project, ("audit", "ptycho_torch/", "--cache-dir", str(base / "ro")), 1, env),
            (base, ("--registry", "gen-registry.yaml", "generate", "--check", "--cache-dir", str(base / "ro")), 0, env),
            # no writable user cache at all: the default folder cannot be created
            (project, ("audit", "ptycho_torch/"), 1, {**env, "XDG_CACHE_HOME": str(base / "ro" / "x")}),
            (base, ("--registry", "gen-registry.yaml", "generate", "--check"), 0,
             {**env, "XDG_CACHE_HOME": str(base / "ro" / "x")}),
        ]
        for cwd, args, code, run_env in cases:
            for _ in range(2):
                result = run(cwd, *args, env=run_env, user=user)
                assert result.returncode == code, (args, result.stderr)
                warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
                assert len(warnings) == 1 and "cache" in warnings[0], (args, result.stderr)
        assert list((base / "ro").iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- the facts codec --------------------------------------------------------------------------


def _all_kinds_of_facts():
    from ptycho_knobs.audit import findings as f

    span = f.Span(3, 7, 4)
    values = [None, True, False, 0, -3, 2**80, 1.5, float("inf"), float("-inf"), "é\x00\u2028", b"\xff\x00",
              (1, [2, (3,)]), [(), []], {"a": (1, 2), 3: [None]}, frozenset({1, "x"}), {1.25}, f.NOT_LITERAL,
              {(1, 2): f.NOT_LITERAL}, 1j, ...]
    args = tuple(f.Arg(f"k{i}", v, span, "positional" if i % 2 else "keyword") for i, v in enumerate(values))
    call = f.CallFact("Trainer", "L.Trainer", span, args, (span, f.Span(9, 1, 9)), "Trainer(...)")
    return f.FileFacts(
        calls=(call, call),  # the same object twice: a reference, decoded as one object
        fields=(f.FieldFact("C", "a", f.NOT_LITERAL, True, span, "a: int = x", ref=True),),
        flags=(f.FlagFact(("--x", "-x"), "x", 3, True, span, "p.add_argument('--x')"),),
        envs=(f.EnvFact("RANK", "0", True, span, "os.environ.get('RANK', '0')"),),
        suppressions=(f.Suppression(1, 1, ()), f.Suppression(2, 5, ("PK001",))),
        problem=("PK900", "msg", 1, 2),
        lines=12,
    )


def test_the_facts_codec_round_trips_every_kind_of_value() -> None:
    import math

    from ptycho_knobs.audit import findings
    from ptycho_knobs.plaindata import Codec

    codec = Codec((findings,))
    facts = _all_kinds_of_facts()
    back = codec.loads(codec.dumps({"k": facts, "nan": findings.Arg("n", float("nan"), findings.Span(1, 1, 1))}))
    assert back["k"] == facts
    assert back["k"].calls[0] is back["k"].calls[1]
    assert back["k"].fields[0].value is findings.NOT_LITERAL and not back["k"].calls[0].args[16].literal
    assert math.isnan(back["nan"].value)
    kinds = [type(a.value) for a in back["k"].calls[0].args]
    assert kinds == [type(a.value) for a in facts.calls[0].args]  # tuples stay tuples, lists lists, sets sets


def test_the_codec_follows_new_fact_classes_and_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """findings.py grows in parallel: a new frozen dataclass, or a new field, needs no codec
    change, and changes the schema stamp (so old entries are misses, not errors)."""
    import dataclasses

    from ptycho_knobs.audit import findings
    from ptycho_knobs.plaindata import Codec

    before = Codec((findings,)).stamp

    @dataclasses.dataclass(frozen=True)
    class DecoratorFact:
        name: str
        at: findings.Span
        extra: tuple = ()

    DecoratorFact.__module__ = findings.__name__
    monkeypatch.setattr(findings, "DecoratorFact", DecoratorFact, raising=False)
    codec = Codec((findings,))
    assert codec.stamp != before
    value = DecoratorFact("cached", findings.Span(1, 2, 3), (findings.NOT_LITERAL, [1]))
    assert codec.loads(codec.dumps(value)) == value


def test_the_codec_refuses_anything_else() -> None:
    from ptycho_knobs.audit import findings
    from ptycho_knobs.plaindata import MARK, Codec

    codec = Codec((findings,))
    for bad in (object(), Path("x").stat, os.system, Payload(Path("x")), {"a": type}):
        with pytest.raises(ValueError):
            codec.dumps(bad)
    hostile = [
        (MARK, 0, "os.system", 0, ("true",)),  # a class outside findings
        (MARK, 0, "findings.Span", 0, (1, 2)),  # wrong number of fields
        (MARK, 9, "x"),  # unknown tag
        (MARK, 1, 5),  # a reference to nothing
        compile("1", "<x>", "eval"),  # a code object
    ]
    for data in hostile:
        with pytest.raises(ValueError):
            codec.loads(marshal.dumps(data))
    with pytest.raises(ValueError):
        codec.loads(b"\x00garbage")


def test_the_registry_round_trips_through_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ptycho_knobs.registry import load_registry

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    registry = ROOT / "knob_registry.yaml"
    fresh = load_registry(registry)
    store = cache_module.Store(tmp_path / "c")
    first = cache_module.cached_registry(registry, store)
    again = cache_module.cached_registry(registry, cache_module.Store(tmp_path / "c"))
    assert first == fresh and again == fresh and again is not first
    assert again.knobs == fresh.knobs and again.callees == fresh.callees
    for knob in again.knobs:
        assert all(again.find(n) is knob for n in knob.names)
    assert re.fullmatch(r"[0-9a-f]{64}", again.sha256) and again.output_dir == fresh.output_dir
