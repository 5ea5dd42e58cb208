"""pytest's JUnit XML read into per-test outcomes, and the reproduce and implement verdicts on them (pure)."""

from __future__ import annotations

from bot.sandbox import Outcome, TestRun
from bot.sandbox.junit import parse
from bot.stages import verdicts

# What pytest 8/9 writes (xunit2, its default) for tests/test_a.py and a class in it, trimmed.
REPORT = b"""<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest"
errors="2" failures="3" skipped="1" tests="8">
<testcase classname="tests.test_a" name="test_pass" time="0.000" />
<testcase classname="tests.test_a" name="test_fail" time="0.001"><failure message="AssertionError: one is not two&#10;assert 1 == 2">&gt;   def test_fail(): assert 1 == 2, "one is not two"
E   AssertionError: one is not two
E   assert 1 == 2

tests/test_a.py:3: AssertionError</failure></testcase>
<testcase classname="tests.test_a" name="test_fix" time="0.000"><error message="failed on setup with &quot;RuntimeError: fixture boom&quot;">@pytest.fixture
&gt;   def broken(): raise RuntimeError("fixture boom")
E   RuntimeError: fixture boom

tests/test_a.py:5: RuntimeError</error></testcase>
<testcase classname="tests.test_a.TestK" name="test_m" time="0.000"><failure message="ValueError: bad value">self = &lt;test_a.TestK object&gt;
E   ValueError: bad value

tests/test_a.py:8: ValueError</failure></testcase>
<testcase classname="tests.test_a" name="test_p[1]" time="0.000" />
<testcase classname="tests.test_a" name="test_s" time="0.000"><skipped type="pytest.skip" message="nope">tests/test_a.py:11: nope</skipped></testcase>
<testcase classname="tests.test_a" name="test_td" time="0.000"><failure message="assert False">E   assert False</failure></testcase>
<testcase classname="tests.test_a" name="test_td" time="0.000"><error message="failed on teardown with &quot;RuntimeError: teardown boom&quot;">E   RuntimeError: teardown boom</error></testcase>
</testsuite></testsuites>"""

COLLECTION_ERROR = b"""<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest"
errors="1" failures="0" skipped="0" tests="1"><testcase classname="" name="tests.sub.test_b" time="0.000"><error
message="collection failure">ImportError while importing test module '/chant/repo/tests/sub/test_b.py'.
Traceback:
tests/sub/test_b.py:1: in &lt;module&gt;
    import nonexistent_mod
E   ModuleNotFoundError: No module named 'nonexistent_mod'</error></testcase></testsuite></testsuites>"""

FILES = {"tests/test_a.py", "tests/sub/test_b.py", "calc.py"}


def test_pytests_junit_becomes_node_ids_with_outcomes():
    outcomes = {o.name: o for o in parse(REPORT, FILES)}
    assert {name: o.outcome for name, o in outcomes.items()} == {
        "tests/test_a.py::test_pass": "passed",
        "tests/test_a.py::test_fail": "failed",
        "tests/test_a.py::test_fix": "error",
        "tests/test_a.py::TestK::test_m": "failed",
        "tests/test_a.py::test_p[1]": "passed",
        "tests/test_a.py::test_s": "skipped",
        "tests/test_a.py::test_td": "error",  # failed in its body, then its fixture broke on teardown
    }
    assert all(o.path == "tests/test_a.py" for o in outcomes.values())
    assert outcomes["tests/test_a.py::test_fail"].detail == (
        "E   AssertionError: one is not two\nE   assert 1 == 2\ntests/test_a.py:3: AssertionError")


def test_a_module_that_fails_to_collect_is_an_error_named_after_its_file():
    (outcome,) = parse(COLLECTION_ERROR, FILES)
    assert (outcome.name, outcome.path, outcome.outcome) == ("tests/sub/test_b.py", "tests/sub/test_b.py", "error")
    assert "ModuleNotFoundError: No module named 'nonexistent_mod'" in outcome.detail


def test_without_the_trees_files_capitalised_parts_are_classes():
    names = {o.name for o in parse(REPORT)}
    assert "tests/test_a.py::TestK::test_m" in names


def test_what_is_not_a_junit_report_is_none():
    assert parse(b"not xml") is None
    assert parse(b"<html><body/></html>") is None
    bomb = (b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">' + b"".join(
        f'<!ENTITY {c} "{("&" + p + ";") * 10}">'.encode() for p, c in zip("abcdefgh", "bcdefghi"))
        + b']><testsuites><testsuite><testcase classname="t" name="&i;"/></testsuite></testsuites>')
    assert parse(bomb) is None  # expat refuses the amplification


def _run(xml: bytes, files=FILES, **fields) -> TestRun:  # noqa: ANN001
    outcomes = parse(xml, files)
    return TestRun(1, outcomes or (), "", junit=outcomes is not None, **fields)


def test_reproduce_needs_a_failure_in_the_runs_own_tests_and_no_error():
    run = _run(REPORT)
    failing = verdicts.reproduce(TestRun(1, tuple(o for o in run.outcomes if o.name.endswith("test_fail")), ""),
                                 {"tests/test_a.py"})
    assert (failing.kind, failing.test, failing.line) == (
        "reproduced", "tests/test_a.py::test_fail", "AssertionError: one is not two")
    errored = verdicts.reproduce(run, {"tests/test_a.py"})  # a fixture error anywhere in its tests
    assert (errored.kind, errored.test, errored.line) == ("broken", "tests/test_a.py::test_fix",
                                                          "RuntimeError: fixture boom")
    assert verdicts.reproduce(run, {"tests/test_other.py"}).kind == "broken"  # none of its tests ran
    collection = verdicts.reproduce(_run(COLLECTION_ERROR), {"tests/sub/test_b.py"})
    assert collection.kind == "broken" and "ModuleNotFoundError" in collection.line
    passing = TestRun(0, (Outcome("tests/test_a.py::test_pass", "tests/test_a.py", "passed"),), "")
    assert verdicts.reproduce(passing, {"tests/test_a.py"}).kind == "not reproduced"
    skipped = TestRun(0, (Outcome("tests/test_a.py::test_s", "tests/test_a.py", "skipped"),), "")
    assert verdicts.reproduce(skipped, {"tests/test_a.py"}).kind == "broken"


def test_reproduce_is_broken_without_a_report_or_when_killed():
    assert verdicts.reproduce(TestRun(2, (), "boom", junit=False), {"tests/test_a.py"}).line.startswith(
        "the test command wrote no JUnit report")
    killed = verdicts.reproduce(TestRun(None, (), "", killed="timeout"), {"tests/test_a.py"})
    assert killed.kind == "broken" and killed.line == "the test run was killed (timeout after 300 s)"


def test_implement_is_green_only_when_nothing_that_passed_on_the_base_stops_passing():
    def outcome(name: str, result: str) -> Outcome:
        return Outcome(f"tests/test_a.py::{name}", "tests/test_a.py", result, "E   assert 9 == 6")

    base = TestRun(1, (outcome("test_old", "passed"), outcome("test_flaky", "failed")), "")
    reproduction = TestRun(0, (outcome("test_issue", "passed"),), "")
    suite = TestRun(0, (outcome("test_old", "passed"), outcome("test_flaky", "failed"), outcome("test_issue", "passed")),
                    "")
    assert verdicts.implement(reproduction, suite, base).kind == "green"  # a test failing before may still fail
    broken = TestRun(1, (outcome("test_old", "failed"), outcome("test_issue", "passed")), "")
    red = verdicts.implement(reproduction, broken, base)
    assert (red.kind, red.test, red.line) == ("red", "tests/test_a.py::test_old", "assert 9 == 6")
    gone = verdicts.implement(reproduction, TestRun(0, (outcome("test_issue", "passed"),), ""), base)
    assert gone.kind == "red" and gone.failures[0].detail == "passed on the base commit, did not run now"
    still_failing = TestRun(1, (outcome("test_issue", "failed"),), "")
    assert verdicts.implement(still_failing, suite, base).kind == "red"
    assert verdicts.implement(reproduction, TestRun(None, (), "", killed="timeout"), base).kind == "red"
    assert verdicts.implement(reproduction, suite, None).kind == "red"  # no base: every failure counts


def test_the_tool_result_is_bounded_and_puts_failures_first():
    many = tuple(Outcome(f"tests/test_a.py::test_{i}", "tests/test_a.py", "passed") for i in range(5000))
    failing = Outcome("tests/test_a.py::test_z", "tests/test_a.py", "failed", "E   assert 1 == 2")
    run = TestRun(1, many + (failing,), "x" * 500_000, notes=("a dependency file changed (setup.py): …",))
    text = run.render(limit=20_000)
    assert len(text) <= 20_000
    assert text.startswith("exit status: 1\ntests: 1 failed, 5000 passed\nnote: a dependency file changed")
    assert "FAILED tests/test_a.py::test_z\n    E   assert 1 == 2\n" in text
    assert "more tests not shown]" in text and text.endswith("x" * 100)
