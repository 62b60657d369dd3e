"""Benchmark `ptycho-knobs fix` on the PtychoPINN snapshot, as a ratio of the audit's time.

One run each, whole-process wall time of a subprocess, in a scratch copy of the tree (the
snapshot is GPL test data: it is copied to a temp folder, never written in place), every run
without the audit cache so each one parses what it needs:
  audit:        `ptycho-knobs audit ptycho_torch/ --no-cache`
  fix:          `ptycho-knobs fix ptycho_torch/ --no-cache`          (the diff; writes nothing)
  fix --write:  `ptycho-knobs fix ptycho_torch/ --no-cache --write`  (in the copy)
`fix` audits first, then runs libcst only on the files whose edits can be fixed (an `ast`
prescreen leaves the rest), so `fix - audit` is the price of the libcst passes.

    python benchmarks/bench_fix.py [--tree /work/shared/ptychopinn-aaa014e] [--registry knob_registry.yaml]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(os.environ.get("PTYCHO_KNOBS_SNAPSHOT", "/work/shared/ptychopinn-aaa014e"))


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    return time.perf_counter() - start, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=SNAPSHOT, help="a PtychoPINN checkout (default: the snapshot)")
    parser.add_argument("--registry", type=Path, default=ROOT / "knob_registry.yaml")
    args = parser.parse_args()
    if not (args.tree / "ptycho_torch").is_dir():
        sys.exit(f"no ptycho_torch/ under {args.tree}")
    exe = shutil.which("ptycho-knobs", path=str(Path(sys.executable).parent)) or "ptycho-knobs"
    with tempfile.TemporaryDirectory(prefix="bench-fix-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(args.tree, tree, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        env = {**os.environ, "PTYCHO_KNOBS_CACHE_DIR": str(Path(tmp) / "cache")}
        base = [exe, "--registry", str(args.registry.resolve())]
        files = sum(1 for _ in (tree / "ptycho_torch").rglob("*.py"))
        lines = sum(p.read_bytes().count(b"\n") for p in (tree / "ptycho_torch").rglob("*.py"))
        audit_s, audit = timed([*base, "audit", "ptycho_torch/", "--no-cache"], tree, env)
        fix_s, fix = timed([*base, "fix", "ptycho_torch/", "--no-cache"], tree, env)
        write_s, write = timed([*base, "fix", "ptycho_torch/", "--no-cache", "--write"], tree, env)
    for name, proc in (("audit", audit), ("fix", fix), ("fix --write", write)):
        if proc.returncode not in (0, 1):
            sys.exit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr}")
    print(f"tree: {args.tree}/ptycho_torch ({files} files, {lines} lines)")
    print(f"audit:        {audit_s:6.2f} s   {audit.stderr.strip().splitlines()[-1]}")
    print(f"fix:          {fix_s:6.2f} s   {fix.stderr.strip().splitlines()[0]}")
    print(f"fix --write:  {write_s:6.2f} s   {write.stderr.strip().splitlines()[0]}")
    print(f"ratio fix / audit: {fix_s / audit_s:.1f}x   (fix --write / audit: {write_s / audit_s:.1f}x)")


if __name__ == "__main__":
    main()
