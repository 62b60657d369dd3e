"""SIGTERM, what SLURM and Kubernetes send at a time limit, to a real training process.

Before: exit 0 (Lightning's SIGTERMException is a SystemExit without a code), no
checkpoint at the signal, and status.json said `failed`. Now: last.ckpt saved, status
`interrupted` with the signal, exit 143 (128 + SIGTERM) so a scheduler requeues it, and
`--resume` continues from there. Under DDP the ranks agree to stop after the same step.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from runtime_helpers import LONG, cli_process, wait_for_state, write_yaml

pytestmark = pytest.mark.slow


def _stopped(run: Path, out: str, returncode: int) -> dict:
    assert returncode == 143, out
    assert out.count("stopped by SIGTERM at epoch") == 1 and "--resume" in out and "Traceback" not in out, out
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert {"state_dict", "optimizer_states", "loops"} <= set(ckpt)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["signal"] == "SIGTERM", status
    assert not (run / "run.lock").exists()
    return ckpt


def test_sigterm_saves_last_checkpoint_exits_143_and_resume_continues(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, LONG)
    proc = cli_process("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "t", cwd=tmp_path)
    run = tmp_path / "runs" / "t"
    wait_for_state(run / "status.json", "running", proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    first = _stopped(run, out, proc.returncode)

    resumed = cli_process("train", "--resume", str(run), cwd=tmp_path)
    wait_for_state(run / "status.json", "running", resumed)
    assert resumed.poll() is None
    resumed.send_signal(signal.SIGTERM)
    out, _ = resumed.communicate(timeout=120)
    second = _stopped(run, out, resumed.returncode)
    assert second["global_step"] >= first["global_step"], "the resume went on from the saved step"
    assert "Restored all states from the checkpoint" in out


DDP = LONG + "strategy: ddp\nn_devices: 2\nddp_backend: gloo\nddp_static_graph: false\n"


@pytest.mark.parametrize("target", ["process-group", "rank-0-only"])
def test_ddp_sigterm_stops_every_rank_at_one_step_and_saves_once(tmp_path: Path, target: str) -> None:
    """SLURM signals the whole group; Kubernetes signals PID 1 only: both end with one checkpoint and exit 143."""
    config = write_yaml(tmp_path, DDP)
    proc = cli_process("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "d",
                       cwd=tmp_path, start_new_session=True)
    run = tmp_path / "runs" / "d"
    try:
        wait_for_state(run / "status.json", "running", proc)
        if target == "process-group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _stopped(run, out, proc.returncode)
    assert "Connection closed" not in out and "Received SIGTERM" not in out, out
