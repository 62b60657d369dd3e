"""Outside a repository: the bundled-registry fallback of every verb, and `ptycho-knobs init`.

Each test runs from an empty temporary folder with no knob_registry.yaml above it. Here (an
editable install) the bundled registry is the checkout's own; the wheel's copy is tested in
test_install_wheel.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ptycho_knobs import locate
from ptycho_knobs.cli import main
from ptycho_knobs.init_command import starter_registry
from ptycho_knobs.registry import load_registry

BUNDLED = locate.bundled_registry()
NOTICE = "ptycho-knobs: no knob_registry.yaml here or above; using the bundled PtychoPINN registry ("
HARDCODED = """\
import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

trainer = L.Trainer(max_epochs=7, callbacks=[EarlyStopping(monitor="val_loss", patience=3)])
"""


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with no registry here or above, and its own audit cache."""
    folder = tmp_path / "work"
    folder.mkdir()
    if locate.find_registry(folder) is not None:
        pytest.skip(f"a knob_registry.yaml above {folder} hides the fallback")
    monkeypatch.chdir(folder)
    monkeypatch.delenv("PTYCHO_KNOBS_REGISTRY", raising=False)
    monkeypatch.setenv("PTYCHO_KNOBS_CACHE_DIR", str(tmp_path / "cache"))
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def notices(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("ptycho-knobs: ")]


# ------------------------------------------------------------------------------- locate


def test_bundled_registry_and_examples_ship() -> None:
    assert BUNDLED is not None and BUNDLED.name == "knob_registry.yaml"
    examples = locate.bundled_examples()
    assert examples is not None and (examples / "run.yaml").is_file()


def test_no_registry_anywhere_falls_back_to_the_bundled_one(empty: Path) -> None:
    located = locate.locate_registry(None)
    assert located == locate.Located(BUNDLED, True, True)
    assert locate.registry_path(None) == BUNDLED  # what the audit fast path keys
    assert locate.fallback_notice(located).startswith(NOTICE)


def test_a_registry_here_wins_and_is_not_bundled(empty: Path) -> None:
    (empty / "knob_registry.yaml").write_text("schema_version: 1\n", encoding="utf-8")
    sub = empty / "a" / "b"
    sub.mkdir(parents=True)
    os.chdir(sub)
    located = locate.locate_registry(None)
    assert located.path == empty / "knob_registry.yaml" and not located.bundled and not located.fallback
    assert locate.fallback_notice(located) is None


def test_an_installed_copy_is_bundled_even_when_named(empty: Path) -> None:
    # another environment's installed registry, passed by --registry: generate must not write there
    installed = empty / "site-packages" / "ptycho_knobs" / "bundled" / "knob_registry.yaml"
    installed.parent.mkdir(parents=True)
    installed.write_bytes(BUNDLED.read_bytes())
    located = locate.locate_registry(installed)
    assert located.bundled and not located.fallback and locate.fallback_notice(located) is None
    result = run("--registry", str(installed), "generate")
    assert result.exit_code == 2 and "ptycho-knobs init" in result.stderr
    assert sorted(p.name for p in installed.parent.iterdir()) == ["knob_registry.yaml"]
    audited = run("--registry", str(installed), "audit", "site-packages", "--no-cache")
    assert "PK004" not in audited.stdout
    assert f"ptycho-knobs: {installed} is the bundled PtychoPINN registry, leaving out PK003/PK004" in audited.stderr


def test_a_missing_registry_option_is_still_an_error(empty: Path) -> None:
    result = run("--registry", "nope.yaml", "knobs", "list")
    assert result.exit_code == 2
    assert "registry nope.yaml does not exist" in result.stderr


def test_locating_the_fallback_loads_no_yaml(empty: Path) -> None:
    code = ("import sys; from ptycho_knobs.fastpath import registry_path; p = registry_path(None); "
            "print(p); print(sorted(m for m in ('yaml', 'click', 'jinja2', 'torch') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTYCHO_KNOBS_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=empty, env=env, capture_output=True, text=True, check=True)
    path, loaded = out.stdout.splitlines()
    assert Path(path) == BUNDLED
    assert loaded == "[]"


# ------------------------------------------------------------------------ verbs, fallback


def test_audit_uses_the_bundled_registry_without_its_own_source_checks(empty: Path) -> None:
    # someone else's tree named like PtychoPINN's: the registry's sources (PtychoPINN's files
    # and lines) are not in it, so PK003/PK004 would be dozens of findings about the registry
    (empty / "ptycho_torch").mkdir()
    (empty / "ptycho_torch" / "train.py").write_text(HARDCODED, encoding="utf-8")
    result = run("audit", "ptycho_torch/")
    assert result.exit_code == 1, result.output
    assert "PK001 [epochs]" in result.stdout and "PK001 [early_stop_patience]" in result.stdout
    assert "PK003" not in result.stdout and "PK004" not in result.stdout
    [line] = notices(result)
    assert line.startswith(NOTICE) and str(BUNDLED) in line and "leaving out PK003/PK004" in line
    assert line.endswith("run 'ptycho-knobs init' to start your own")
    assert result.stderr.splitlines()[-1].startswith("Found ")

    selected = run("audit", "ptycho_torch/", "--select", "PK003,PK004")  # asked for by name: kept
    assert "PK004" in selected.stdout
    [line] = notices(selected)
    assert "leaving out" not in line


def test_audit_fix_locations_refuses_the_bundled_registry(empty: Path) -> None:
    (empty / "a.py").write_text("x = 1\n", encoding="utf-8")
    before = BUNDLED.read_bytes()
    result = run("audit", "a.py", "--fix-locations")
    assert result.exit_code == 2
    assert "--fix-locations rewrites the registry" in result.stderr and "ptycho-knobs init" in result.stderr
    assert BUNDLED.read_bytes() == before


def test_knobs_list_uses_the_bundled_registry_and_says_so_once(empty: Path) -> None:
    result = run("knobs", "list")
    assert result.exit_code == 0
    assert "early_stop_patience" in result.stdout
    [line] = notices(result)
    assert line.startswith(NOTICE) and "run 'ptycho-knobs init' to start your own" in line


def test_generate_refuses_the_bundled_registry_and_writes_nothing(empty: Path) -> None:
    out_dir = load_registry(BUNDLED).output_dir
    before = {p: p.stat().st_mtime_ns for p in out_dir.glob("*")} if out_dir.is_dir() else {}
    for args in ([], ["--check"], ["--out", "gen"]):
        result = run("generate", *args)
        assert result.exit_code == 2, args
        assert "ptycho-knobs init" in result.stderr and "bundled PtychoPINN registry" in result.stderr
    assert list(empty.iterdir()) == []
    assert ({p: p.stat().st_mtime_ns for p in out_dir.glob("*")} if out_dir.is_dir() else {}) == before


def test_train_without_the_examples_says_how_to_get_them(empty: Path) -> None:
    result = run("train", "--config", "examples/run.yaml", "--dry-run")
    assert result.exit_code == 2
    assert "'ptycho-knobs init --examples' copies them into ./examples/" in result.stderr
    other = run("train", "--config", "mine.yaml")
    assert other.exit_code == 2 and "init --examples" not in other.stderr  # not one of the examples


# ---------------------------------------------------------------------------------- init


def test_init_writes_a_starter_that_every_verb_works_on(empty: Path) -> None:
    result = run("init")
    assert result.exit_code == 0, result.output
    assert "wrote knob_registry.yaml" in result.stdout and "ptycho-knobs discover" in result.stdout
    starter = load_registry(empty / "knob_registry.yaml")
    assert [k.name for k in starter.knobs] == ["epochs", "early_stop_patience"]

    listed = run("knobs", "list")
    assert listed.exit_code == 0 and notices(listed) == []
    assert "early_stop_patience" in listed.stdout and "2 knobs" in listed.stderr
    generated = run("generate")
    assert generated.exit_code == 0, generated.output
    assert (empty / "generated" / "execution_config.py").is_file()
    assert run("generate", "--check").exit_code == 0
    audited = run("audit", ".")
    assert audited.exit_code == 0, audited.output
    assert audited.stdout == "" and notices(audited) == []
    trained = run("train", "--dry-run")  # the built-in harness routes the PtychoPINN knobs
    assert trained.exit_code == 2
    assert "lacks" in trained.stderr and f"--registry {BUNDLED} train" in trained.stderr


def test_init_copies_the_schema_comment_and_callees_from_the_shipped_registry(tmp_path: Path) -> None:
    shipped_text = BUNDLED.read_text(encoding="utf-8")
    text = starter_registry(shipped_text)
    # every schema line of the shipped header (the field list, before the registry's own
    # decisions), in order, verbatim
    header = shipped_text.split("\n# Decisions", 1)[0]
    schema = [line for line in header.splitlines() if line.startswith("#   ")]
    assert schema, "the shipped registry's header comment documents no fields"
    lines = text.splitlines()
    positions = [lines.index(line) for line in schema]
    assert positions == sorted(positions)
    assert not any(line.startswith("# Decisions") for line in lines)  # the registry's own decisions stay there

    path = tmp_path / "knob_registry.yaml"
    path.write_text(text, encoding="utf-8")
    starter, shipped = load_registry(path), load_registry(BUNDLED)
    assert starter.callees == shipped.callees
    assert {"Trainer", "DDPStrategy", "DataLoader", "EarlyStopping", "ModelCheckpoint"} <= {c.name for c in starter.callees}


def test_init_never_overwrites(empty: Path) -> None:
    (empty / "knob_registry.yaml").write_text("mine\n", encoding="utf-8")
    result = run("init")
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert (empty / "knob_registry.yaml").read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in empty.iterdir()) == ["knob_registry.yaml"]  # no temporary left behind


def test_init_into_a_new_folder_and_under_an_existing_registry(empty: Path) -> None:
    result = run("init", "svc/train")
    assert result.exit_code == 0, result.output
    assert (empty / "svc" / "train" / "knob_registry.yaml").is_file()
    assert "cd svc/train && ptycho-knobs generate" in result.stdout
    nested = run("init", "svc/train/inner")
    assert nested.exit_code == 0
    assert f"takes precedence over {empty / 'svc' / 'train' / 'knob_registry.yaml'}" in nested.stdout


def test_init_examples_copies_them_and_train_reads_them(empty: Path) -> None:
    result = run("init", "--examples")
    assert result.exit_code == 0, result.output
    shipped = locate.bundled_examples()
    names = sorted(p.name for p in shipped.iterdir() if p.suffix in (".yaml", ".py"))
    assert sorted(p.name for p in (empty / "examples").iterdir()) == names
    for name in names:
        assert (empty / "examples" / name).read_bytes() == (shipped / name).read_bytes()
    assert not (empty / "knob_registry.yaml").exists()

    again = run("init", "--examples")
    assert again.exit_code == 2 and "never overwrites" in again.stderr

    config = run("train", "--config", "examples/run.yaml", "--print-config")
    assert config.exit_code == 0, config.output
    assert "epochs: 50" in config.stdout
    [line] = notices(config)
    assert line.startswith(NOTICE)
