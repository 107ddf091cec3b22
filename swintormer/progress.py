"""Progress on anything a person waits for: a bar on a terminal, plain lines in a log.

On a terminal :class:`Progress` draws a tqdm bar that is erased when the work is done. Where
stderr is not a terminal (a log file, CI, a service) a bar would be invisible until the end, so
it logs a line every :data:`EVERY` seconds instead (``12/40 tiles (30%), 8.1 s, ~19 s left``)
and one summary line when it ends, if it ran long enough to log any.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from tqdm.auto import tqdm

__all__ = ["EVERY", "Progress"]

log = logging.getLogger("swintormer.progress")

#: Seconds between progress lines when stderr is not a terminal (``SWINTORMER_PROGRESS_EVERY``).
EVERY = float(os.environ.get("SWINTORMER_PROGRESS_EVERY", "10"))


def _is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class Progress:
    """``total`` units of work called ``desc``; ``enabled`` None shows it (bar or lines) as suits stderr.

    Use as a context manager and call :meth:`update` after each piece of work.
    """

    def __init__(
        self, total: int, desc: str, unit: str, enabled: bool | None = None, every: float | None = None, initial: int = 0,
        leave: bool = False,
    ) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done, self.initial, self.start = initial, initial, time.perf_counter()
        self.every = EVERY if every is None else every
        self.lines = 0
        self.postfix: dict[str, str] = {}
        show = enabled is not False
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave) if show and _is_terminal() else None
        self.log_lines = show and self.bar is None
        self.next_line = self.start + self.every

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.log_lines and time.perf_counter() >= self.next_line and self.done < self.total:
            self._line()
            self.next_line = time.perf_counter() + self.every

    def set_postfix(self, **values: object) -> None:
        """Figures shown beside the count (on the bar, and at the end of each progress line)."""
        self.postfix = {k: str(v) for k, v in values.items()}
        if self.bar is not None:
            self.bar.set_postfix(self.postfix)

    def _line(self) -> None:
        elapsed = time.perf_counter() - self.start
        new = self.done - self.initial
        left = elapsed / new * (self.total - self.done) if new else float("nan")
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        log.info("%s: %d/%d %s (%d%%), %.1f s, ~%.0f s left%s", self.desc, self.done, self.total, self.unit,
                 100 * self.done // max(self.total, 1), elapsed, left, extra)
        self.lines += 1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines:
            elapsed = time.perf_counter() - self.start
            new = self.done - self.initial
            log.info("%s: %d %s in %.1f s (%.2f %s/s)", self.desc, new, self.unit, elapsed, new / max(elapsed, 1e-9), self.unit)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
