"""Progress a person can see: plain lines in a log when stderr is not a terminal, and a summary at the end."""

from __future__ import annotations

import logging

import swintormer.progress as progress
from swintormer.cli import main
from swintormer.imageio import write_image
from swintormer.progress import Progress


def test_lines_every_interval_and_a_summary(caplog):
    caplog.set_level(logging.INFO, logger="swintormer.progress")
    with Progress(5, "work", "items", every=0) as bar:  # not a terminal under pytest: lines, not a bar
        for _ in range(5):
            bar.set_postfix(loss="0.1")
            bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("work: 1/5 items (20%)") and "left, loss 0.1" in lines[0]
    assert len(lines) == 5 and lines[-1].startswith("work: 5 items in")  # four progress lines, one summary


def test_quiet_when_short_or_disabled(caplog):
    caplog.set_level(logging.INFO, logger="swintormer.progress")
    with Progress(3, "fast", "items") as bar:  # done well within the interval: no lines at all
        bar.update(3)
    with Progress(3, "off", "items", enabled=False, every=0) as bar:
        bar.update(3)
    assert caplog.records == []


def test_deblur_in_a_log_reports_progress_and_a_summary(capsys, tmp_path, monkeypatch, rocket):
    monkeypatch.setattr(progress, "EVERY", 0.0)
    src = tmp_path / "in"
    write_image(src / "a.png", rocket[:300, :480])
    write_image(src / "b.png", rocket[:120, :150])
    assert main(["deblur", str(src), "-o", str(tmp_path / "out"), "--batch", "1"]) == 0
    err = capsys.readouterr().err
    assert "deblurring: 1/6 tiles (16%)" in err and "deblurring: 6 tiles in" in err  # 300x480: 2 x 3 tiles
    assert "on cpu)" in err and "on auto" not in err
    assert "deblurred 2 of 2 images (0.2 MP) in" in err
