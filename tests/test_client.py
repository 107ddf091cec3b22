"""The client's failures are one line and the right exit status, whatever the network does.

Usage and input errors (a malformed --url) exit 2; a server that cannot be reached, drops the
connection or does not answer in time exits 1. Against the real server: tests/test_faults.py.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from swintormer.cli import main
from swintormer.errors import SwintormerError
from swintormer.imageio import write_image
from swintormer.serving.client import DeblurClient, RetryPolicy, ServerUnavailable, parse_url
from swintormer.serving.server import free_port


@pytest.fixture()
def photo_file(tmp_path, rocket):
    path = tmp_path / "in.png"
    write_image(path, rocket[:64, :80])
    return path


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("url, needle", [
    ("localhost:99999", "from 1 to 65535"), ("127.0.0.1:abc", "must be a number"), ("127.0.0.1", "is not host:port"),
    ("ftp://127.0.0.1:8000", "unknown scheme 'ftp'"), ("127.0.0.1:8000/v2", "is not host:port"),
])
def test_malformed_urls_are_usage_errors(capsys, tmp_path, photo_file, url, needle):
    code = main(["client", str(photo_file), "-o", str(tmp_path / "o.png"), "--url", url])
    errors = _errors(capsys.readouterr().err)
    assert code == 2 and len(errors) == 1 and needle in errors[0], errors
    assert "Traceback" not in "".join(errors)


def test_schemes_are_accepted_where_they_mean_something():
    assert parse_url("http://127.0.0.1:8000", "http") == ("127.0.0.1:8000", False)
    assert parse_url("https://example.org:443/", "http") == ("example.org:443", True)
    assert parse_url("grpc://[::1]:8001", "grpc") == ("[::1]:8001", False)


def test_refused_connection_is_exit_1_after_bounded_retries(capsys, tmp_path, photo_file):
    port = free_port()
    start = time.perf_counter()
    code = main(["client", str(photo_file), "-o", str(tmp_path / "o.png"), "--url", f"127.0.0.1:{port}"])
    elapsed = time.perf_counter() - start
    errors = _errors(capsys.readouterr().err)
    assert code == 1 and len(errors) == 1 and "no Triton server answers" in errors[0], errors
    policy = RetryPolicy()
    waited = sum(min(policy.max_wait, policy.backoff * 2**i) for i in range(policy.attempts - 1))
    assert waited * 0.9 <= elapsed < waited + 5, elapsed  # retried with backoff, and gave up
    assert not (tmp_path / "o.png").exists()


def test_a_server_that_never_answers_times_out(capsys, tmp_path, photo_file):
    """A socket that accepts and then says nothing: --timeout bounds the wait."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with DeblurClient(f"127.0.0.1:{listener.getsockname()[1]}", timeout=1.0, retry=RetryPolicy(attempts=1)) as client:
            start = time.perf_counter()
            with pytest.raises(ServerUnavailable, match=r"timed out after 1 s \(--timeout\)"):
                client.check_ready()
            assert time.perf_counter() - start < 5
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_bad_arguments_are_clear():
    with pytest.raises(SwintormerError, match="--timeout must be a positive"):
        DeblurClient("127.0.0.1:8000", timeout=0)
    with pytest.raises(SwintormerError, match="protocol must be"):
        DeblurClient("127.0.0.1:8000", protocol="tcp")
