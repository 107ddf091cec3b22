"""The generated Triton repository: every config parses with Triton's schema and matches the export specs."""

from __future__ import annotations

import json

import pytest
from tritonclient.grpc import model_config_pb2

from swintormer.errors import SwintormerError
from swintormer.export.specs import component_specs
from swintormer.model import DeblurModel
from swintormer.serving.config import parse_config
from swintormer.serving.dtypes import config_type
from swintormer.serving.repository import MANIFEST, RepositoryPlan, model_configs, write_repository
from swintormer.serving.steps import ServingLimits
from swintormer.tiling import TilingConfig


def _plan(tmp_path, flavour: str, variant: str) -> RepositoryPlan:
    model = DeblurModel.build(variant)
    specs = component_specs(model, 256, 6)
    suffix = ".plan" if flavour == "gpu" else ".onnx"
    artifacts = {}
    for name in specs:
        artifacts[name] = tmp_path / f"{name}{suffix}"
        artifacts[name].write_bytes(b"placeholder: configs are what is checked here")
    return RepositoryPlan(flavour, specs, artifacts, ServingLimits(model.in_channels), model.prior if model.has_prior else None,
                          model.scheduler if model.has_prior else None, variant)


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
@pytest.mark.parametrize("variant", ["swintormer-tiny", "swintormer-tiny-prior", "swintormer-dpdd"])
def test_configs_parse_and_match_the_specs(tmp_path, flavour, variant):
    plan = _plan(tmp_path, flavour, variant)
    names = write_repository(tmp_path / "repo", plan)
    for name in names:
        cfg = parse_config(tmp_path / "repo" / name / "config.pbtxt")  # Triton's own protobuf schema
        assert cfg.name == name
    for component, spec in plan.specs.items():
        cfg = parse_config(tmp_path / "repo" / component / "config.pbtxt")
        assert cfg.max_batch_size == spec.max_batch
        if flavour == "gpu":
            assert cfg.platform == "tensorrt_plan" and cfg.instance_group[0].kind == cfg.instance_group[0].KIND_GPU
            assert (tmp_path / "repo" / component / "1" / "model.plan").is_file()
        else:
            assert cfg.backend == "python" and (tmp_path / "repo" / component / "1" / "model.onnx").is_file()
        for tensors, entries in ((spec.inputs, cfg.input), (spec.outputs, cfg.output)):
            assert [e.name for e in entries] == [t.name for t in tensors]  # only names the graphs/engines expose
            for t, e in zip(tensors, entries):
                assert e.data_type == model_config_pb2.DataType.Value(config_type(t.dtype))
                dims = list(e.reshape.shape) if e.HasField("reshape") else list(e.dims)
                assert dims == [d for d in t.shape[1:]], (component, t.name)
    ens = parse_config(tmp_path / "repo" / "deblur_uint8" / "config.pbtxt")
    assert [s.model_name for s in ens.ensemble_scheduling.step] == ["pipeline"]
    pipeline = parse_config(tmp_path / "repo" / "pipeline" / "config.pbtxt")
    assert pipeline.instance_group[0].count == plan.pipelines and ("prior" in pipeline.parameters) == plan.has_prior
    for component, spec in plan.specs.items():  # every network warms up at its largest and smallest batch
        cfg = parse_config(tmp_path / "repo" / component / "config.pbtxt")
        assert sorted(w.batch_size for w in cfg.model_warmup) == list(range(1, spec.max_batch + 1))
        assert set(cfg.model_warmup[0].inputs) == {t.name for t in spec.inputs}
    assert json.loads((tmp_path / "repo" / MANIFEST).read_text())["flavour"] == flavour


def test_rebuild_removes_stale_models_and_keeps_other_files(tmp_path):
    repo = tmp_path / "repo"
    write_repository(repo, _plan(tmp_path, "cpu", "swintormer-tiny-prior"))
    (repo / "README.md").write_text("mine")
    assert (repo / "encoder").is_dir() and (repo / "denoiser").is_dir()
    write_repository(repo, _plan(tmp_path, "cpu", "swintormer-tiny"))
    assert not (repo / "encoder").exists() and not (repo / "denoiser").exists()
    assert (repo / "README.md").read_text() == "mine"


def test_gpu_and_cpu_flavours_differ_only_where_they_should(tmp_path):
    cpu = {c.name: c for c in model_configs(_plan(tmp_path, "cpu", "swintormer-tiny-prior"))}
    gpu = {c.name: c for c in model_configs(_plan(tmp_path, "gpu", "swintormer-tiny-prior"))}
    assert cpu.keys() == gpu.keys()
    for name in cpu:
        assert cpu[name].inputs == gpu[name].inputs and cpu[name].outputs == gpu[name].outputs
    assert gpu["pipeline"].parameters["device"] == "cuda" and cpu["pipeline"].parameters["device"] == "cpu"


def test_the_served_tile_must_be_the_graphs_tile(tmp_path):
    """The repository refuses limits whose tiles the restorer graph cannot take."""
    model = DeblurModel.build("swintormer-tiny")
    specs = component_specs(model, 256, 4)
    artifacts = {"restorer": tmp_path / "restorer.onnx"}
    with pytest.raises(SwintormerError, match="512-pixel tiles, but the restorer graph takes 256x256"):
        RepositoryPlan("cpu", specs, artifacts, ServingLimits(3, tiling=TilingConfig(512, 440)))
    dynamic = component_specs(model, 256, 4, dynamic_hw=True)
    RepositoryPlan("cpu", dynamic, artifacts, ServingLimits(3, tiling=TilingConfig(512, 440)))  # in range
    with pytest.raises(SwintormerError, match="outside the restorer graph's range 256..1024"):
        RepositoryPlan("cpu", dynamic, artifacts, ServingLimits(3, tiling=TilingConfig(2048, 2000)))


def test_warmup_batches_cover_every_size_the_pipeline_sends():
    from swintormer.serving.repository import warmup_batches

    assert warmup_batches(8) == [8, 7, 6, 5, 4, 3, 2, 1]
    assert warmup_batches(1) == [1]
    assert warmup_batches(48) == [48, 32, 16, 8, 4, 2, 1]


def test_the_supervisor_knows_which_stubs_a_repository_runs(tmp_path):
    """Triton names python instances <model>_<group>_<index>; the names the live test kills
    (tests/test_faults.py) are these, so the prediction is checked against a real server there."""
    from dataclasses import replace

    from swintormer.serving.server import ServerOptions, TritonServer

    plan = replace(_plan(tmp_path, "cpu", "swintormer-tiny-prior"), pipelines=3)
    write_repository(tmp_path / "repo", plan)
    expected = TritonServer(ServerOptions(tmp_path / "repo")).expected_stub_instances()
    assert expected == {"pipeline_0_0", "pipeline_0_1", "pipeline_0_2", "restorer_0_0", "encoder_0_0", "denoiser_0_0"}


def test_the_server_stubs_sleep_when_idle_unless_told_otherwise(tmp_path, monkeypatch):
    """Instances and replicas share the cores: spinning compute threads starve each other (the
    replica benchmark: 3 replicas on 2 cores 2.22 images/s spinning, 3.79 passive)."""
    from swintormer.serving.server import ServerOptions, TritonServer

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert TritonServer(ServerOptions(tmp_path)).command()[1]["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert TritonServer(ServerOptions(tmp_path)).command()[1]["OMP_WAIT_POLICY"] == "ACTIVE"
