"""Findings to text, JSON, SARIF 2.1.0 or GitHub workflow commands (stdout); the summary
line goes to stderr so `--format json > out.json` stays pure JSON."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING

from ptycho_knobs import __version__
from ptycho_knobs.audit.findings import Finding, OutputFormat

if TYPE_CHECKING:
    from ptycho_knobs.audit.engine import Stats
    from ptycho_knobs.audit.rule import AuditRule

HELP_URI = "https://github.com/ptycho-knobs/ptycho-knobs/blob/main/generated/rules.md#{anchor}"


def render(findings: list[Finding], fmt: OutputFormat, rules: list[type[AuditRule]]) -> str:
    if fmt is OutputFormat.JSON:
        return json.dumps([f.as_json() for f in findings], indent=2) + "\n"
    if fmt is OutputFormat.SARIF:
        return json.dumps(sarif(findings, rules), indent=2) + "\n"
    if fmt is OutputFormat.GITHUB:
        return "".join(github(f) + "\n" for f in findings)
    return "".join(text(f) + "\n" for f in findings)


def text(f: Finding) -> str:
    return f"{f.path}:{f.line}:{f.col}: {f.code} {f.message}"


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def github(f: Finding) -> str:
    title = _escape_prop(f"{f.code} {f.rule}")
    return (f"::error file={_escape_prop(f.path)},line={f.line},endLine={f.end_line},col={f.col},"
            f"title={title}::{_escape_data(f.message)}")


def sarif(findings: list[Finding], rules: list[type[AuditRule]]) -> dict:
    from ptycho_knobs.audit.docs import rule_sections

    known = {r.CODE: r for r in rules}
    for f in findings:  # meta codes appear even when not among the selected rules
        if f.code not in known:
            from ptycho_knobs.audit.rule import all_rules

            known.update({r.CODE: r for r in all_rules()})
            break
    used = sorted({f.code for f in findings} | set(known))
    ids = {code: i for i, code in enumerate(used)}
    descriptors = []
    for code in used:
        rule = known[code]
        sections = rule_sections(rule)
        descriptors.append({
            "id": code,
            "name": rule.NAME,
            "shortDescription": {"text": rule.MESSAGE},
            "fullDescription": {"text": sections.get("What", rule.MESSAGE)},
            "help": {"text": sections.get("Use instead", ""), "markdown": sections.get("Use instead", "")},
            "helpUri": HELP_URI.format(anchor=f"{code.lower()}-{rule.NAME}"),
            "defaultConfiguration": {"level": "error"},
        })
    # Fixes for findings that carry edits, text computed by `ptycho-knobs fix`'s engine (libcst
    # is imported only when some finding has edits).
    edited: dict[int, list[dict]] = {}
    if any(f.edits for f in findings):
        from ptycho_knobs.fix.sarif import edit_fixes

        edited = edit_fixes(findings)
    results = []
    for i, f in enumerate(findings):
        result = {
            "ruleId": f.code,
            "ruleIndex": ids[f.code],
            "level": "error",
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f.path},
                "region": {"startLine": f.line, "startColumn": f.col, "endLine": f.end_line},
            }}],
        }
        if f.related:  # the other sides of a disagreement, each a place to jump to
            result["relatedLocations"] = [{
                "id": n,
                "physicalLocation": {"artifactLocation": {"uri": path}, "region": {"startLine": line}},
                "message": {"text": what},
            } for n, (path, line, what) in enumerate(f.related, 1)]
        if f.knob:
            result["properties"] = {"knob": f.knob}
        if f.fix:
            result["fixes"] = [{
                "description": {"text": f.fix.description},
                "artifactChanges": [{
                    "artifactLocation": {"uri": f.fix.path},
                    "replacements": [{
                        "deletedRegion": {"startLine": f.fix.line, "startColumn": f.fix.col,
                                          "endLine": f.fix.line, "endColumn": f.fix.end_col},
                        "insertedContent": {"text": f.fix.replacement},
                    }],
                }],
            }]
        if i in edited:
            result["fixes"] = result.get("fixes", []) + edited[i]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "ptycho-knobs", "version": __version__,
                                "informationUri": "https://github.com/ptycho-knobs/ptycho-knobs", "rules": descriptors}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def summary(findings: list[Finding], stats: Stats) -> str:
    counts = Counter(f.code for f in findings)
    scanned = (f"{stats.files} files: {stats.parsed} parsed, {stats.cached} from cache, "
               f"{stats.prefiltered} skipped by the pre-filter")
    extra = []
    if stats.suppressed:
        extra.append(f"{stats.suppressed} suppressed inline")
    if stats.baselined:
        extra.append(f"{stats.baselined} in the baseline")
    tail = f" ({'; '.join(extra)})" if extra else ""
    if not findings:
        return f"All clean. {scanned}{tail}."
    by_code = ", ".join(f"{code} x{n}" for code, n in sorted(counts.items()))
    noun = "finding" if len(findings) == 1 else "findings"
    return f"Found {len(findings)} {noun} ({by_code}). {scanned}{tail}."
