"""Measure the audit on the PtychoPINN snapshot against its hand-checked GROUND_TRUTH.yaml.

The ground truth is for measuring, never for tuning: nothing in the tool reads it. This script
audits `ptycho_torch/` of the snapshot the way its maintainer would (from the snapshot's root,
with this repository's registry) and prints:

- drifts explained: a drift counts when a finding sits at one of its evidence lines (the
  finding's line, or a line of the statement it points at); the finding's message is printed
  next to it, so a reader can check that it names the disagreeing values;
- literal call-site arguments: each literal the ground truth lists is either found (a finding
  at its line) or accounted for, with the reason printed (a layer of a finding reported
  elsewhere, a structural keyword, a value fixed by design in an evaluation loader, ...);
- findings by rule.

    python benchmarks/bench_ground_truth.py [--snapshot PATH] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshot", type=Path,
                        default=Path(os.environ.get("PTYCHO_KNOBS_SNAPSHOT", ROOT.parent / "shared" / "ptychopinn-aaa014e")))
    parser.add_argument("--verbose", action="store_true", help="print every literal argument, not only the unfound")
    args = parser.parse_args()
    snapshot = args.snapshot.resolve()
    if not (snapshot / "GROUND_TRUTH.yaml").is_file():
        sys.exit(f"no GROUND_TRUTH.yaml in {snapshot}")
    truth = yaml.safe_load((snapshot / "GROUND_TRUTH.yaml").read_text(encoding="utf-8"))
    (commit,) = truth.values()

    from ptycho_knobs.audit.engine import Options, build_project, run_audit
    from ptycho_knobs.audit.index import STRUCTURAL_KEYWORDS, same
    from ptycho_knobs.registry import load_registry

    registry = load_registry(ROOT / "knob_registry.yaml")
    here = os.getcwd()
    os.chdir(snapshot)
    try:
        result = run_audit(["ptycho_torch"], registry, Options(cache=False, jobs=1))
        project = build_project(["ptycho_torch"], registry, Options(cache=False, jobs=1))[0]
        model = project.model
    finally:
        os.chdir(here)
    layers_at: dict[tuple[str, int], list] = {}
    for knob_layers in model.layers.values():
        for lay in knob_layers:
            layers_at.setdefault((lay.path, lay.line), []).append(lay)
    calls_at = {}
    for f in project.files:
        for call in f.facts.calls:
            for line in range(call.at.line, call.at.end_line + 1):
                calls_at[(f.shown, line)] = (f, call)
    findings = result.findings
    at: dict[tuple[str, int], list] = {}
    for f in findings:
        for line in range(f.line, max(f.line, f.end_line) + 1):
            at.setdefault((f.path, line), []).append(f)
    related: dict[tuple[str, int], list] = {}
    for f in findings:
        for path, line, _ in f.related:
            related.setdefault((path, line), []).append(f)

    print(f"snapshot: {snapshot} ({commit.get('commit', '?')[:12]}); registry: {registry.path}")
    print(f"findings: {len(findings)}  " + ", ".join(f"{c} x{n}" for c, n in sorted(Counter(f.code for f in findings).items())))

    # -- drifts ----------------------------------------------------------------------------------
    drifts = commit["drift"]
    explained = []
    print("\ndrifts (a finding at an evidence line):")
    for d in drifts:
        hits = []
        for ev in d["evidence"]:
            for f in at.get((ev["file"], ev["line"]), []):
                if f not in hits:
                    hits.append(f)
        if hits:
            explained.append(d["id"])
        mark = "yes" if hits else "NO "
        print(f"  {d['id']} {mark} {d['kind']}")
        for f in hits[:2]:
            print(f"        {f.path}:{f.line} {f.code} {f.message[:230]}")
        if not hits:
            near = {f.code for ev in d["evidence"] for f in related.get((ev["file"], ev["line"]), [])}
            if near:
                print(f"        (an evidence line is a related location of {', '.join(sorted(near))})")
    print(f"drifts explained: {len(explained)} of {len(drifts)}")

    # -- literal call-site arguments -------------------------------------------------------------
    literals = []
    for category, sites in commit["call_sites"].items():
        for site in sites:
            for kw in site.get("kwargs", []):
                if kw.get("kind") == "literal":
                    literals.append((category, site, kw["name"], kw["line"], kw["value"]))
            for pos in site.get("positional_args", []):
                if pos.get("kind") == "literal":
                    literals.append((category, site, f"#{pos['index']}", pos["line"], pos["value"]))
    found, accounted, unaccounted = Counter(), Counter(), []
    print("\nliteral call-site arguments:")
    for _category, site, name, line, value in literals:
        path = site["file"]
        here_findings = at.get((path, line), [])
        if here_findings:
            found[here_findings[0].code] += 1
            if args.verbose:
                print(f"  found       {path}:{line} {site['callee']}({name}={value}) -> {here_findings[0].code}")
            continue
        reason = None
        if (path, line) in related:
            f = related[(path, line)][0]
            reason = f"a layer of {f.code} [{f.knob}] reported at {f.path}:{f.line}"
        elif name in STRUCTURAL_KEYWORDS:
            reason = "a structural keyword (wiring, not a setting)"
        elif (path, line) in calls_at:
            f, call = calls_at[(path, line)]
            role = project.call_role(f, call)
            owner = project.index.owner(call.callee, name, f.pure, call.at.line, call.at.end_line, role)
            others = [o for o in project.index.owners.get((call.callee, name), []) if o.knob.role and o.knob.role != role]
            if owner is not None and not owner.knob.settable:
                reason = f"fixed by design: {owner.knob.name} (an implicit knob) in an {role} call"
            elif owner is None and others:
                reason = f"fixed by design: {others[0].knob.name} applies to {others[0].knob.role} calls, this is an {role} call"
        if reason is None:
            for lay in layers_at.get((path, line), []):
                if lay.kind == "construct" and same(lay.value, lay.knob.default):
                    reason = f"a config construction value equal to the registry default of {lay.knob.name}"
        if reason:
            accounted[reason.split(" reported")[0].split(":")[0].split(" of ")[0].split(" equal")[0]] += 1
            if args.verbose:
                print(f"  accounted   {path}:{line} {site['callee']}({name}={value}) -> {reason}")
        else:
            unaccounted.append(f"{path}:{line} {site['callee']}({name}={value})")
    for item in unaccounted:
        print(f"  UNACCOUNTED {item}")
    print(f"literal arguments: {len(literals)}; found {sum(found.values())} "
          f"({', '.join(f'{c} x{n}' for c, n in sorted(found.items()))}); accounted {sum(accounted.values())} "
          f"({'; '.join(f'{r} x{n}' for r, n in sorted(accounted.items()))}); unaccounted {len(unaccounted)}")


if __name__ == "__main__":
    main()
