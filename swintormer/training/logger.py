"""Training logs: one CSV per kind (``train.csv``, ``val.csv``), and TensorBoard events when it is installed.

On resume the CSVs keep only the rows up to the resumed step, so a run interrupted after its
last checkpoint does not leave rows that the resumed run then writes again.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

__all__ = ["MetricsLog"]

log = logging.getLogger(__name__)


class MetricsLog:
    """Append rows ``{step, metric: value}`` to ``<folder>/<kind>.csv`` (and TensorBoard, if importable)."""

    def __init__(self, folder: str | Path, resume_step: int = 0, tensorboard: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.resume_step = resume_step
        self._headers: dict[str, list[str]] = {}
        self._writer = self._tensorboard(resume_step) if tensorboard else None

    def _tensorboard(self, resume_step: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.debug("tensorboard is not installed: CSV logs only")
            return None
        return SummaryWriter(str(self.folder / "tensorboard"), purge_step=resume_step or None)

    def _open(self, kind: str, keys: list[str]) -> list[str]:
        """Header of ``kind``'s CSV, creating the file or trimming it to rows at or before the resumed step."""
        path = self.folder / f"{kind}.csv"
        rows: list[dict[str, str]] = []
        header = ["step", *keys]
        if path.is_file() and self.resume_step > 0:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                header = list(reader.fieldnames or header)
                rows = [r for r in reader if r.get("step", "").isdigit() and int(r["step"]) <= self.resume_step]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header, restval="")
            writer.writeheader()
            writer.writerows(rows)
        return header

    def write(self, kind: str, step: int, values: dict[str, float]) -> None:
        """One row of ``kind`` (``"train"``/``"val"``) at ``step``."""
        if kind not in self._headers:
            self._headers[kind] = self._open(kind, list(values))
        header = self._headers[kind]
        unknown = sorted(set(values) - set(header))
        if unknown:
            log.debug("%s.csv has no columns for %s; not written to the CSV", kind, unknown)
        with open(self.folder / f"{kind}.csv", "a", newline="") as f:
            csv.DictWriter(f, fieldnames=header, restval="", extrasaction="ignore").writerow({"step": step, **values})
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
