"""The sandbox's verdicts on a reproduction and an implementation, from per-test outcomes (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

from bot.sandbox import Outcome, TestRun

REPRODUCED, NOT_REPRODUCED, BROKEN = "reproduced", "not reproduced", "broken"
GREEN, RED = "green", "red"

# Why a run is no reproduction, as the workflow comment and the agent read it.
WHY = {
    "killed": "the test run was {head}",
    "no junit": "the test command wrote no JUnit report, so no test's outcome is known",
    "none ran": "none of the tests the run added or changed ran",
    "all skipped": "the tests the run added or changed were all skipped",
    "passed": "the tests the run added or changed pass: {names}",
    "no reproduction": "none of the reproduction's tests ran",
    "missing": "passed on the base commit, did not run now",
}


@dataclass(frozen=True)
class Verdict:
    """What the sandbox's runs decided, and the test and line that say why."""

    kind: str  # reproduce: "reproduced" | "not reproduced" | "broken"; implement: "green" | "red"
    test: str = ""  # the test that decided it (reproduce: the failing or erroring test's name)
    line: str = ""  # the first line of its failure, or why it is not a reproduction
    failures: tuple[Outcome, ...] = ()


def first_line(outcome: Outcome) -> str:
    for line in outcome.detail.splitlines():
        text = line.strip().removeprefix("E").strip()
        if text:
            return text[:300]
    return outcome.outcome


def _unusable(run: TestRun) -> str | None:
    if run.killed:
        return WHY["killed"].format(head=run.head().removeprefix("killed: ").join(("killed (", ")")))
    if not run.junit:
        return WHY["no junit"]
    return None


def reproduce(run: TestRun, changed: Collection[str]) -> Verdict:
    """reproduced: a test in a file the run added or changed fails (JUnit failure) and none of them errors;
    not reproduced: they pass; broken: one errors (collection, import, fixture), none ran, or no JUnit report."""
    problem = _unusable(run)
    if problem:
        return Verdict(BROKEN, line=problem)
    changed = set(changed)
    mine = [o for o in run.outcomes if o.path in changed]
    errors = [o for o in mine if o.outcome == "error"]
    if errors:
        return Verdict(BROKEN, errors[0].name, first_line(errors[0]), tuple(errors))
    failures = [o for o in mine if o.outcome == "failed"]
    if failures:
        return Verdict(REPRODUCED, failures[0].name, first_line(failures[0]), tuple(failures))
    passed = [o for o in mine if o.outcome == "passed"]
    if passed:
        names = ", ".join(o.name for o in passed[:3]) + (" …" if len(passed) > 3 else "")
        return Verdict(NOT_REPRODUCED, passed[0].name, WHY["passed"].format(names=names))
    return Verdict(BROKEN, line=WHY["all skipped"] if mine else WHY["none ran"])


def implement(reproduction: TestRun, suite: TestRun, base: TestRun | None) -> Verdict:
    """green: the reproduction's tests pass and every test that passed on the base still passes in the suite
    (the test command with no paths); red otherwise, with the failures."""
    for run in (reproduction, suite):
        problem = _unusable(run)
        if problem:
            return Verdict(RED, line=problem)
    failures = [o for o in reproduction.outcomes if o.outcome in ("failed", "error")]
    if not any(o.outcome == "passed" for o in reproduction.outcomes) and not failures:
        return Verdict(RED, line=WHY["no reproduction"])
    now = {o.name: o for o in suite.outcomes}
    if base is not None:
        for before in base.outcomes:
            if before.outcome != "passed":
                continue
            after = now.get(before.name)
            if after is None:
                failures.append(Outcome(before.name, before.path, "error", WHY["missing"]))
            elif after.outcome != "passed":  # failed, errored, or skipped now: it no longer passes
                failures.append(after)
    else:
        failures += [o for o in suite.outcomes if o.outcome in ("failed", "error")]
    unique = tuple({o.name: o for o in failures}.values())
    if unique:
        return Verdict(RED, unique[0].name, first_line(unique[0]), unique)
    return Verdict(GREEN)
