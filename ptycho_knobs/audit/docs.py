"""The rules reference, generated from each rule's docstring and examples.

`ptycho-knobs generate` writes `render_rules_reference()` to generated/rules.md and
`generate --check` keeps it fresh; keep the name and signature.
"""

from __future__ import annotations

import inspect
import re

from ptycho_knobs.audit.rule import AuditRule, Invalid, all_rules

_SECTION = re.compile(r"^\*\*(What|Why|Example|Use instead)\.\*\*\s*", re.MULTILINE)


def rule_sections(rule: type[AuditRule]) -> dict[str, str]:
    """The docstring split into its summary and What / Why / Example / Use instead parts."""
    doc = inspect.cleandoc(rule.__doc__ or "")
    parts = _SECTION.split(doc)
    out = {"summary": " ".join(parts[0].split())}
    for name, body in zip(parts[1::2], parts[2::2], strict=False):
        out[name] = " ".join(body.split())
    return out


def render_rules_reference() -> str:
    """Markdown: a table of every rule, then each rule's documentation and examples."""
    rules = all_rules()
    out = [
        "# ptycho-knobs audit rules",
        "",
        "Generated from the rule classes in `ptycho_knobs/audit/rules/` by `ptycho-knobs generate`;",
        "do not edit. Each example below is also a test.",
        "",
        "| code | name | what |",
        "|---|---|---|",
    ]
    for rule in rules:
        out.append(f"| [{rule.CODE}](#{rule.CODE.lower()}-{rule.NAME}) | `{rule.NAME}` | {rule.MESSAGE} |")
    out.append("")
    out.append("Suppress one finding with `# ptycho-knobs: ignore[PK001] reason` on any line of the statement "
               "or the line before it; `--select`/`--ignore` take codes or prefixes.")
    for rule in rules:
        sections = rule_sections(rule)
        out += ["", f"## {rule.CODE} {rule.NAME}", "", sections["summary"], ""]
        for name in ("What", "Why", "Example", "Use instead"):
            if name in sections:
                out += [f"**{name}.** {sections[name]}", ""]
        for label, examples in (("Valid", rule.VALID), ("Invalid", rule.INVALID)):
            for ex in examples:
                note = ""
                if isinstance(ex, Invalid):
                    note = f" reports `{ex.path}:{ex.line}:{ex.col}: {rule.CODE} {ex.message}`"
                if ex.tf_config is not None:
                    note += " (with the TF config in the rule's source)"
                out += [f"{label}{note}:", "", "```python", ex.code.rstrip("\n"), "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"
