"""Linear-time scanners for the inline Markdown chantbot must read exactly: code spans (pure)."""

from __future__ import annotations

import bisect
import re

_RUN = re.compile(r"`+")


class CodeSpans:
    """The code spans of one line, as CommonMark pairs backticks: a run of N backticks opens a span
    that the next run of exactly N closes; a run nobody closes is literal text.

    Every run's closer is found in one right-to-left pass, so asking for the first span from any
    position costs O(log n): a line of backticks is linear, not the O(n³) of a backtracking regex.
    Backslash escapes are not interpreted: callers that need them decide what a backslash means.
    """

    def __init__(self, line: str) -> None:
        runs = [m.span() for m in _RUN.finditer(line)]
        closer: list[int | None] = [None] * len(runs)
        last: dict[int, int] = {}
        for i in range(len(runs) - 1, -1, -1):
            length = runs[i][1] - runs[i][0]
            closer[i] = last.get(length)
            last[length] = i
        opener: list[int | None] = [None] * (len(runs) + 1)  # the first run at or after i that has a closer
        for i in range(len(runs) - 1, -1, -1):
            opener[i] = i if closer[i] is not None else opener[i + 1]
        self._runs, self._closer, self._opener = runs, closer, opener
        self._starts = [start for start, _ in runs]

    def first_from(self, pos: int) -> tuple[int, int] | None:
        """(start, end) of the first span whose opening run starts at or after `pos`, or None."""
        i = self._opener[bisect.bisect_left(self._starts, pos)]
        if i is None:
            return None
        j = self._closer[i]
        assert j is not None
        return self._runs[i][0], self._runs[j][1]

    def all(self) -> list[tuple[int, int]]:
        """Every span of the line, left to right."""
        spans, i = [], self._opener[0]
        while i is not None:
            j = self._closer[i]
            assert j is not None
            spans.append((self._runs[i][0], self._runs[j][1]))
            i = self._opener[j + 1]
        return spans
