"""Start-up time of the light verbs against `python -c "import click, yaml, jinja2"`.

Runs each command N times as a subprocess, interleaved (so drift in machine load hits
every command alike), and prints the median wall time and its ratio to the baseline.
Target: `--help` at most 1.5x the baseline.

    python benchmarks/bench_cli_startup.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
COMMANDS = {
    "baseline: import click, yaml, jinja2": [PY, "-c", "import click, yaml, jinja2"],
    "ptycho-knobs --help": [PY, "-m", "ptycho_knobs", "--help"],
    "ptycho-knobs knobs list": [PY, "-m", "ptycho_knobs", "knobs", "list"],
    "ptycho-knobs generate --check": [PY, "-m", "ptycho_knobs", "generate", "--check"],
}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(n):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["baseline: import click, yaml, jinja2"])
    print(f"median of {n} runs each (interleaved), python {sys.version.split()[0]}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<40} {median * 1000:7.1f} ms  {median / base:5.2f}x")


if __name__ == "__main__":
    main()
