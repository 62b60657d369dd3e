"""`train --resume` against hostile run folders: broken checkpoints, a second resume, a killed holder.

Every case is real: checkpoints are truncated or replaced on disk, the CLI runs as its
own process (so the exit code and every printed line are what a user sees), and the
concurrent cases start real concurrent processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runtime_helpers import LONG, TINY, cli, cli_process, cli_run, tree_state, wait_for_state, write_yaml

TORCH_HINT = "weights_only"  # torch's advice for a file that does not unpickle: load it with weights_only=False


def _trained(tmp_path: Path, epochs: int = 2) -> Path:
    """A finished tiny run (best and last checkpoints); returns its folder."""
    config = write_yaml(tmp_path, TINY + f"epochs: {epochs}\nlogger_backend: csv\n")
    result = cli("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "done")
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / "done"


def _older_than_last(run: Path) -> Path:
    """The best checkpoint, made older than last.ckpt so "newest" is unambiguous."""
    (best,) = [p for p in (run / "checkpoints").iterdir() if p.name.startswith("epoch=")]
    last = run / "checkpoints" / "last.ckpt"
    os.utime(best, ns=(last.stat().st_mtime_ns - 10**9,) * 2)
    return best


def test_truncated_last_ckpt_is_exit_2_naming_it_and_offering_one_that_loads(tmp_path: Path) -> None:
    run = _trained(tmp_path)
    best = _older_than_last(run)
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # an interrupted copy
    before = tree_state(run)
    result = cli_run("train", "--resume", str(run), "--epochs", "3", cwd=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert f"{last} is truncated or damaged" in result.stderr
    assert f"the newest checkpoint that loads is {best.name} (epoch " in result.stderr
    assert "--fallback-checkpoint" in result.stderr
    assert "Traceback" not in out and len(result.stderr.splitlines()) <= 3
    assert tree_state(run) == before, "a refused resume changes nothing on disk (status.json, resume-1/, snapshot, lock)"
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


@pytest.mark.parametrize("garbage", ["random", "zip-with-code"])
def test_garbage_checkpoint_never_suggests_weights_only_false(tmp_path: Path, garbage: str) -> None:
    run = _trained(tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    if garbage == "random":
        last.write_bytes(os.urandom(4096))
    else:  # a well-formed torch zip whose pickle names a class: loading it would run code
        torch.save({"state_dict": torch.nn.Linear(2, 2)}, last)
    for p in (run / "checkpoints").glob("epoch=*"):
        p.unlink()
    before = tree_state(run)
    result = cli_run("train", "--resume", str(run), cwd=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert str(last) in result.stderr and "no checkpoint in" in result.stderr
    expected = "is not a checkpoint" if garbage == "random" else "holds objects that a safe load refuses (torch.nn.modules.linear.Linear)"
    assert expected in result.stderr
    assert TORCH_HINT not in out and "Traceback" not in out
    assert tree_state(run) == before


def test_fallback_checkpoint_resumes_from_the_newest_that_loads(tmp_path: Path) -> None:
    run = _trained(tmp_path)
    best = _older_than_last(run)
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(b"")
    result = cli_run("train", "--resume", str(run), "--epochs", "3", "--fallback-checkpoint", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"warning: {last} is empty (0 bytes); resuming from {best.name}" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    newest = max((run / "checkpoints").glob("last*.ckpt"), key=lambda p: p.stat().st_mtime_ns)
    assert torch.load(newest, map_location="cpu", weights_only=True)["epoch"] == 2  # trained on to epoch 3
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


def test_checkpoint_flag_refuses_a_weights_only_file(tmp_path: Path) -> None:
    run = _trained(tmp_path)
    weights = tmp_path / "weights.ckpt"
    torch.save({"state_dict": torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]}, weights)
    result = cli("train", "--resume", str(run), "--checkpoint", str(weights))
    assert result.exit_code == 2
    assert "cannot be resumed from: it has no optimizer_states, loops, epoch, global_step" in result.stderr
    assert "the newest checkpoint that loads is" in result.stderr  # last.ckpt itself is fine


def test_a_checkpoint_of_another_model_fails_before_training_and_keeps_the_record(tmp_path: Path) -> None:
    """It loads, but Lightning cannot restore it into this model: exit 2, status and folder untouched."""
    run = _trained(tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    body = torch.load(last, map_location="cpu", weights_only=True)
    body["state_dict"] = {"net.other.weight": torch.zeros(3)}
    torch.save(body, last)
    before = tree_state(run)
    result = cli_run("train", "--resume", str(run), "--epochs", "3", cwd=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert f"{last} could not be restored" in result.stderr and "Traceback" not in out
    assert tree_state(run) == before


# ---------------------------------------------------------------------------- the run folder lock


@pytest.mark.slow
def test_second_resume_of_a_running_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, LONG)
    first = cli_process("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "r",
                        cwd=tmp_path)
    run = tmp_path / "runs" / "r"
    try:
        wait_for_state(run / "status.json", "running", first)
        first.send_signal(signal.SIGTERM)  # leaves last.ckpt; now two resumes race for the folder
        out, _ = first.communicate(timeout=120)
        assert first.returncode == 143, out
        resume = cli_process("train", "--resume", str(run), cwd=tmp_path)
        wait_for_state(run / "status.json", "running", resume)
        second = cli_run("train", "--resume", str(run), cwd=tmp_path)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"run folder {run} is in use by pid {resume.pid} on host {socket.gethostname()} since " in second.stderr
        assert "Traceback" not in second.stdout + second.stderr
        deadline = time.monotonic() + 240  # let it pass an epoch end, where ModelCheckpoint saves last.ckpt too
        while not list((run / "checkpoints").glob("epoch=*.ckpt")):
            assert resume.poll() is None and time.monotonic() < deadline, "the resume never finished an epoch"
            time.sleep(0.1)
        resume.send_signal(signal.SIGTERM)
        out, _ = resume.communicate(timeout=120)
        assert resume.returncode == 143, out
    finally:
        for proc in (first, locals().get("resume")):
            if proc is not None and proc.poll() is None:
                proc.kill()
    # one last.ckpt: no second writer, and ModelCheckpoint overwrote the one SIGTERM saved
    assert sorted(p.name for p in (run / "checkpoints").glob("last*")) == ["last.ckpt"]
    assert not (run / "run.lock").exists()


@pytest.mark.slow
def test_lock_of_a_killed_process_does_not_block_the_next_resume(tmp_path: Path) -> None:
    run = _trained(tmp_path)
    holder = cli_process("train", "--resume", str(run), "--epochs", "1000", cwd=tmp_path)
    lock = run / "run.lock"
    deadline = time.monotonic() + 240
    while not (lock.is_file() and lock.read_text().startswith(f'{{"pid": {holder.pid},')):
        assert holder.poll() is None and time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)
    holder.kill()  # SIGKILL while it holds the lock: no handler runs, the lock file stays behind
    holder.communicate(timeout=60)
    assert json.loads(lock.read_text())["pid"] == holder.pid
    result = cli_run("train", "--resume", str(run), "--epochs", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not lock.exists()


def test_lock_without_posix_locks_detects_a_dead_holder_on_this_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a file system without record locks the file is the lock: a dead holder here is stale, a live one is not."""
    from ptycho_knobs.runtime import runlock
    from ptycho_knobs.runtime.faults import RunInUse

    def unsupported(fd: int) -> None:
        raise runlock._Unsupported()

    monkeypatch.setattr(runlock, "_lockf", unsupported)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = {"host": socket.gethostname(), "since": 0, "command": "ptycho-knobs train"}
    (tmp_path / runlock.LOCK_FILE).write_text(json.dumps({**record, "pid": int(gone.stdout)}))
    lock = runlock.acquire(tmp_path)
    assert json.loads((tmp_path / runlock.LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / runlock.LOCK_FILE).write_text(json.dumps({**record, "pid": alive.pid}))
        with pytest.raises(RunInUse, match=f"in use by pid {alive.pid} on host"):
            runlock.acquire(tmp_path)
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.slow
def test_ddp_resume_restores_the_same_checkpoint_on_every_rank(tmp_path: Path) -> None:
    """The rank Lightning starts learns rank 0's checkpoint; one that started from scratch would desynchronise."""
    ddp = TINY + "epochs: 1\nstrategy: ddp\nn_devices: 2\nddp_backend: gloo\nddp_static_graph: false\nlogger_backend: csv\n"
    config = write_yaml(tmp_path, ddp)
    first = cli_run("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "d", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    run = tmp_path / "runs" / "d"
    steps = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]
    resumed = cli_run("train", "--resume", str(run), "--epochs", "3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 3 * steps)
