"""Keeping a served deployment healthy: notice a broken stub, report not ready, recover.

A python-backend stub that dies (killed, out of memory, a crash in native code) leaves Triton
reporting the model ready while every request through it fails. :class:`Supervisor` runs the
deep check (:func:`swintormer.serving.health.deep_check`) through one ensemble every
``interval`` seconds, and at once when the server's failure counter moves or a python stub
process disappears. When it fails:

1. the broken models (the stub the error names, or every python model whose stub process is
   gone) are **unloaded**, so Triton's own ``/v2/health/ready`` turns false and load balancers
   and Kubernetes stop sending traffic;
2. they are **loaded** again (a fresh stub each), and the deep check must pass through every
   ensemble;
3. if that fails, or the server process itself died, ``tritonserver`` is **restarted** on the
   same ports.

Each step is a log line saying what failed and what was done.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
import urllib.request

from swintormer.serving.dtypes import IMAGE_DTYPES
from swintormer.serving.health import HealthReport, deep_check
from swintormer.serving.server import TritonServer

__all__ = ["Supervisor", "failure_count"]

log = logging.getLogger(__name__)

#: Consecutive failures to start tritonserver before ``swintormer serve`` gives up (exit 1).
MAX_FAILED_RESTARTS = 3
_STUB = re.compile(r"Stub process '([A-Za-z0-9_.\-]+?)_\d+_\d+' is not healthy")
_GONE = re.compile(r"([A-Za-z0-9_.\-]+?)_\d+_\d+(?=[, ]|$)")


def failure_count(metrics_url: str) -> float | None:
    """The server's total failed inference requests (Prometheus ``nv_inference_request_failure``), or None."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as r:
            text = r.read().decode(errors="replace")
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("nv_inference_request_failure{"))


class Supervisor(threading.Thread):
    """Deep-checks ``server`` every ``interval`` s and recovers it; ``stop()`` ends it.

    A recovery that does not work is tried again at the next check; ``gave_up`` is set only when
    tritonserver fails to start :data:`MAX_FAILED_RESTARTS` times in a row (``serve`` then exits 1).
    """

    def __init__(self, server: TritonServer, interval: float = 5.0, check_timeout: float = 30.0) -> None:
        super().__init__(name="swintormer-supervisor", daemon=True)
        self.server, self.interval, self.check_timeout = server, interval, check_timeout
        self._halt = threading.Event()
        self.gave_up = threading.Event()
        self.recovering = threading.Event()
        self.recoveries = 0
        self.failed_restarts = 0
        self._next = 0

    def stop(self) -> None:
        self._halt.set()

    def check(self, every_ensemble: bool = False) -> HealthReport:
        """The deep check through the next ensemble in turn (or all of them)."""
        names = tuple(IMAGE_DTYPES)
        if not every_ensemble:
            names = (names[self._next % len(names)],)
            self._next += 1
        return deep_check(self.server.http_url, timeout=self.check_timeout, dtypes=names)

    def _missing_stubs(self) -> list[str]:
        """Stub instances that were running and are gone (a model with several instances can hide a dead
        one from the deep check, which another instance answers)."""
        alive = self.server.stub_instances()
        if self._stubs is None:
            # what the configs ask for, so a stub that died before this thread looked is missed too;
            # what runs, if Triton names its instances in a way the configs do not predict
            expected = self.server.expected_stub_instances()
            self._stubs = expected if alive <= expected else alive
        return sorted(self._stubs - alive)

    def run(self) -> None:
        failures = failure_count(self.server.metrics_url)
        due = time.monotonic() + self.interval
        self._stubs = None
        while not self._halt.wait(1.0):
            now_failures = failure_count(self.server.metrics_url)
            errored = now_failures is not None and failures is not None and now_failures > failures
            failures = now_failures if now_failures is not None else failures
            missing = self._missing_stubs() if self.server.alive() else []
            if not (errored or missing or time.monotonic() >= due or not self.server.alive()):
                continue
            report = self.check()
            due = time.monotonic() + self.interval
            if report.healthy and missing:
                report = HealthReport(False, f"python stub process {', '.join(missing)} is gone", report.seconds)
            if report.healthy or self._halt.is_set():
                continue
            if self.recover(report):
                self.failed_restarts = 0
                self._stubs = None  # the new stubs are the ones to watch
            elif self.failed_restarts >= MAX_FAILED_RESTARTS:
                log.error("tritonserver failed to start %d times in a row; giving up", self.failed_restarts)
                self.gave_up.set()
                return
            failures = failure_count(self.server.metrics_url)

    def _end_strays(self, pids: list[int]) -> None:
        """Stubs of the unloaded instances that Triton left running (the healthy siblings of a dead
        one are not always stopped): each holds a model's memory, so they go."""
        strays = [pid for pid in pids if pid in self.server.stub_processes()]
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        if strays:
            log.warning("ended %d stub process(es) the unload left behind", len(strays))

    def _broken_models(self, report: HealthReport) -> list[str]:
        named = _STUB.findall(report.detail) + _GONE.findall(report.detail)
        models = self.server.python_models()
        if named:
            return [m for m in models if m in named]
        alive = self.server.stub_instances()
        return [m for m in models if not any(name.startswith(f"{m}_") for name in alive)]

    def recover(self, report: HealthReport) -> bool:
        """Bring the server back after a failed deep check; False if even a restart did not."""
        start = time.monotonic()
        log.error("deep health check failed: %s", report.detail)
        self.recoveries += 1
        self.recovering.set()
        try:
            reloaded: list[str] = []
            for _ in range(3):  # another stub may break while one is reloaded
                broken = self._broken_models(report) if self.server.alive() else []
                if not broken:
                    break
                report = self._reload(broken)
                reloaded += broken
                if report.healthy:
                    log.warning("recovered in %.1f s by reloading %s", time.monotonic() - start, ", ".join(reloaded))
                    return True
            if self.server.alive():
                log.warning("reloading %s did not help (%s); restarting tritonserver", ", ".join(reloaded) or "no model", report.detail)
            else:
                log.error("tritonserver exited (status %s); restarting it:\n%s", self.server.process.returncode, self.server.log_tail(10))
            return self._restart(start)
        finally:
            self.recovering.clear()

    def _restart(self, start: float) -> bool:
        try:
            self.server.restart()
        except Exception as exc:  # a server that cannot start now; the next check tries again
            self.failed_restarts += 1
            log.error("restarting tritonserver failed: %s", exc)
            return False
        report = self.check(every_ensemble=True)
        if report.healthy:
            log.warning("recovered in %.1f s by restarting tritonserver", time.monotonic() - start)
            return True
        log.error("still unhealthy after a restart (%s); the next check tries again", report.detail)
        return False

    def _reload(self, models: list[str]) -> HealthReport:
        log.warning("unloading %s (the server reports not ready meanwhile), then loading it again", ", ".join(models))
        old = [pid for pid, name in self.server.stub_processes().items() if any(name.startswith(f"{m}_") for m in models)]
        try:
            for model in models:
                self.server.model_control("unload", model)
            for model in models:
                self.server.model_control("load", model)
        except Exception as exc:  # the model-control API failed: a restart is next
            return HealthReport(False, str(exc), 0.0)
        self._end_strays(old)
        deadline = time.monotonic() + 30
        while not self.server.ready() and time.monotonic() < deadline:
            time.sleep(0.5)
        return self.check(every_ensemble=True)
