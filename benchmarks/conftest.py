"""The benchmark suite's fixtures: quick mode, the results file, shared models and photos.

``pytest benchmarks/`` runs everything this machine can (GPU parts skip with the reason) and
rewrites ``benchmarks/results/<device>.json`` and ``BENCHMARKS.md``; ``--quick`` (what CI runs)
uses fewer repeats and sizes so the suite cannot rot, and marks its numbers as quick;
``--full-size`` adds the ONNX Runtime parity of the full-size variants (exports of minutes each).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import recording

torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true", help="fewer repeats and sizes (CI); numbers are marked quick")
    parser.addoption("--full-size", action="store_true",
                     help="also export the full-size variants and check their ONNX Runtime parity (long on a CPU)")


@pytest.fixture(scope="session")
def full_size(request) -> bool:
    return bool(request.config.getoption("--full-size")) or os.environ.get("SWINTORMER_BENCH_FULL_SIZE") == "1"


@pytest.fixture(scope="session")
def quick(request) -> bool:
    return bool(request.config.getoption("--quick")) or os.environ.get("SWINTORMER_BENCH_QUICK") == "1"


@pytest.fixture(scope="session")
def record(quick):
    """``record(section, data)``: write a section of this device's results file."""
    return lambda section, data: recording.record(section, data, quick)


@pytest.fixture(scope="session")
def default_model():
    from swintormer.model import DeblurModel

    return DeblurModel.load()


@pytest.fixture(scope="session")
def prior_model():
    """The bundled prior model (``swintormer-tiny-prior``), so the prior path is measured with trained weights."""
    from swintormer.model import DeblurModel

    return DeblurModel.load(expect="swintormer-tiny-prior")


def photo(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)()


def pytest_sessionfinish(session, exitstatus):
    """Turn whatever results exist into BENCHMARKS.md (tables and plots)."""
    if session.testscollected == 0:
        return
    import report

    path = recording.results_path()
    if path.is_file():
        report.write_report(Path(__file__).resolve().parents[1] / "BENCHMARKS.md")


@pytest.fixture(scope="session")
def served(default_model, tmp_path_factory):
    """The bundled default model behind a real tritonserver (cpu flavour, fp32 graphs)."""
    from swintormer.export.deploy import build_deployment
    from swintormer.serving.server import ServerOptions, TritonServer, free_port

    repo = tmp_path_factory.mktemp("bench-repo")
    build_deployment(default_model, repo)  # the defaults: tile 256, stride 220, batch 8, fp32 graphs
    server = TritonServer(ServerOptions(repo, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port()))
    server.start(timeout=300)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bench_photos(quick) -> dict[str, np.ndarray]:
    """Real photographs of non-tile-multiple sizes."""
    photos = {"chelsea": photo("chelsea"), "rocket": photo("rocket")[:400, :600]}
    if not quick:
        photos["coffee"] = photo("coffee")
    return photos
