"""Refuse what this machine cannot run, before anything heavy starts, at the knob's run.yaml line.

Lightning checks none of this up front: `accelerator: gpu` without CUDA, or DDP with nccl
on CPU, fail after processes have started, and `n_devices: 9999` on CPU starts 9999 gloo
processes (hundreds of processes and gigabytes before anything fails). Runs for both the
dry run and the real run.
"""

from __future__ import annotations

import os
from typing import Any

from ptycho_knobs.errors import UsageError
from ptycho_knobs.runtime.resolve import RunConfig
from ptycho_knobs.runtime.routing import RoutingTable


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask: what taskset, cgroups or SLURM granted)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check(run: RunConfig, values: dict[str, Any], table: RoutingTable) -> None:
    import torch

    from ptycho_knobs.runtime.build import DDP_STRATEGIES, strategy_name

    trainer = table.kwargs("Trainer", values)
    accelerator, devices = trainer["accelerator"], trainer["devices"]
    if accelerator == "gpu" and not torch.cuda.is_available():
        raise located(run, "accelerator", "accelerator 'gpu' but this machine has no CUDA GPU",
                      "use accelerator: cpu (or auto) here")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise located(run, "accelerator", "accelerator 'mps' but MPS is not available here", "use accelerator: cpu")
    on_gpu = accelerator == "gpu" or (accelerator == "auto" and torch.cuda.is_available())
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()
                                      and not torch.backends.mps.is_available())
    _check_device_count(run, table, devices, on_gpu, on_cpu)
    ddp = table.kwargs("DDPStrategy", values)
    if strategy_name(values, table) in DDP_STRATEGIES and not on_gpu and ddp.get("process_group_backend") == "nccl":
        knob = table.knob_for("DDPStrategy.process_group_backend")
        raise located(run, knob.name if knob else "strategy",
                      "ddp with process_group_backend 'nccl' needs CUDA GPUs, and this run is on CPU",
                      f"set {knob.name if knob else 'the backend'}: gloo for DDP on CPU")


def _check_device_count(run: RunConfig, table: RoutingTable, devices: Any, on_gpu: bool, on_cpu: bool) -> None:
    """One process per device: more GPUs than torch sees, or more CPU processes than cores, cannot run."""
    import torch

    if not isinstance(devices, int) or devices <= 1:
        return
    knob = table.knob_for("Trainer.devices")
    name = knob.name if knob else "devices"
    if on_gpu:
        count = torch.cuda.device_count()
        if devices > count:
            raise located(run, name, f"{name} {devices} asks for {devices} GPUs, but torch sees {count} here",
                          f"set {name} to at most {count} (check CUDA_VISIBLE_DEVICES)")
    elif on_cpu:
        cores = usable_cores()
        if devices > cores:
            raise located(run, name, f"{name} {devices} asks for {devices} CPU processes, but this process may use "
                                     f"{cores} core{'s' if cores != 1 else ''}",
                          f"set {name} to at most {cores}: each DDP process on CPU needs a core of its own")


def located(run: RunConfig, knob: str, message: str, hint: str) -> Exception:
    """A HarnessError at the knob's run.yaml line when it came from run.yaml; else naming its source."""
    from ptycho_knobs.runtime.faults import HarnessError

    err = run.error(knob, message, hint)
    if isinstance(err, UsageError):
        source = run.values[knob].source if knob in run.values else "default"
        return HarnessError(f"{message} ({knob} from {source}); {hint}")
    return err
