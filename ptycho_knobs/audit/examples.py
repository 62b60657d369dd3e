"""Run a rule's VALID / INVALID examples: the registry they share and the runner.

Each example is a small `ptycho_torch/example.py` audited against `EXAMPLE_REGISTRY`
below, with only the example's own rule selected, so examples never see each other's
findings. The tests and the rules reference both go through `run_example`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ptycho_knobs.audit.findings import Finding
from ptycho_knobs.audit.rule import AuditRule, Invalid, Valid

EXAMPLE_FILE = "ptycho_torch/example.py"
TF_CONFIG_FILE = "ptycho/config/config.py"
SPEC_FILE = "specs/spec.md"

EXAMPLE_REGISTRY = """\
schema_version: 1
callees:
  Trainer:
    qualified: [lightning.pytorch.Trainer, lightning.Trainer, pytorch_lightning.Trainer]
  EarlyStopping:
    qualified: [lightning.pytorch.callbacks.EarlyStopping, pytorch_lightning.callbacks.EarlyStopping]
    positional: [monitor, min_delta, patience]
  DDPStrategy:
    qualified: [lightning.pytorch.strategies.DDPStrategy]
  DataLoader:
    qualified: [torch.utils.data.DataLoader]
    positional: [dataset, batch_size, shuffle]
  seed_everything:
    qualified: [lightning.seed_everything, lightning.pytorch.seed_everything]
    positional: [seed, workers]
configs:
  - {class: PyTorchExecutionConfig, file: ptycho_torch/example.py}
knobs:
  - name: early_stop_patience
    catalog_name: patience
    category: checkpointing
    home: execution
    type: int
    default: 100
    purpose: Epochs without improvement before stopping.
    sources:
      - {file: ptycho_torch/example.py, line: 4, callee: EarlyStopping, keyword: patience}
    target: EarlyStopping.patience
  - name: check_val_every_n_epoch
    catalog_name: check_val_every_n_epoch
    category: lightning_trainer
    home: execution
    type: int
    default: 1
    purpose: Validate every N epochs.
    target: Trainer.check_val_every_n_epoch
  - name: quiet
    catalog_name: enable_progress_bar
    category: lightning_trainer
    home: execution
    type: bool
    default: false
    purpose: Hide the progress bar.
    field_aliases: [{name: enable_progress_bar, invert: true}]
    target: [{path: Trainer.enable_progress_bar, invert: true}]
  - name: ddp_backend
    catalog_name: process_group_backend
    category: distributed
    home: execution
    type: Literal['nccl', 'gloo']
    default: nccl
    purpose: DDP backend.
    target: DDPStrategy.process_group_backend
  - name: ddp_find_unused_parameters
    catalog_name: find_unused_parameters
    category: distributed
    home: execution
    type: bool
    default: false
    purpose: Find unused parameters.
    target: DDPStrategy.find_unused_parameters
  - name: pin_memory
    catalog_name: pin_memory
    category: data_loading
    home: execution
    type: bool
    default: true
    purpose: Pin host memory.
    target: DataLoader.pin_memory
  - name: num_workers
    catalog_name: num_workers
    category: data_loading
    home: training
    type: int
    default: 4
    purpose: Loader worker processes.
    sources:
      - {file: ptycho_torch/example.py, line: 5, field: TrainingConfig.num_workers}
    target: DataLoader.num_workers
  - name: scheduler_type
    catalog_name: scheduler
    category: optimization
    home: training
    type: str
    default: default
    purpose: Learning-rate schedule.
    sources:
      - {file: ptycho_torch/example.py, line: 6, field: TrainingConfig.scheduler}
  - name: learning_rate
    catalog_name: learning_rate
    category: optimization
    home: training
    type: float
    default: 0.001
    purpose: Learning rate.
    sources:
      - {file: ptycho_torch/example.py, line: 7, field: TrainingConfig.learning_rate}
  - name: rank
    catalog_name: RANK
    category: distributed
    home: env
    type: int
    default: 0
    purpose: Global rank.
    sources:
      - {file: ptycho_torch/example.py, line: 3, env: RANK}
  - name: seed
    catalog_name: seed
    category: reproducibility
    home: execution
    type: int
    default: 42
    purpose: Global seed.
    target: seed_everything.seed
  - name: pythonhashseed
    catalog_name: PYTHONHASHSEED
    category: reproducibility
    home: env
    type: str
    default: "42"
    purpose: Hash seed.
  - name: disable_mlflow
    catalog_name: disable_mlflow
    category: mlflow
    home: execution
    type: bool
    default: false
    purpose: Turn MLflow off.
    sources:
      - {file: ptycho_torch/example.py, line: 8, flag: --disable_mlflow}
  - name: epochs
    catalog_name: max_epochs
    aliases: [max_epochs, nepochs]
    category: lightning_trainer
    home: training
    type: int
    default: 100
    purpose: Maximum epochs.
    tf: {field: TrainingConfig.nepochs, mapping: renamed, default: 50}
    target: Trainer.max_epochs
  - name: n_devices
    catalog_name: n_devices
    category: lightning_trainer
    home: training
    type: int
    default: 1
    purpose: Devices.
    tf: {field: TrainingConfig.n_devices, mapping: same}
  - name: output_dir
    catalog_name: default_root_dir
    category: lightning_trainer
    home: training
    type: path
    default: runs
    purpose: Output folder.
    tf: {field: TrainingConfig.output_dir, mapping: same, default: outputs,
         divergence: "TF writes one folder; the harness nests one per run."}
  - name: probe_scale
    catalog_name: probe_scale
    category: architecture
    home: model
    type: float
    default: 4.0
    purpose: Probe scale.
    tf: {field: ModelConfig.probe_scale, mapping: same}
  - name: shuffle_val
    catalog_name: shuffle (validation)
    category: data_loading
    home: implicit
    type: bool
    default: false
    purpose: The validation set is never shuffled.
    sources:
      - {file: ptycho/loaders.py, line: 2, callee: DataLoader, keyword: shuffle}
"""


def run_example(rule: type[AuditRule], example: Valid | Invalid) -> list[Finding]:
    """Audit the example in a scratch tree with only `rule` selected; the findings."""
    from ptycho_knobs.audit.engine import Options, run_audit
    from ptycho_knobs.registry import load_registry

    with tempfile.TemporaryDirectory(prefix="pk-example-") as tmp:
        root = Path(tmp)
        target = root / EXAMPLE_FILE
        target.parent.mkdir(parents=True)
        target.write_text(example.code, encoding="utf-8")
        registry_text = EXAMPLE_REGISTRY
        if example.spec is not None:
            spec = root / SPEC_FILE
            spec.parent.mkdir(parents=True)
            spec.write_text(example.spec, encoding="utf-8")
            registry_text = registry_text.replace("knobs:\n", f"spec: {{file: {SPEC_FILE}}}\nknobs:\n", 1)
        (root / "knob_registry.yaml").write_text(registry_text, encoding="utf-8")
        tf = None
        if example.tf_config is not None:
            tf = root / TF_CONFIG_FILE
            tf.parent.mkdir(parents=True)
            tf.write_text(example.tf_config, encoding="utf-8")
        registry = load_registry(root / "knob_registry.yaml")
        here = os.getcwd()
        os.chdir(root)
        try:
            # Unused suppressions are judged against every rule; the others run alone.
            select = () if rule.CODE == "PK901" else (rule.CODE,)
            result = run_audit(["ptycho_torch"], registry, Options(select=select, tf_config=tf, cache=False, jobs=1))
        finally:
            os.chdir(here)
        return [f for f in result.findings if f.code == rule.CODE]
