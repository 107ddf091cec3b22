"""The benchmark suite's fixtures: quick mode, the results file, shared models and photos.

``pytest benchmarks/`` runs everything this machine can (GPU parts skip with the reason), writes
its numbers and a report of them to a run folder (``runs/bench/<date>-<time>/``, or ``--out``) and
prints them at the end; the checkout is left as it was. ``--record`` also merges them into the
committed ``benchmarks/results/<device>.json`` and regenerates ``BENCHMARKS.md``. ``--quick``
(what CI runs) uses fewer repeats and sizes so the suite cannot rot, and marks its numbers as
quick; ``--full-size`` adds the ONNX Runtime parity of the full-size variants (minutes each).
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
    parser.addoption("--out", type=Path, default=None,
                     help="run folder for this run's results, report and plots (default: runs/bench/<date>-<time>/)")
    parser.addoption("--record", action="store_true",
                     help="also merge this run's numbers into benchmarks/results/ and regenerate BENCHMARKS.md (commit them)")


def pytest_configure(config):
    recording.configure(config.getoption("--out", None), bool(config.getoption("--record", False)))


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
    """Write this run's report (tables and plots) to its folder; with ``--record``, publish it."""
    import report

    run = recording.run_dir()
    if session.testscollected == 0 or not any(run.glob("*.json")):
        return
    session.config.stash[_REPORT] = report.write_report(run / "BENCHMARKS.md", run)
    if recording.recording():
        recording.publish()
        report.write_report(recording.ROOT / "BENCHMARKS.md", recording.RESULTS)


_REPORT = pytest.StashKey[Path]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print this run's figures (the report written to the run folder) after the test summary."""
    path = config.stash.get(_REPORT, None)
    if path is None:
        return
    terminalreporter.section("benchmark figures (this run)")
    for line in path.read_text().splitlines()[2:]:
        if not line.startswith("!["):
            terminalreporter.write_line(line)
    terminalreporter.write_line(f"report, results and plots: {path.parent}"
                                + ("; recorded into benchmarks/results/ and BENCHMARKS.md" if recording.recording() else
                                   " (the committed BENCHMARKS.md is unchanged; --record updates it)"))


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
