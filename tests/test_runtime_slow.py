"""Multi-process runtime tests: Ctrl-C during fit, DDP with 2 CPU processes (gloo), torchrun.

Each starts the real console script as a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runtime_helpers import CLI, REGISTRY, TINY, cli_process, subprocess_env, write_yaml

pytestmark = pytest.mark.slow


def _wait_for_state(path: Path, state: str, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and json.loads(path.read_text())["state"] == state:
            return
        if proc.poll() is not None:
            pytest.fail(f"train exited early ({proc.returncode}):\n{proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"{path} never reached {state!r}")


def test_ctrl_c_saves_last_checkpoint_and_exits_130(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, TINY.replace("diff_per_object: 16", "diff_per_object: 400") + "epochs: 1000\nlogger_backend: csv\n")
    proc = cli_process("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "cc", cwd=tmp_path)
    run = tmp_path / "runs" / "cc"
    _wait_for_state(run / "status.json", "running", proc)  # training has started: a marker, not a sleep
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted (Ctrl-C)" in out and "--resume" in out and "Traceback" not in out
    assert (run / "checkpoints" / "last.ckpt").is_file()
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert "state_dict" in ckpt and "optimizer_states" in ckpt
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"


# gridsize 2: grouped batches (and the overlap-merged loss) through DistributedSampler
DDP = TINY.replace("batch_size: 8\ndata_args: {N: 16}", "batch_size: 4\ndata_args: {N: 16, gridsize: 2}") + """\
epochs: 2
strategy: ddp
n_devices: 2
ddp_backend: gloo
ddp_static_graph: false
logger_backend: csv
"""


def _check_ddp_run(run: Path, out: str) -> None:
    assert (run / "checkpoints" / "last.ckpt").is_file(), out
    assert (run / "summary.json").is_file() and (run / "reconstruction.png").is_file()
    snap = json.loads((run / "resolved_config.json").read_text())
    assert snap["config"]["values"]["n_devices"]["value"] == 2
    assert snap["config"]["data_args"]["gridsize"] == 2
    # one snapshot, one run folder: the second rank did not make its own
    assert len([p for p in run.parent.iterdir() if p.is_dir() and p.name != "mlruns"]) == 1
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 1


def test_ddp_two_cpu_processes_with_gloo(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, DDP)
    proc = cli_process("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), cwd=tmp_path)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    _check_ddp_run(run, out)
    assert "Initializing distributed: GLOBAL_RANK: 1" in out or "MEMBER: 2/2" in out


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="torchrun not installed")
def test_torchrun_two_processes_agree_on_one_run_folder(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, DDP)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(CLI), "--registry", str(REGISTRY),
                           "train", "--config", str(config), "--output-dir", str(tmp_path / "runs")],
                          cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert run.name.startswith("torchrun-")
    _check_ddp_run(run, out)


def test_ddp_nan_on_one_rank_stops_every_rank_with_one_message(tmp_path: Path) -> None:
    """Rank 1 alone goes non-finite: both ranks must stop at that step (no hang, no traceback)."""
    text = ("model: custom_model:BoringRegressor\ndata: custom_model:BoringDataModule\n"
            "model_args: {fail_with_nan: true, nan_rank: 1}\ndata_args: {size: 64}\n" + TINY.split("objects_per_probe")[0]
            + "epochs: 4\nlogger_backend: csv\nstrategy: ddp\nn_devices: 2\nddp_backend: gloo\nddp_static_graph: false\n")
    config = write_yaml(tmp_path, text)
    proc = cli_process("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "nan", cwd=tmp_path)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 1, out
    assert out.count("error: training loss became nan on rank 1 at epoch 1") == 1, out
    assert "Traceback" not in out and "Connection closed" not in out
    status = json.loads((tmp_path / "runs" / "nan" / "status.json").read_text())
    assert status["state"] == "failed" and "non-finite" in status["error"]


def test_ddp_ctrl_c_on_the_process_group_saves_once_and_exits_130(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches every process of the group: rank 0 saves and reports, rank 1 exits quietly."""
    config = write_yaml(tmp_path, DDP.replace("diff_per_object: 16", "diff_per_object: 400").replace("epochs: 2", "epochs: 1000"))
    proc = cli_process("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "cc",
                       cwd=tmp_path, start_new_session=True)
    run = tmp_path / "runs" / "cc"
    _wait_for_state(run / "status.json", "running", proc)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert out.count("interrupted (Ctrl-C)") == 1 and "saved " in out and "Traceback" not in out, out
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"

