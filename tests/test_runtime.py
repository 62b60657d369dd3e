"""`ptycho-knobs train` / `drift`: resolution, located errors, dry-run read-back, real tiny fits.

Everything here builds real Lightning objects and trains real (tiny) models on CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from runtime_helpers import REGISTRY, ROOT, TINY, cli, write_yaml

# ---------------------------------------------------------------------------- help / flags


def test_train_help_lists_generated_knob_flags_without_importing_torch() -> None:
    code = (
        "import sys\n"
        "from ptycho_knobs.cli import main\n"
        f"try:\n    main(['--registry', {str(REGISTRY)!r}, 'train', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY' if {'torch', 'lightning'} & set(sys.modules) else 'LIGHT')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.rstrip().endswith("LIGHT")
    for flag in ("--early-stop-patience", "--ddp-static-graph", "--no-ddp-static-graph", "--output-dir", "--nphotons"):
        assert flag in out
    assert "Distributed training (DDP):" in out and "Data loading:" in out


def test_unknown_flag_is_exit_2_with_did_you_mean(tmp_path: Path) -> None:
    result = cli("train", "--early-stop-patiense", "3", "--print-config")
    assert result.exit_code == 2
    assert "unknown option --early-stop-patiense" in result.stderr and "--early-stop-patience" in result.stderr


# ---------------------------------------------------------------------------- precedence


@pytest.mark.parametrize("flags_first", [True, False], ids=["flags-first", "flags-last"])
def test_precedence_default_yaml_env_flag_with_provenance(tmp_path: Path, flags_first: bool) -> None:
    config = write_yaml(tmp_path, "epochs: 3\nlearning_rate: 0.01\nseed: 7\nearly_stop_patience: 9\n")
    flags = ["--epochs", "5", "--no-deterministic"]
    cfg = ["--config", str(config), "--print-config", "--format", "json"]
    env = {"PTYCHO_KNOBS_EPOCHS": "4", "PTYCHO_KNOBS_SEED": "8", "PTYCHO_KNOBS_NUM_WORKERS": "2"}
    result = cli("train", *(flags + cfg if flags_first else cfg + flags), env=env)
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout)["values"]
    assert values["epochs"] == {"value": 5, "source": "--epochs"}  # flag > env > yaml
    assert values["deterministic"] == {"value": False, "source": "--no-deterministic"}
    assert values["seed"] == {"value": 8, "source": "env PTYCHO_KNOBS_SEED"}  # env > yaml
    assert values["num_workers"] == {"value": 2, "source": "env PTYCHO_KNOBS_NUM_WORKERS"}
    assert values["learning_rate"] == {"value": 0.01, "source": "run.yaml:2"}
    assert values["early_stop_patience"] == {"value": 9, "source": "run.yaml:4"}
    assert values["val_split"] == {"value": 0.05, "source": "default"}


def test_print_config_provenance_is_yaml_with_source_comments(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, "epochs: 3\n")
    result = cli("train", "--config", str(config), "--print-config", "--provenance", "--epochs", "6")
    assert result.exit_code == 0
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines()}
    assert lines["epochs"].startswith("epochs: 6") and lines["epochs"].endswith("# --epochs")
    assert lines["val_split"].endswith("# default")


# ---------------------------------------------------------------------------- located errors

ERRORS = [
    ("unknown-key", "epochs: 2\nearly_stop_patiense: 3\n", "run.yaml:2:1", "did you mean 'early_stop_patience'"),
    ("wrong-type", "epochs: many\n", "run.yaml:1:9", "epochs"),
    ("out-of-bounds", "accelerator: cpu\nepochs: 0\n", "run.yaml:2:9", ">= 1"),
    ("choices", "object_class: spirals\n", "run.yaml:1:15", "must be one of"),
    ("literal-type", "precision: 8-true\n", "run.yaml:1:12", "bf16-mixed"),
    ("cross-knob-rule", "num_workers: 0\npersistent_workers: true\nprefetch_factor: null\n", "run.yaml:", "num_workers"),
    ("duplicate-key", "epochs: 2\nepochs: 3\n", "run.yaml:2:1", "duplicate"),
    ("python-tag", "epochs: !!python/object/apply:os.system ['true']\n", "run.yaml:1:9", "is not allowed"),
    ("python-tag-map", "data_args: !!python/object:os.PathLike {a: 1}\n", "run.yaml:1:12", "is not allowed"),
    ("list-for-int", "epochs: [1, 2]\n", "run.yaml:1:9", "[1, 2] (list) does not fit type int"),
]


@pytest.mark.parametrize(("text", "where", "says"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_run_yaml_errors_are_located_exit_2(tmp_path: Path, text: str, where: str, says: str) -> None:
    config = write_yaml(tmp_path, text)
    result = cli("train", "--config", str(config), "--print-config")
    assert result.exit_code == 2, result.output
    assert where in result.stderr and says in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("args", "where", "says"), [
    ("data_args: {N: 16, gridsize: 0}\n", "run.yaml:3:30", "BuiltinDataModule rejected its arguments: gridsize must be >= 1, got 0"),
    ("data_args: {N: 16, gridsize: two}\n", "run.yaml:3:30", "gridsize must be an integer >= 1, got 'two'"),
    ("data_args:\n  N: 7\n", "run.yaml:4:6", "N must be an even number >= 8"),
    ("data_args: {N: 16}\nmodel_args: {norm: weird}\n", "run.yaml:4:20", "PtychoPINNModule rejected its arguments: norm must be one of"),
    ("data_args: {N: 16}\nmodel_args: {channels: []}\n", "run.yaml:4:24", "channels must be a non-empty list of positive integers"),
    ("data_args: {N: 16, colour: red}\n", "run.yaml:3:28", "unexpected keyword argument 'colour'"),
    ("batch_size: -8\ndata_args: {N: 16}\n", "run.yaml:3:13", "batch_size: -8 must be >= 1"),
])
def test_constructor_rejections_are_located_at_their_args(tmp_path: Path, args: str, where: str, says: str) -> None:
    config = write_yaml(tmp_path, "objects_per_probe: 1\ndiff_per_object: 16\n" + args)
    result = cli("train", "--config", str(config), "--dry-run", "--output-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2, result.output
    assert where in result.stderr and says in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_bad_import_path_names_its_line(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, "accelerator: cpu\nmodel: no_such_module:Model\n")
    result = cli("train", "--config", str(config), "--dry-run", "--output-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "run.yaml:2:8" in result.stderr and "cannot import 'no_such_module:Model'" in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_without_cuda_is_refused_at_its_line(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, "epochs: 1\naccelerator: gpu\n")
    result = cli("train", "--config", str(config), "--dry-run")
    assert result.exit_code == 2 and "run.yaml:2:14" in result.stderr and "no CUDA GPU" in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_ddp_nccl_on_cpu_says_use_gloo(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, "accelerator: cpu\nstrategy: ddp\nn_devices: 2\nddp_backend: nccl\n")
    result = cli("train", "--config", str(config), "--dry-run")
    assert result.exit_code == 2 and "run.yaml:4:14" in result.stderr and "ddp_backend: gloo" in result.stderr


# ---------------------------------------------------------------------------- dry-run read-back


def dry_run_rows(tmp_path: Path, text: str) -> list[dict]:
    config = write_yaml(tmp_path, f"output_dir: {tmp_path / 'runs'}\n" + text)
    result = cli("train", "--config", str(config), "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    made = [p.name for p in (tmp_path / "runs").iterdir()] if (tmp_path / "runs").exists() else []
    assert made in ([], ["mlruns"]), "a dry run creates no run folder (MLflow's client creates its store)"
    return json.loads(result.stdout)


def test_dry_run_defaults_every_knob_lands(tmp_path: Path) -> None:
    # Execution knobs all at their registry defaults; only the simulation is made small.
    rows = dry_run_rows(tmp_path, "objects_per_probe: 1\ndiff_per_object: 16\ndata_args: {N: 16}\n")
    from ptycho_knobs import load_registry

    settable = {k.name for k in load_registry(REGISTRY).settable()}
    assert {r["knob"] for r in rows} == settable
    assert all(set(r) >= {"knob", "value", "source", "target", "readback"} for r in rows)
    assert [r for r in rows if r["status"] == "MISMATCH"] == []
    ok = {r["knob"] for r in rows if r["status"] == "ok"}
    assert {"epochs", "early_stop_patience", "num_workers", "pin_memory", "prefetch_factor", "seed", "learning_rate"} <= ok
    ddp = [r for r in rows if r["target"] and r["target"].startswith("DDPStrategy.")]
    assert ddp and all(r["status"] == "n/a" for r in ddp)  # one device: no DDP strategy to read


NON_DEFAULT = """\
epochs: 7
accelerator: cpu
n_devices: 2
strategy: ddp
check_val_every_n_epoch: 2
enable_checkpointing: true
quiet: true
deterministic: false
logger_backend: mlflow
precision: 64-true
num_nodes: 1
log_every_n_steps: 3
device: cpu
ddp_find_unused_parameters: true
ddp_static_graph: false
ddp_gradient_as_bucket_view: false
ddp_backend: gloo
disable_mlflow: false
experiment_name: parity-exp
notes: dry run with everything changed
model_name: tiny-pinn
checkpoint_monitor_metric: val_phase_mae
learning_rate: 0.0123
scheduler_type: multistage
stage_1_epochs: 1
stage_2_epochs: 2
stage_3_epochs: 3
physics_weight_schedule: linear
stage_3_lr_factor: 0.25
fine_tune_lr_factor: 0.3
gradient_clip_val: 0.5
num_workers: 2
accum_grad_batches: 3
pin_memory: false
persistent_workers: true
prefetch_factor: 3
shuffle_train: false
drop_last_batch: true
val_split: 0.25
val_split_seed: 7
early_stop_patience: 5
checkpoint_save_top_k: 2
checkpoint_mode: max
save_last_checkpoint: false
nphotons: 20000.0
objects_per_probe: 1
diff_per_object: 16
object_class: lines
beamstop_diameter: 2
middle_trim: 3
inference_batch_size: 17
pad_eval: false
reconstruction_window: 2
subsample_seed: 9
seed: 123
eca_encoder: true
cbam_encoder: true
cbam_bottleneck: true
cbam_decoder: true
eca_decoder: true
spatial_decoder: true
decoder_spatial_kernel: 5
do_stitching: true
flip_x: true
flip_y: true
transpose: true
reassembly_m: 12
batch_size: 4
data_args: {N: 16}
"""


def test_dry_run_non_default_every_knob_lands_including_ddp(tmp_path: Path) -> None:
    rows = dry_run_rows(tmp_path, NON_DEFAULT)
    from ptycho_knobs import load_registry

    settable = {k.name for k in load_registry(REGISTRY).settable()}
    set_here = {line.split(":")[0] for line in NON_DEFAULT.splitlines()} - {"data_args"} | {"output_dir"}
    assert set_here == settable, "the fixture must change every settable knob"
    bad = [r for r in rows if r["status"] != "ok"]
    assert bad == [], bad
    by = {(r["knob"], r["target"]): r for r in rows}
    assert by[("ddp_backend", "DDPStrategy.process_group_backend")]["readback"] == "gloo"
    assert by[("ddp_find_unused_parameters", "DDPStrategy.find_unused_parameters")]["readback"] is True
    assert by[("quiet", "Trainer.enable_progress_bar")]["readback"] is False
    assert by[("notes", "MLFlowLogger.tags")]["readback"] == "dry run with everything changed"
    assert all(r["source"].startswith("run.yaml:") for r in rows)


def test_readback_reports_a_knob_that_did_not_land(tmp_path: Path) -> None:
    from ptycho_knobs import load_registry
    from ptycho_knobs.runtime import readback
    from ptycho_knobs.runtime.harness import Harness, Options

    config = write_yaml(tmp_path, TINY + "early_stop_patience: 4\n")
    harness = Harness(load_registry(REGISTRY), Options(config=config, args=["--output-dir", str(tmp_path)]))
    harness.resolve()
    harness.seed()
    harness.instantiate()
    harness.materialize()
    harness.built.callbacks["early_stopping"].patience = 100  # what a hard-coded literal would do
    bad = readback.mismatches(readback.rows(harness))
    assert [(r.knob, r.value, r.readback) for r in bad] == [("early_stop_patience", 4, 100)]


# ---------------------------------------------------------------------------- real fits


def test_short_fit_writes_the_run_folder_and_never_overwrites_it(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, TINY + "epochs: 2\nlogger_backend: tensorboard\n")
    out = tmp_path / "runs"
    result = cli("train", "--config", str(config), "--output-dir", str(out), "--run-name", "first")
    assert result.exit_code == 0, result.output
    run = out / "first"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and any(n.startswith("epoch=") for n in ckpts)  # best + last
    metrics = (run / "metrics.csv").read_text().splitlines()
    assert "val_loss" in metrics[0] and len(metrics) >= 3
    snap = json.loads((run / "resolved_config.json").read_text())
    assert snap["config"]["values"]["epochs"] == {"value": 2, "source": "run.yaml:11"}
    assert {"torch", "lightning", "python"} <= set(snap["versions"]) and len(snap["registry_sha256"]) == 64
    assert "# run.yaml:11" in (run / "config.yaml").read_text()
    summary = json.loads((run / "summary.json").read_text())
    assert {"amplitude_mae", "phase_mae"} <= set(summary)
    assert (run / "reconstruction.png").stat().st_size > 1000
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((run / "status.json").read_text())["state"] == "finished"

    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    again = cli("train", "--config", str(config), "--output-dir", str(out), "--run-name", "first")
    assert again.exit_code == 2 and "already exists" in again.stderr and "--resume" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_example_run_yaml_resolves_and_every_knob_lands(tmp_path: Path) -> None:
    """The README's main job, built but not trained (it simulates its 256 patterns)."""
    result = cli("train", "--config", str(ROOT / "examples" / "run.yaml"), "--dry-run", "--output-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "runs").exists()


def test_gridsize_groups_train_end_to_end(tmp_path: Path) -> None:
    """data_args gridsize 2: grouped batches, the overlap-merged loss, the normal report."""
    config = write_yaml(tmp_path, TINY.replace("batch_size: 8\ndata_args: {N: 16}", "batch_size: 4\ndata_args: {N: 16, gridsize: 2}") + "epochs: 2\n")
    result = cli("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), "--run-name", "grouped")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "grouped"
    assert json.loads((run / "resolved_config.json").read_text())["config"]["data_args"]["gridsize"] == 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_patterns"] == 16 and summary["phase_mae"] > 0


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_resume_2_plus_2_epochs_equals_4_straight(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, TINY + "logger_backend: csv\ndeterministic: true\nepochs: 4\n")
    out = str(tmp_path / "runs")
    assert cli("train", "--config", str(config), "--output-dir", out, "--run-name", "straight").exit_code == 0
    assert cli("train", "--config", str(config), "--output-dir", out, "--run-name", "split", "--epochs", "2").exit_code == 0
    refused = cli("train", "--resume", str(tmp_path / "runs" / "split"), "--learning-rate", "0.1")
    assert refused.exit_code == 2 and "only --epochs" in refused.stderr
    resumed = cli("train", "--resume", str(tmp_path / "runs" / "split"), "--epochs", "4")
    assert resumed.exit_code == 0, resumed.output
    a = _weights(tmp_path / "runs" / "straight" / "checkpoints" / "last.ckpt")
    b = _weights(tmp_path / "runs" / "split" / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for key in a:
        x, y = (torch.view_as_real(t) if t.is_complex() else t.double() for t in (a[key], b[key]))
        assert torch.allclose(x, y, rtol=0, atol=1e-6), key
    assert (tmp_path / "runs" / "split" / "resolved_config.resume-1.json").is_file()


def test_nan_loss_stops_the_run_with_a_message(tmp_path: Path) -> None:
    text = ("model: custom_model:BoringRegressor\ndata: custom_model:BoringDataModule\n"
            "model_args: {fail_with_nan: true}\ndata_args: {size: 64}\n" + TINY.split("objects_per_probe")[0]
            + "epochs: 4\nlogger_backend: csv\n")
    config = write_yaml(tmp_path, text)
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        result = cli("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"))
    finally:
        sys.path.remove(str(ROOT / "examples"))
    assert result.exit_code == 1, result.output
    assert "training loss became nan at epoch 1" in result.stderr and "learning_rate" in result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "status.json").read_text())["state"] == "failed"


def test_custom_model_by_import_path_gets_knobs_and_injected_optimizer(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "custom_model.yaml").read_text()
    config = write_yaml(tmp_path, text.replace("output_dir: ptycho_runs", f"output_dir: {tmp_path / 'runs'}"))
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        dry = cli("train", "--config", str(config), "--dry-run", "--format", "json")
        assert dry.exit_code == 0, dry.output
        rows = {(r["knob"], r["target"]): r for r in json.loads(dry.stdout)}
        assert rows[("learning_rate", "optimizer.lr")]["readback"] == 0.01  # injected configure_optimizers
        assert rows[("val_split", "LightningDataModule.val_split")]["status"] == "ok"
        assert rows[("nphotons", "workload.nphotons")]["status"] == "unrouted"
        result = cli("train", "--config", str(config), "--run-name", "custom")
    finally:
        sys.path.remove(str(ROOT / "examples"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "custom" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "runs" / "custom" / "summary.json").exists()  # no built-in reconstruction


def test_mlflow_run_is_logged_to_a_local_store(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, TINY + "epochs: 1\nlogger_backend: mlflow\nexperiment_name: knobs-test\n"
                        "notes: hello\nmodel_name: tiny\n")
    out = tmp_path / "runs"
    assert cli("train", "--config", str(config), "--output-dir", str(out), "--run-name", "ml").exit_code == 0
    import mlflow

    client = mlflow.MlflowClient(f"file:{out / 'mlruns'}")
    experiment = client.get_experiment_by_name("knobs-test")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["notes"] == "hello" and run.data.tags["model_name"] == "tiny"
    assert "val_loss" in run.data.metrics and run.info.run_name == "ml"


# ---------------------------------------------------------------------------- drift


def test_drift_on_the_installed_libraries_finds_no_missing_argument() -> None:
    result = cli("drift")
    assert result.exit_code == 0, result.output
    assert "lightning" in result.stdout.splitlines()[0] and "0 missing" in result.stdout
    assert "optimizer.lr" in result.stdout  # pseudo-targets are listed as skipped


def test_drift_reports_a_renamed_argument(tmp_path: Path) -> None:
    text = REGISTRY.read_text().replace("target: Trainer.check_val_every_n_epoch", "target: Trainer.check_val_every_epoch")
    assert "Trainer.check_val_every_epoch" in text
    fixture = tmp_path / "knob_registry.yaml"
    fixture.write_text(text)
    from click.testing import CliRunner

    from ptycho_knobs.cli import main

    result = CliRunner().invoke(main, ["--registry", str(fixture), "drift", "--format", "json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    missing = [r for r in body["rows"] if r["status"] == "missing"]
    assert [r["target"] for r in missing] == ["Trainer.check_val_every_epoch"]
    assert body["versions"]["lightning"]


def test_drift_reports_a_changed_library_default(tmp_path: Path) -> None:
    result = cli("drift", "--format", "json")
    body = json.loads(result.stdout)
    differs = {r["target"] for r in body["rows"] if r["status"] == "default-differs"}
    assert "EarlyStopping.patience" in differs  # Lightning 3 vs registry 100
    assert result.exit_code == 0  # reported, not drift: the harness passes every routed value
    assert cli("drift", "--strict-defaults").exit_code == 1
