"""A seeded, deterministic run gives the same numbers every time on one machine.

What leaked in was torch's intra-op thread count: it splits reductions (convolution
weight gradients, sums over a batch) among its threads, and takes the count from
OMP_NUM_THREADS / MKL_NUM_THREADS when set, so the same command gave another best epoch
and another reconstruction depending on the environment it ran in. The two runs here
differ in exactly that (and in their run names and start times), with the README
example's model shape (gridsize 2 groups, U-Net, log1p) at a tiny size.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_helpers import cli_run, write_yaml

from ptycho_knobs.runtime.machine import usable_cores

pytestmark = pytest.mark.slow

SMALL_EXAMPLE = """\
accelerator: cpu
quiet: true
num_workers: 0
persistent_workers: false
prefetch_factor: null
pin_memory: false
objects_per_probe: 1
diff_per_object: 64
object_class: gaussian_field
batch_size: 8
log_every_n_steps: 4
data_args: {N: 32, gridsize: 2}
model_args: {channels: [8, 16, 32], skip_connections: true, input_transform: log1p}
epochs: 3
logger_backend: csv
"""


@pytest.mark.skipif(usable_cores() < 2, reason="one core: every run already has one thread")
def test_two_seeded_runs_in_different_thread_environments_give_the_same_summary(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, SMALL_EXAMPLE)
    runs = tmp_path / "runs"
    one = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name, env in (("a", None), ("b", one)):
        result = cli_run("train", "--config", str(config), "--output-dir", str(runs), "--run-name", name, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    a, b = runs / "a", runs / "b"
    assert (a / "summary.json").read_bytes() == (b / "summary.json").read_bytes()
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    assert sorted(p.name for p in (a / "checkpoints").iterdir()) == sorted(p.name for p in (b / "checkpoints").iterdir())
    recorded = [json.loads((r / "resolved_config.json").read_text())["runtime"]["torch_threads"] for r in (a, b)]
    assert recorded == [usable_cores()] * 2


def test_non_deterministic_runs_keep_the_environments_thread_count(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, SMALL_EXAMPLE.replace("epochs: 3", "epochs: 1") + "deterministic: false\n")
    result = cli_run("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "n",
                     cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((tmp_path / "runs" / "n" / "resolved_config.json").read_text())["runtime"] == {}
