"""Baseline files: adopt the audit on a codebase with existing findings, fail only on new ones.

A fingerprint hashes the path, code, knob and the finding's statement with all whitespace
and comments removed, plus an occurrence index among identical fingerprints (in line order).
Line numbers are not part of it, so code moving up or down keeps its fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from ptycho_knobs.atomic import write_text
from ptycho_knobs.audit.findings import Finding
from ptycho_knobs.errors import UsageError

VERSION = 1


def fingerprints(findings: list[Finding]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for f in sorted(findings, key=Finding.sort_key):
        base = hashlib.sha256(f"{f.path}\0{f.code}\0{f.knob or ''}\0{f.text or f.message}".encode()).hexdigest()[:24]
        out.append(f"{base}-{seen[base]}")
        seen[base] += 1
    return out


def write(path: Path, findings: list[Finding]) -> int:
    ordered = sorted(findings, key=Finding.sort_key)
    entries = [{"fingerprint": fp, "code": f.code, "path": f.path, "knob": f.knob, "message": f.message}
               for fp, f in zip(fingerprints(ordered), ordered, strict=False)]
    body = json.dumps({"version": VERSION, "tool": "ptycho-knobs audit", "findings": entries}, indent=2) + "\n"
    write_text(path, body)
    return len(entries)


def load(path: Path) -> set[str]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("version") != VERSION:
            raise ValueError(f"baseline version {data.get('version')!r} is not {VERSION}")
        return {e["fingerprint"] for e in data["findings"]}
    except FileNotFoundError:
        raise UsageError(f"baseline {path} does not exist; create it with --write-baseline {path}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"baseline {path} is not a ptycho-knobs baseline: {exc}") from None


def subtract(findings: list[Finding], known: set[str]) -> list[Finding]:
    ordered = sorted(findings, key=Finding.sort_key)
    return [f for fp, f in zip(fingerprints(ordered), ordered, strict=False) if fp not in known]
