"""Built-in simulated ptychography workload: simulator, PtychoPINN model, data module, inference."""

from .datamodule import PtychoDataModule
from .factory import build_workload
from .inference import reconstruct_and_report
from .model import PtychoPINNModule, build_optimizers, multistage_lr_factor, physics_weight
from .simulator import SimulatedData, SimulationSpec, naive_simulate_loop, simulate

__all__ = [
    "PtychoDataModule",
    "PtychoPINNModule",
    "SimulatedData",
    "SimulationSpec",
    "build_optimizers",
    "build_workload",
    "multistage_lr_factor",
    "naive_simulate_loop",
    "physics_weight",
    "reconstruct_and_report",
    "simulate",
]
