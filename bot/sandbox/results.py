"""What a sandbox run gives back: its bounds, each test's outcome, the run, and setup's cached environment."""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024


@dataclass(frozen=True)
class Limits:
    """The bounds of one sandboxed command."""

    timeout: float = 300.0  # seconds of wall time
    memory: int = 2 * 1024**3  # bytes of address space per process
    processes: int = 256
    output: int = 64 * KIB  # bytes of output kept (the tail)
    flood: int = 256 * 1024**2  # bytes of output after which the run is killed
    file_size: int = 1024**3  # the largest file the command may write


@dataclass(frozen=True)
class Outcome:
    """One test case from the JUnit XML."""

    name: str  # pytest node id form where derivable: "tests/test_core.py::test_px"
    path: str  # the test file, relative to the repository root ("" when unknown)
    outcome: str  # "passed" | "failed" | "error" | "skipped"
    detail: str = ""  # the first lines of the failure or error, bounded


# Why a run was killed, as the agent reads it.
KILLED = {
    "timeout": "killed: timeout after {timeout:g} s",
    "output": "killed: more than {flood_mib} MiB of output",
}
NO_JUNIT = "no JUnit report: the test command wrote none to $CHANT_JUNIT (per-test outcomes unknown)"
ORDER = ("error", "failed", "skipped", "passed")


@dataclass(frozen=True)
class TestRun:
    """One test command's run in the sandbox."""

    __test__ = False  # not a pytest test class

    status: int | None  # exit status (None when killed)
    outcomes: tuple[Outcome, ...]
    output: str  # the tail of stdout and stderr, at most Limits.output bytes
    killed: str | None = None  # "timeout" | "output"; None when the command ended by itself (memory past
    # Limits.memory is not a kill: the allocation fails inside, and the output says so)
    junit: bool = True  # whether a JUnit file was found and parsed
    notes: tuple[str, ...] = ()
    limits: Limits = Limits()

    def counts(self) -> dict[str, int]:
        counted = {kind: 0 for kind in ORDER}
        for outcome in self.outcomes:
            counted[outcome.outcome] = counted.get(outcome.outcome, 0) + 1
        return counted

    def head(self) -> str:
        """The run's first line: its exit status or why it was killed."""
        if self.killed:
            template = KILLED.get(self.killed, "killed: {killed}")
            return template.format(timeout=self.limits.timeout, flood_mib=self.limits.flood // 1024**2,
                                   killed=self.killed)
        return f"exit status: {self.status}"

    def render(self, limit: int = 20_000) -> str:
        """The agent's tool result: status, each test's outcome (failures first, with their first lines), the
        notes and the output's tail; never longer than `limit` characters."""
        top = [self.head()]
        if self.junit:
            counted = self.counts()
            top.append("tests: " + ", ".join(f"{counted[k]} {k}" for k in ORDER if counted[k]) if self.outcomes
                       else "tests: none ran")
        else:
            top.append(NO_JUNIT)
        top += [f"note: {note}" for note in self.notes]
        head = "\n".join(top) + "\n"
        tail_title = "\noutput (the last lines):\n"
        budget = limit - len(head) - len(tail_title)
        # at most half of what is left for the outcomes, the rest for the output's tail
        outcome_budget = budget // 2 if self.output else budget
        listed: list[str] = []
        used = 0
        ranked = sorted(self.outcomes, key=lambda o: ORDER.index(o.outcome) if o.outcome in ORDER else 0)
        for index, outcome in enumerate(ranked):
            entry = f"{outcome.outcome.upper()} {outcome.name}"
            if outcome.detail and outcome.outcome in ("failed", "error"):
                entry += "\n" + "\n".join("    " + line for line in outcome.detail.splitlines())
            entry += "\n"
            more = f"[{len(ranked) - index} more tests not shown]\n"
            if used + len(entry) + len(more) > outcome_budget:
                listed.append(more)
                used += len(more)
                break
            listed.append(entry)
            used += len(entry)
        text = head + "".join(listed)
        room = limit - len(text) - len(tail_title)
        if self.output and room > 0:
            tail = self.output[-room:]
            text += tail_title + tail
        return text[:limit]


@dataclass(frozen=True)
class Setup:
    """The cached environment setup made for one key (or found already made)."""

    env: str | None  # host path of the cached $CHANT_ENV folder (None: no environment was made)
    ran: bool  # False when it came from the cache
    status: int | None
    output: str
    key: str  # the cache key: hash of the dependency files, the command and the interpreter
    dependencies: tuple[tuple[str, str], ...] = ()  # (path, sha256) of the dependency files it was made from
    killed: str | None = None
