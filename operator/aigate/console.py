"""Progress of a gate run on the terminal: a bar per phase on a TTY, the runner's plain lines otherwise.

The runner reports progress as lines ('baseline primary: 12/24 cases, 8.1s', 'MCP server x: listing tools');
this module only decides how they look. On a TTY a counting line redraws one bar in place, and any other
line is printed above it; into a pipe or a CI log every line is written as it comes, so logs stay greppable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TextIO

COUNT_LINE = re.compile(r"^(?P<label>.+): (?P<done>\d+)/(?P<total>\d+) cases, (?P<elapsed>\d+(?:\.\d+)?)s$")
BAR_WIDTH = 24
_CLEAR = "\r\x1b[K"


@dataclass(frozen=True, slots=True)
class Count:
    label: str
    done: int
    total: int
    elapsed_s: float


def parse_count(line: str) -> Count | None:
    """The phase and how far along it is, when the line is one of the runner's counting lines."""
    m = COUNT_LINE.match(line)
    if m is None or int(m["total"]) == 0:
        return None
    return Count(m["label"], int(m["done"]), int(m["total"]), float(m["elapsed"]))


def bar(c: Count, width: int = BAR_WIDTH) -> str:
    filled = min(width, c.done * width // c.total)
    return f"{c.label} [{'#' * filled}{'.' * (width - filled)}] {c.done}/{c.total} cases, {c.elapsed_s:.1f}s"


class TerminalProgress:
    """A progress callback (str -> None) for `aigate check` and `aigate demo`, writing to `stream`."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._open = False
        """A bar is drawn on the current line, not yet ended by a newline."""

    def __call__(self, line: str) -> None:
        count = parse_count(line) if self.tty else None
        if count is None:
            self._end_bar()
            self.stream.write(line + "\n")
        else:
            self.stream.write(_CLEAR + bar(count))
            self._open = count.done < count.total
            if not self._open:
                self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        """End a bar left open (a phase the budget stopped short), so what follows starts on its own line."""
        self._end_bar()
        self.stream.flush()

    def _end_bar(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False
