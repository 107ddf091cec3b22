"""Outputs never destroy data: atomic writes, no output over an input, links not followed, reruns resume."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from swintormer.cli import main
from swintormer.errors import SwintormerError
from swintormer.files import atomic_write_bytes
from swintormer.imageio import read_image, write_image


@pytest.fixture()
def photos(tmp_path, rocket):
    src = tmp_path / "in"
    write_image(src / "a.png", rocket[:100, :130])
    write_image(src / "b.png", rocket[150:260, 200:330])
    return src


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _one_error(code, err, needle):
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and needle in errors[0], err


def test_outputs_that_are_inputs_are_refused(capsys, tmp_path, photos):
    a = photos / "a.png"
    before = a.read_bytes()
    os.link(a, tmp_path / "hard.png")
    (tmp_path / "soft.png").symlink_to(a)
    for out in ("hard.png", "soft.png"):
        _one_error(*_run(capsys, "deblur", a, "-o", tmp_path / out, "--overwrite"), "is the same file (a hard or symbolic link)")
    compare_named = tmp_path / "x_compare.png"
    write_image(compare_named, read_image(a).array)
    _one_error(*_run(capsys, "deblur", compare_named, "-o", tmp_path / "x.png", "--compare"), "refusing to overwrite the input")
    _one_error(*_run(capsys, "deblur", a, "-o", a, "--overwrite"), "refusing to overwrite the input")
    assert a.read_bytes() == before and not (tmp_path / "x.png").exists()


def test_existing_outputs_are_skipped_unless_overwrite_and_a_rerun_resumes(capsys, tmp_path, photos):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"an earlier result")
    code, err = _run(capsys, "deblur", photos, "-o", out)
    assert code == 0 and "skipping" in err and (out / "a.png").read_bytes() == b"an earlier result"
    assert read_image(out / "b.png").array.shape == (110, 130, 3)
    code, err = _run(capsys, "deblur", photos, "-o", out)
    assert code == 0 and "nothing to do" in err
    code, err = _run(capsys, "deblur", photos, "-o", out, "--overwrite")
    assert code == 0 and read_image(out / "a.png").array.shape == (100, 130, 3)


def test_a_symlink_in_the_output_folder_is_not_followed(capsys, tmp_path, photos):
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(outside)
    code, err = _run(capsys, "deblur", photos / "a.png", "-o", out)
    assert code == 0 and "skipping" in err and outside.read_bytes() == b"keep me"
    code, err = _run(capsys, "deblur", photos / "a.png", "-o", out, "--overwrite")
    assert code == 0 and outside.read_bytes() == b"keep me"  # the link was replaced, not followed
    assert not (out / "a.png").is_symlink() and read_image(out / "a.png").array.shape == (100, 130, 3)


def test_unwritable_and_special_outputs_say_so(capsys, tmp_path, photos):
    _one_error(*_run(capsys, "deblur", photos / "a.png", "-o", "/dev/full"), "not a folder")
    _one_error(*_run(capsys, "deblur", photos / "a.png", "-o", "/proc/swintormer-out.png"), "cannot write /proc/swintormer-out.png")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _one_error(*_run(capsys, "deblur", photos / "a.png", "-o", locked / "x.png"), "permission denied")


def test_a_failed_write_leaves_neither_a_partial_file_nor_a_temporary_one(tmp_path):
    """A full disk (simulated with the file-size limit) fails with the reason, and nothing is left behind."""
    probe = textwrap.dedent(
        f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from swintormer.files import atomic_write_bytes
        from swintormer.errors import SwintormerError
        try:
            atomic_write_bytes({str(tmp_path / 'big.png')!r}, b"x" * 100_000)
        except SwintormerError as exc:
            print(exc)
        """
    )
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "larger than this system allows" in res.stdout, res.stdout + res.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "r.png"
    target.write_bytes(b"old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(SwintormerError, match="no space left on the device"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["r.png"]


def test_a_checkpoint_with_an_implausible_config_is_refused_before_allocating(capsys, tmp_path, photos):
    import dataclasses
    import json

    import torch
    from safetensors.torch import save_file

    from swintormer.checkpoint import FORMAT
    from swintormer.registry import get_config

    config = dataclasses.asdict(get_config("swintormer-tiny")) | {"dim": 4_000_000}
    path = tmp_path / "huge.safetensors"
    save_file({"restorer.patch_embed.proj2.weight": torch.zeros(1)}, str(path),
              metadata={"format": FORMAT, "restorer.config_type": "RestorerConfig", "restorer.config": json.dumps(config)})
    _one_error(*_run(capsys, "deblur", photos / "a.png", "-o", tmp_path / "o.png", "--checkpoint", path), "parameters, which no model")


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, umask):
    """Not the temporary file's private 0600: a server running as another user reads the outputs
    (images, model repositories) as it would any file written by this user."""
    old = os.umask(umask)
    try:
        path = atomic_write_bytes(tmp_path / "out.png", b"x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
