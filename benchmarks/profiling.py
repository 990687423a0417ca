"""Optional: sample the node with py-spy while a benchmark runs, and rank where its time goes.

py-spy is not a dependency of the project; `--profile FILE` needs it on PATH or in the venv's
bin. FILE ending in `.svg` gets a flame graph, anything else py-spy's collapsed stacks (`raw`),
which `summarize` turns into self and inclusive percentages per function and per thread.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from benchmarks.common import BenchError

__all__ = ["PySpy", "find_py_spy", "summarize", "format_summary"]

_LINE = re.compile(r"\s*\(([^()]*?)(?::\d+)?\)$")


def find_py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(found, os.X_OK):
        raise BenchError("--profile needs py-spy (pip install py-spy); it is not installed")
    return found


class PySpy:
    """`py-spy record` attached to `pid` between `__enter__` and `__exit__`."""

    def __init__(self, pid: int, out: Path, rate: int = 200) -> None:
        self.pid, self.out, self.rate = pid, Path(out), rate
        self.raw_path = self.out if self.out.suffix != ".svg" else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> PySpy:
        fmt = "flamegraph" if self.out.suffix == ".svg" else "raw"
        self.out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            find_py_spy(),
            "record",
            "--pid",
            str(self.pid),
            "--rate",
            str(self.rate),
            "--format",
            fmt,
            "--output",
            str(self.out),
            "--threads",
            "--nonblocking",
        ]
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if not self.out.exists():
            self._log.seek(0)
            print(
                f"py-spy wrote nothing:\n{self._log.read().decode(errors='replace')}",
                file=sys.stderr,
            )
        self._log.close()


def _frame_name(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (to/file.py)`."""
    match = _LINE.search(frame)
    if not match:
        return frame.strip()
    func = frame[: match.start()].strip()
    path = "/".join(match.group(1).split("/")[-2:])
    return f"{func} ({path})"


def summarize(raw: Path, top: int = 25) -> dict[str, Any]:
    """Per-thread, self (leaf) and inclusive sample shares from py-spy's collapsed stacks."""
    total = 0
    threads: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0]
        if frames[0].startswith("process "):
            frames = frames[1:]
            thread = frames[0] if frames else thread
        if frames and frames[0].startswith("thread "):
            thread, frames = frames[0], frames[1:]
        total += count
        threads[_thread_name(thread)] += count
        names = [_frame_name(f) for f in frames]
        if names:
            self_time[names[-1]] += count
        for name in set(names):
            inclusive[name] += count

    def ranked(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": name, "samples": n, "pct": round(100 * n / max(total, 1), 1)}
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "threads": ranked(threads),
        "self": ranked(self_time),
        "inclusive": ranked(inclusive),
    }


def _thread_name(frame: str) -> str:
    match = re.search(r'"([^"]+)"', frame)
    return match.group(1) if match else frame


def format_summary(summary: dict[str, Any], top: int = 20) -> str:
    lines = [f"py-spy: {summary['samples']} samples (on-CPU, all threads)"]
    for title, key in (
        ("by thread", "threads"),
        ("self (leaf)", "self"),
        ("inclusive", "inclusive"),
    ):
        lines.append(f"  {title}:")
        for row in summary[key][:top]:
            lines.append(f"    {row['pct']:5.1f}%  {row['function']}")
    return "\n".join(lines)
