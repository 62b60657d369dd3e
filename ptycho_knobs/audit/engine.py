"""Run an audit: walk, pre-filter, scan (in a process pool, through the cache), apply rules,
suppressions and the baseline.

The order matters for speed. Every file is read (it has to be hashed anyway), but only a
file whose text mentions a watched class, a watched environment variable, `add_argument`,
or that a registry source names, is parsed. Parsed facts are cached by content hash under
a key of registry hash + tool version + watched names, so a warm run parses nothing.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ptycho_knobs import __version__
from ptycho_knobs.audit.callees import WatchSet, watch_set
from ptycho_knobs.audit.files import (  # shared with the fast path
    Entry,
    clear_inputs,
    default_cache_dir,
    display_path,
    note_input,
    read,
    walk_and_read,
)
from ptycho_knobs.audit.findings import FileFacts, Finding, Span
from ptycho_knobs.audit.index import AuditIndex, matches
from ptycho_knobs.audit.rule import AuditRule, FileContext, ProjectContext, all_rules
from ptycho_knobs.audit.scanner import Needs, scan_source
from ptycho_knobs.audit.spec import SpecStmt, parse_spec
from ptycho_knobs.cache import FactsCache as Cache  # plain data, authenticated, outside the tree
from ptycho_knobs.cache import cached_registry  # noqa: F401  (re-exported for the audit command)
from ptycho_knobs.registry import Registry


@dataclass
class Options:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    tf_config: Path | None = None
    jobs: int = 0  # 0: all cores
    cache: bool = True
    cache_dir: Path | None = None


@dataclass
class Stats:
    files: int = 0
    parsed: int = 0
    prefiltered: int = 0
    cached: int = 0
    suppressed: int = 0
    baselined: int = 0


@dataclass
class AuditResult:
    findings: list[Finding]
    stats: Stats
    internal_error: bool = False
    rules: list[type[AuditRule]] = field(default_factory=list)


# -- scanning, cached and in parallel --------------------------------------------------------


_WORKER: tuple[WatchSet, tuple[Needs, Needs]] | None = None


def _init_worker(watch: WatchSet, needs: tuple[Needs, Needs]) -> None:
    global _WORKER
    gc.disable()  # see _scan_all
    _WORKER = (watch, needs)


def _scan_job(job: tuple[bytes, bool]) -> FileFacts:
    assert _WORKER is not None
    watch, needs = _WORKER
    return _safe_scan(job[0], watch, needs[job[1]])


def _safe_scan(data: bytes, watch: WatchSet, needs: Needs) -> FileFacts:
    try:
        return scan_source(data, watch, needs)
    except Exception as exc:  # a scanner bug must not hide the rest of the tree
        return FileFacts(problem=("PK999", f"internal error while scanning: {type(exc).__name__}: {exc}", 1, 1))


class Prefilter:
    """Whether a file's bytes can matter: a watched name followed by `(` or `as`, a quoted
    watched environment variable, `add_argument`, a config class name, or a knob's attribute
    name used as an attribute, keyword or string (`.num_workers`, `num_workers=`,
    `'num_workers'`). Each needle is found with a plain substring search (memchr fast); a
    small regex anchored at each hit confirms it. (One alternation regex over the whole file
    is several times slower: it has no literal prefix to skip ahead with.)"""

    def __init__(self, watch: WatchSet, index: AuditIndex, knob_names: bool = True) -> None:
        # (needle, bytes before the needle where the confirming regex starts, the regex)
        self.checks: list[tuple[bytes, int, re.Pattern[bytes]]] = []
        for name in sorted(watch.short_names):
            n = name.encode()
            self.checks.append((n, 0, re.compile(rb"\b" + re.escape(n) + rb"\b\s*(?:\(|as\b)")))
        for env in sorted(index.env):
            e = env.encode()
            self.checks.append((e, 1, re.compile(rb"[\"']" + re.escape(e) + rb"[\"']")))
        self.checks.append((b"add_argument", 0, re.compile(rb"\badd_argument\b")))
        # a settings dataclass (`@dataclass class TrainingConfig:`): fields are layers, and what
        # `discover` proposes in a tree the registry does not know yet
        self.checks.append((b"@dataclass", 0, re.compile(
            rb"@dataclass\b[^\n]*\n(?:[ \t]*@[^\n]*\n)*[ \t]*class[ \t]+\w*(?:Config|Configuration|Settings|Options|Params|Hparams|HParams)\b")))
        for cls in sorted(index.config_classes):
            c = cls.encode()
            self.checks.append((c, 0, re.compile(rb"\b" + re.escape(c) + rb"\b")))
        for attr in sorted(index.registry._attrs) if knob_names else ():
            a = attr.encode()
            self.checks.append((a, 1, re.compile(rb"[.'\"]" + re.escape(a) + rb"\b|\b" + re.escape(a) + rb"\s*=[^=]")))

    def __call__(self, data: bytes) -> bool:
        for needle, back, pattern in self.checks:
            at = data.find(needle)
            while at >= 0:
                if at >= back and pattern.match(data, at - back):
                    return True
                at = data.find(needle, at + 1)
        return False


def needs_for(registry: Registry) -> Needs:
    return Needs(AuditIndex.build(registry).config_classes)


# -- the audit ------------------------------------------------------------------------------


def selected(rules: list[type[AuditRule]], options: Options) -> list[type[AuditRule]]:
    def hit(code: str, patterns: tuple[str, ...]) -> bool:
        return any(code.startswith(p) for p in patterns)

    return [r for r in rules if (not options.select or hit(r.CODE, options.select)) and not hit(r.CODE, options.ignore)]


def outside_entries(registry: Registry, roots: list[Path], entries: list[Entry]) -> tuple[list[Entry], tuple[Path, ...]]:
    """Registry source files and config modules outside the audited paths, read too (so their
    layers are compared), resolved against the registry's folder, each audited root's parent
    and the working directory (the first that has the file wins); plus those anchors."""
    anchors = tuple(dict.fromkeys([registry.path.resolve().parent, *(r.parent for r in roots), Path.cwd()]))
    inside = {Path(os.path.realpath(e.path)) for e in entries}  # realpath: a symlink loop must not raise
    # The audited package itself is what the user chose to audit: the rest of its folder (an
    # audit of ptycho_torch/odd/ leaves ptycho_torch/train.py out) is not read as a companion;
    # registered files in other top-level folders (ptycho/config/, specs/) are.
    packages = set()
    for root in roots:
        for base in (registry.path.resolve().parent, Path.cwd()):
            rel = os.path.relpath(os.path.realpath(root), os.path.realpath(base))
            if not rel.startswith("..") and rel != ".":
                packages.add(Path(os.path.realpath(base)) / Path(rel).parts[0])
    wanted = sorted({s.file for k in registry.knobs for s in k.sources} | {c.file for c in registry.configs})
    out: list[Entry] = []
    seen: set[Path] = set()
    for rel in wanted:
        if not rel.endswith(".py"):
            continue
        for anchor in anchors:
            path = Path(os.path.normpath(anchor / rel))
            if path.is_file():
                real = Path(os.path.realpath(path))
                if any(real == p or p in real.parents for p in packages):
                    break
                if real not in inside and real not in seen:
                    seen.add(real)
                    entry = Entry(path, display_path(path))
                    read(entry)
                    note_input(path, entry.data or b"")
                    out.append(entry)
                break
    return out, anchors


def read_spec(registry: Registry, anchors: tuple[Path, ...]) -> tuple[str, list[SpecStmt]] | None:
    """The registry's spec, parsed (None when the registry names none or it is not found)."""
    if registry.spec is None:
        return None
    for anchor in anchors:
        path = Path(os.path.normpath(anchor / registry.spec.file))
        if path.is_file():
            try:
                data = path.read_bytes()
                note_input(path, data)
                text = data.decode("utf-8")
            except (OSError, UnicodeDecodeError):
                return None
            return display_path(path), parse_spec(text)
    return None


def run_audit(paths: list[str], registry: Registry, options: Options, registry_shown: str | None = None) -> AuditResult:
    project, findings, stats, internal = build_project(paths, registry, options, registry_shown)
    rules = selected(all_rules(), options)
    return _run_rules(project, rules, findings, stats, internal, options)


def build_project(paths: list[str], registry: Registry, options: Options,
                  registry_shown: str | None = None) -> tuple[ProjectContext, list[Finding], Stats, bool]:
    """Walk, read, pre-filter and scan (through the cache): the project every rule (and
    `parity`, `discover`) looks at, plus the findings about files that could not be scanned."""
    clear_inputs()  # what this run reads beyond the walk (the fast path keys a replay on it)
    entries, roots = walk_and_read(paths)
    stats = Stats(files=len(entries))
    outside, anchors = outside_entries(registry, roots, entries)
    index = AuditIndex.build(registry)
    watch = watch_set(registry).with_subclasses([e.data for e in (*entries, *outside) if e.data])
    needs = needs_for(registry)
    source_files = index.source_files()
    # Full extraction (fallbacks, validations, branches, call sites, reads) is for the files
    # that state knobs: they name a config class of the registry, spell a knob's flag, or are
    # registered sources. Other files get the light one (watched calls, flags, fields,
    # environment reads), which is all the rules can use there. And a knob's bare name makes a
    # file worth parsing only in a tree that has a config class at all (not in someone else's
    # library that happens to say `num_workers`).
    classes = [c.encode() for c in index.config_classes]
    flags = {f.encode() for k in registry.settable() for f in (
        k.cli_flag, *(a.flag for a in k.cli_aliases), *(s.flag for s in k.sources if s.flag))}
    has_class = {e.path for e in (*entries, *outside) if e.data and any(c in e.data for c in classes)}
    wanted = Prefilter(watch, index, knob_names=bool(has_class))
    light = dataclasses.replace(needs, full=False)
    basenames = {f.rsplit('/', 1)[-1] for f in source_files}
    namespace = hashlib.sha256(
        f"{__version__}|{registry.sha256}|{watch.digest()}|{sorted(needs.config_classes)}".encode()).hexdigest()[:20]
    cache = Cache(options.cache_dir or default_cache_dir(roots), namespace) if options.cache else Cache(None, namespace)

    facts: dict[Path, FileFacts] = {}
    jobs: list[tuple[Entry, str, bool]] = []
    for entry in (*entries, *outside):
        if entry.data is None:
            continue
        is_source = entry.path.name in basenames and any(matches(PurePath(entry.path), f) for f in source_files)
        if not entry.data.strip():
            facts[entry.path] = FileFacts()
            continue
        if not is_source and not wanted(entry.data):
            stats.prefiltered += 1
            facts[entry.path] = FileFacts()
            continue
        full = is_source or entry.path in has_class or (
            b"--" in entry.data and not flags.isdisjoint(_QUOTED_FLAG.findall(entry.data)))
        key = hashlib.sha256(entry.data).hexdigest() + ("f" if full else "l")
        hit = cache.get(key)
        if hit is not None:
            stats.cached += 1
            facts[entry.path] = hit
        else:
            jobs.append((entry, key, full))
    stats.parsed = len(jobs)
    results = _scan_all([(e.data or b"", full) for e, _, full in jobs], watch, (light, needs), options.jobs)
    for (entry, key, _), result in zip(jobs, results, strict=False):
        facts[entry.path] = result
        if not result.problem or result.problem[0] != "PK999":
            cache.put(key, result)
    cache.save()

    findings: list[Finding] = []
    contexts: list[FileContext] = []
    display: dict[Path, str] = {}
    internal = False
    for entry in entries:
        display[entry.path] = entry.shown
        if entry.problem:
            findings.append(_meta(entry.shown, entry.problem[0], entry.problem[1], 1, 1))
            continue
        assert entry.data is not None
        if not entry.data.strip():
            if entry.path.name != "__init__.py":
                findings.append(_meta(entry.shown, "PK903", "file is empty", 1, 1))
            continue
        f = facts[entry.path]
        if f.problem:
            code, message, line, col = f.problem
            internal = internal or code == "PK999"
            findings.append(_meta(entry.shown, code, message, line, col))
            continue
        contexts.append(FileContext(entry.path, entry.shown, f, index))
    others = [FileContext(e.path, e.shown, facts[e.path], index) for e in outside
              if e.path in facts and not facts[e.path].problem]
    tf_shown = display_path(options.tf_config) if options.tf_config else ""
    project = ProjectContext(contexts, roots, index, registry_shown or display_path(registry.path),
                             options.tf_config, tf_shown, display, others, read_spec(registry, anchors), anchors,
                             complete_reads=bool(has_class))
    return project, findings, stats, internal


def _run_rules(project: ProjectContext, rules: list[type[AuditRule]], findings: list[Finding], stats: Stats,
               internal: bool, options: Options) -> AuditResult:
    codes = {r.CODE for r in rules}
    contexts = project.files
    instances = [r() for r in rules]
    per_file: dict[str, list[Finding]] = {}
    for ctx in contexts:
        for rule in instances:
            per_file.setdefault(ctx.shown, []).extend(rule.check_file(ctx))
    for rule in instances:
        for finding in rule.check_project(project):
            per_file.setdefault(finding.path, []).append(finding)
    suppressions = {ctx.shown: ctx.facts.suppressions for ctx in project.all_files}
    for shown, found in per_file.items():
        kept, used = _apply_suppressions(found, suppressions.get(shown, ()))
        stats.suppressed += len(found) - len(kept)
        findings.extend(kept)
        if "PK901" in codes and any(c.shown == shown for c in contexts):
            findings.extend(_unused(shown, suppressions.get(shown, ()), used, codes))
    for ctx in contexts:
        if ctx.shown not in per_file and "PK901" in codes:
            findings.extend(_unused(ctx.shown, ctx.facts.suppressions, set(), codes))
    meta_codes = {"PK900", "PK902", "PK903", "PK999"}
    findings = [f for f in findings if f.code in codes or (f.code in meta_codes and _meta_selected(f.code, options))]
    findings = dedupe(findings, rules)
    findings.sort(key=Finding.sort_key)
    return AuditResult(findings, stats, internal, rules)


def dedupe(findings: list[Finding], rules: list[type[AuditRule]]) -> list[Finding]:
    """One report per value: where several rules that judge a stated value (VALUE rules) report
    the same line about the same knob, the most specific (highest PRIORITY) keeps it. Rules
    about something else at that line (a field nothing reads, a spec line) are kept."""
    priority = {r.CODE: r.PRIORITY for r in rules if r.VALUE}
    best: dict[tuple[str, int, str], str] = {}
    for f in findings:
        if f.knob is not None and f.code in priority:
            key = (f.path, f.line, f.knob)
            held = best.get(key)
            if held is None or priority[f.code] > priority[held]:
                best[key] = f.code
    return [f for f in findings if f.knob is None or f.code not in priority or best[(f.path, f.line, f.knob)] == f.code]


def _meta_selected(code: str, options: Options) -> bool:
    if any(code.startswith(p) for p in options.ignore):
        return False
    return not options.select or any(code.startswith(p) for p in options.select) or code == "PK999"


def _meta(shown: str, code: str, message: str, line: int, col: int) -> Finding:
    from ptycho_knobs.audit.rules import meta

    return Finding(shown, line, col, line, code, meta.NAMES[code], None, message, text=message)


def _apply_suppressions(found: list[Finding], sups: tuple) -> tuple[list[Finding], set[int]]:
    kept: list[Finding] = []
    used: set[int] = set()
    for finding in found:
        hit = False
        if finding.scope:
            first, last = finding.scope
            for i, s in enumerate(sups):
                if first - 1 <= s.line <= last and (not s.codes or finding.code in s.codes):
                    used.add(i)
                    hit = True
        if not hit:
            kept.append(finding)
    return kept, used


def _unused(shown: str, sups: tuple, used: set[int], codes: set[str]) -> list[Finding]:
    from ptycho_knobs.audit.rules.meta import UnusedSuppression

    out = []
    for i, s in enumerate(sups):
        if i in used or (s.codes and not any(c in codes for c in s.codes)):
            continue
        what = ", ".join(s.codes) if s.codes else "any"
        out.append(UnusedSuppression().finding(
            shown, Span(s.line, s.col, s.line), None,
            f"unused suppression: no {what} finding here to ignore; remove the comment"))
    return out


POOL_MIN_BYTES = 2_500_000
_QUOTED_FLAG = re.compile(rb"""['"](--?[A-Za-z0-9][A-Za-z0-9_-]*)['"]""")


def _scan_all(jobs: list[tuple[bytes, bool]], watch: WatchSet, needs: tuple[Needs, Needs], n_jobs: int) -> list[FileFacts]:
    """Scan each (bytes, full) job with the light or the full needs."""
    workers = n_jobs or os.cpu_count() or 1
    size = sum(len(d) for d, _ in jobs)
    # A pool pays only for a few MB of source: on 2 shared cores, 1-2 MB (the Lightning tree's
    # 64 files) scan faster in process than through fork + pickling; at 3 MB the pool wins.
    if workers <= 1 or len(jobs) < 4 or size < POOL_MIN_BYTES:
        # Syntax trees hold no reference cycles (refcounting frees each one), but building
        # them sets off a cyclic collection every few hundred nodes: ~10% of parse time.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return [_safe_scan(d, watch, needs[full]) for d, full in jobs]
        finally:
            if collecting:
                gc.enable()
    workers = min(workers, len(jobs))
    from concurrent.futures import ProcessPoolExecutor  # ~15 ms of imports, only when a pool is used

    # Largest first, so one big file does not finish last on its own.
    order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][0]))
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(watch, needs)) as pool:
        done = list(pool.map(_scan_job, [jobs[i] for i in order], chunksize=max(1, len(jobs) // (workers * 4))))
    out: list[FileFacts] = [FileFacts()] * len(jobs)
    for i, result in zip(order, done, strict=False):
        out[i] = result
    return out
