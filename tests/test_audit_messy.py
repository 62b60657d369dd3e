"""Real-world Python that a tidy fixture would not have: PEP 263 encodings, star imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ptycho_knobs.cli import main

REGISTRY = Path(__file__).resolve().parents[1] / "knob_registry.yaml"


def audit_json(tmp_path: Path, files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    for name, data in files.items():
        path = tmp_path / "ptycho_torch" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PTYCHO_KNOBS_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["--registry", str(REGISTRY), "audit", "ptycho_torch/", "--format", "json",
                                       "--ignore", "PK004"], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_a_latin1_file_with_a_coding_cookie_is_audited_not_rejected(tmp_path, monkeypatch) -> None:
    source = "# -*- coding: latin-1 -*-\nimport lightning as L\n# café\nt = L.Trainer(max_epochs=3)\n"
    found = audit_json(tmp_path, {"legacy.py": source.encode("latin-1")}, monkeypatch)
    assert [(f["code"], f["line"], f["col"]) for f in found if f["code"] == "PK001"] == [("PK001", 4, 15)]


def test_invalid_utf8_without_a_cookie_is_still_reported(tmp_path, monkeypatch) -> None:
    found = audit_json(tmp_path, {"bad.py": b"import lightning as L\n# caf\xe9\nL.Trainer()\n"}, monkeypatch)
    assert [(f["code"], f["line"]) for f in found] == [("PK900", 2)]


def test_star_import_from_a_watched_module_resolves_bare_names(tmp_path, monkeypatch) -> None:
    source = b"from lightning.pytorch.callbacks import *\nstop = EarlyStopping('val_loss', 0.0, 7)\n"
    found = audit_json(tmp_path, {"cb.py": source}, monkeypatch)
    assert ("PK001", "early_stop_patience") in {(f["code"], f["knob"]) for f in found}
