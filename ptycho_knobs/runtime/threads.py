"""The intra-op thread count, which a deterministic run's numbers depend on.

torch splits its reductions (convolution weight gradients, sums over a batch) among its
intra-op threads, so one seeded run at 1 and at 2 threads ends with different weights and
a different best epoch. torch takes the count from OMP_NUM_THREADS / MKL_NUM_THREADS when
they are set, else from the cores; a variable exported by a shell profile, a module system
or a launcher thus changed the result of a "deterministic" run on the same machine.

So, with `deterministic` on, a single-process run pins the count to the cores this process
may use (its CPU affinity: what taskset, cgroups or SLURM granted), whatever the
environment says, and the run folder records it (`resolved_config.json`, `runtime`); a
resume uses the recorded count, so 2 + 2 epochs still equal 4 elsewhere. Multi-process
runs keep their launcher's policy (Lightning and torchrun give each process its share).
"""

from __future__ import annotations

from ptycho_knobs.runtime.machine import usable_cores

RECORD_KEY = "torch_threads"


def pin(*, deterministic: bool, single_process: bool, recorded: int | None) -> int | None:
    """Set torch's intra-op thread count for a deterministic single-process run; returns what was pinned."""
    import torch

    if not (deterministic and single_process):
        return None
    count = recorded if isinstance(recorded, int) and recorded > 0 else usable_cores()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
