"""Per-test outcomes from the JUnit XML a test command wrote in the sandbox (pure; the file is untrusted)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Collection

from bot.sandbox.results import Outcome

MAX_JUNIT = 16 * 1024 * 1024  # bytes of XML read; a larger report counts as none
MAX_CASES = 20_000
MAX_NAME = 500
DETAIL_LINES = 8
DETAIL_CHARS = 1_200
LINE_CHARS = 300

# error before failure: a test whose body failed and whose fixture broke on teardown did not fail cleanly
_RANK = {"error": 3, "failed": 2, "skipped": 1, "passed": 0}


def _module_path(parts: list[str], files: Collection[str] | None) -> tuple[str, list[str]]:
    """The test file a dotted pytest address names, and the class names after it."""
    if files is not None:
        for cut in range(len(parts), 0, -1):
            candidate = "/".join(parts[:cut]) + ".py"
            if candidate in files:
                return candidate, parts[cut:]
        return "", parts
    cut = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts))  # classes are capitalised
    return ("/".join(parts[:cut]) + ".py" if cut else ""), parts[cut:]


def _detail(element: ElementTree.Element) -> str:
    """The message and the lines that say what went wrong ("E   …" lines, else the first lines), bounded."""
    message = (element.get("message") or "")[:DETAIL_CHARS]
    text = (element.text or "")[: DETAIL_CHARS * 20]
    lines = text.splitlines()
    said = [line for line in lines if line.startswith("E ")]  # pytest's own account, the message included
    picked = said[:DETAIL_LINES] if said else message.splitlines()[:3] + lines[:DETAIL_LINES]
    if lines and lines[-1] not in picked and ":" in lines[-1]:
        picked.append(lines[-1])  # pytest ends with "path:line: ExceptionType"
    out = "\n".join(line[:LINE_CHARS] for line in picked if line.strip())
    return out[:DETAIL_CHARS]


def parse(xml: bytes, files: Collection[str] | None = None) -> tuple[Outcome, ...] | None:
    """Each test case of a JUnit report, merged by name (None when the report is not JUnit XML).

    pytest's forms: `classname="tests.test_core" name="test_px"` (a test), `classname="tests.test_core.TestK"`
    (a method), `classname="" name="tests.test_core"` with an <error> (the module failed to collect), and a
    second test case of the same name carrying a teardown <error>."""
    if len(xml) > MAX_JUNIT:
        return None
    try:
        document = ElementTree.fromstring(xml)  # expat ≥ 2.4.1 refuses entity amplification; no external entities
    except ElementTree.ParseError:
        return None
    if document.tag not in ("testsuites", "testsuite"):
        return None
    merged: dict[str, Outcome] = {}
    for count, case in enumerate(document.iter("testcase")):
        if count >= MAX_CASES:
            break
        classname = (case.get("classname") or "")[:MAX_NAME]
        name = (case.get("name") or "")[:MAX_NAME]
        if classname:
            path, classes = _module_path(classname.split("."), files)
            node = "::".join([path or classname, *classes, name]) if path else f"{classname}::{name}"
        else:  # a module that failed to collect
            path, rest = _module_path(name.split("."), files)
            node = path or name
            if rest and path:
                node = "::".join([path, *rest])
        if case.get("file") and not path:
            path = case.get("file", "")[:MAX_NAME]
        outcome, detail = "passed", ""
        for kind, label in (("error", "error"), ("failure", "failed"), ("skipped", "skipped")):
            found = case.find(kind)
            if found is not None:
                outcome, detail = label, _detail(found)
                break
        previous = merged.get(node)
        if previous is None or _RANK[outcome] > _RANK[previous.outcome]:
            merged[node] = Outcome(node, path, outcome, detail)
    return tuple(merged.values())
