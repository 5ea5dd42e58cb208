"""Worst time of each function that reads untrusted text, on adversarial input up to 1 MB.

Every pattern (long runs of each Markdown metacharacter, blank lines, `<!--`, backticks, long
words, random Markdown soup) is first timed at a small size to find each function's worst
patterns; those are then timed at the full size in a child process that is stopped after
`--timeout` seconds (a super-linear function would otherwise run for hours).

    python bench/hostile_text.py [--size 1000000] [--probe 65536] [--top 3] [--timeout 60]

Run it with another checkout first on PYTHONPATH to time that checkout's code instead.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import random
import time
from typing import Callable

METACHARACTERS = "`*_~<>[]()!#-=|\\"


def patterns() -> dict[str, str | tuple[str, str]]:
    """Name → a unit repeated to the wanted size, or (prefix, unit); `random` is seeded Markdown soup."""
    units: dict[str, str | tuple[str, str]] = {}
    for char in METACHARACTERS:
        units[f"{char}*n"] = char
        units[f"x{char}*n"] = ("x", char)
        units[f"({char}a)*n"] = char + "a"
        units[f"({char} )*n"] = char + " "
        units[f"({char}\\n)*n"] = char + "\n"
    units.update({
        "blank lines": "\n", "space-newline": " \n", "blank+indent": "    \n", "crlf": "\r\n",
        "<!--*n": "<!--", "(<!-- )*n": "<!-- ", "(<!--\\n)*n": "<!--\n", "-->*n": "-->", "<!--`": "<!--`",
        "(``a)*n": "``a", "(```\\n)*n": "```\n", "(~~~\\n)*n": "~~~\n", "(```a)*n": "```a",
        "(@a )*n": "@a ", "@*n": "@", "(@a-)*n": "@a-", "(http://a )*n": "http://a ", "https://*n": "https://",
        "(/a\\n)*n": "/a\n", "(/retriage\\n)*n": "/retriage\n", "([a](b) )*n": "[a](b) ", "(![a](b))*n": "![a](b)",
        "[a](*n": "[a](", "(# a\\n)*n": "# a\n", "(#  )*n": "#  ", "(**a**\\n)*n": "**a**\n",
        "(- [ ] a\\n)*n": "- [ ] a\n", "(1. )*n": "1. ", "(> )*n": "> ", "(| a )*n": "| a ",
        "a*n": "a", "space*n": " ", "tab*n": "\t", "(a )*n": "a ", "hex*n": "abcdef", "digits*n": "7",
        "(1.)*n": "1.", "(_a)*n": "_a", "(a_)*n": "a_", "(\\u202e)*n": "\u202e", "(\\u200b)*n": "\u200b",
        "(error )*n": "error ", "(aerror)*n": "aerror", "(docs )*n": "docs ", "(at x(\\n)*n": "  at x(\n",
        "(how )*n": "how ", "(? )*n": "? ", "(n/a\\n)*n": "n/a\n", "(a:)*n": "a:", "({{a}})*n": "{{a}}",
        "({{a.)*n": "{{a.", "(&)*n": "&", "(javascript:)*n": "javascript:", "(<issue)*n": "<issue",
        "(a/)*n": "a/", "(a.)*n": "a.", "((x_)*30 )*n": "x_" * 30 + " ",
        "x<!--*n": ("x", "<!--"), "#(space)*n": ("#", " "), "#(space)*n#": ("#", " "),
        "random": "",
    })
    return units


def make(unit: str | tuple[str, str], size: int) -> str:
    prefix, unit = unit if isinstance(unit, tuple) else ("", unit)
    if unit:
        return prefix + (unit * (size // len(unit) + 1))[:size - len(prefix)]
    rng = random.Random(7)
    alphabet = METACHARACTERS + " \n\t\nabc@/:.1" + "\u202e"
    return "".join(rng.choice(alphabet) for _ in range(size))


def targets() -> dict[str, Callable[[str], object]]:
    """Each function that reads untrusted text, called the way chantbot calls it."""
    from bot import classifier, questions, sanitize, similarity, specs, textmodel
    from bot.assessment import Assessment
    from bot.issuetext import Candidate, IssueText
    from bot.commands import parser, registry

    found: dict[str, Callable[[str], object]] = {}

    def issue(text: str) -> IssueText:
        return IssueText(number=7, title=text[:256], body=text, author="reporter",
                         url="https://github.com/acme/widgets/issues/7", answers=(text, text))

    def model(text: str) -> Assessment:
        return Assessment(category="bug", recommendation="needs-info", summary=text, priority="high",
                          severity="degraded", missing_information=(text,), questions=(text,) * 5, rationale=text)

    triager = classifier.rules_only()
    found["parser.parse"] = parser.parse
    found["parser.added"] = lambda t: parser.added(t, t + "\n/help")
    found["registry.check_args"] = lambda t: [registry.check_args(s, tuple(t[:1000].split()[:1]) + (t,))
                                              for s in registry.COMMANDS]
    found["registry.suggest"] = registry.suggest
    found["sanitize.neutralize"] = sanitize.neutralize
    found["sanitize.one_line"] = sanitize.one_line
    found["specs.triage_spec"] = lambda t: specs.triage_spec(
        spec_id="2026-01-01-001-abc", issue=issue(t), assessment=model(t),
        completed_at=datetime.datetime(2026, 1, 1), model="local")
    found["specs.stage_spec"] = lambda t: specs.stage_spec("research", spec_id="2026-01-01-001-abc", issue=issue(t),
                                                           informed_by=[".chant/specs/x.md"], requested_by=t)
    found["specs.triage_document"] = lambda t: specs.triage_document(issue=issue(t), assessment=model(t),
                                                                     labels=[t])
    found["specs.parse_front_matter"] = lambda t: _quietly(specs.parse_front_matter, "---\n" + t + "\n---\n")
    found["questions.split_markdown"] = questions.split_markdown
    found["questions.missing_information"] = lambda t: [questions.missing_information(issue(t), c)
                                                        for c in classifier.LEARNABLE]
    found["questions.completeness"] = lambda t: questions.completeness(issue(t), [])
    found["classifier.features"] = lambda t: classifier.features(t[:256], t)
    found["classifier.rule_scores"] = lambda t: classifier.rule_scores(t[:256], t)
    found["textmodel.ngrams"] = lambda t: textmodel.ngrams(t[:256], t)
    found["classifier.assess"] = lambda t: triager.assess(issue(t), [Candidate(8, t[:256], t)])
    found["classifier.summary"] = lambda t: classifier.summary(t, "bug")
    found["similarity.candidates"] = lambda t: similarity.candidates(issue(t), [Candidate(8, t[:256], t[:1000])] * 30)
    from bot import comment

    found["comment.triage_comment"] = lambda t: comment.triage_comment(
        issue=issue(t), assessment=model(t), next_step="next", commands_help="help", duplicate=(8, t))
    found["comment.failure_comment"] = lambda t: comment.failure_comment(what="triage", error=t, retry="retry")
    from bot import store

    found["store.fts_words"] = store.fts_words
    from bot import llm

    found["llm.issue_message"] = lambda t: llm.issue_message(issue(t), [Candidate(8, t, t)])
    found["llm.documentation_message"] = lambda t: llm.documentation_message(issue(t), [(t[:200], t)] * 3)
    found["classifier.security_report"] = lambda t: classifier.security_report(issue(t), "bug")
    from bot import vulnreport

    found["vulnreport.detect"] = lambda t: vulnreport.detect(issue(t))
    found["comment.suggestion_block"] = lambda t: comment.suggestion_block(t, [t], "https://github.com/acme/widgets")
    from bot import issuetext
    from bot.stages import dossier

    found["issuetext.named_paths"] = issuetext.named_paths
    found["dossier.trace_locations"] = dossier.trace_locations
    found["dossier.identifiers"] = dossier.identifiers
    from bot.stages import heldiff

    def held(text: str) -> tuple[dict[str, str], dict[str, str]]:
        base = {"tests/conftest.py": text[:len(text) // 2], "src/b.py": text[:100_000]}
        return base, {"tests/conftest.py": text, "src/b.py": text[50_000:150_000], "docs/" + text[:200]: text[:60_000]}

    found["heldiff.scan"] = lambda t: heldiff.scan(*held(t))
    found["heldiff.render"] = lambda t: heldiff.render(*held(t))
    found["heldiff.runs_at_build_time"] = heldiff.runs_at_build_time
    from bot.stages import documents

    found["documents.prose"] = documents.prose
    from bot import prompts

    found["prompts.parse+render"] = lambda t: prompts.render(_quietly(prompts.parse, t, name="triage") or
                                                            prompts.Prompt("triage", "", t), {"project.name": t})
    from bot import deliveries

    found["deliveries.plan"] = lambda t: deliveries.plan("issue_comment", {
        "action": "created", "issue": {"number": 1, "user": {"login": "a"}, "labels": [{"name": "x"}]},
        "comment": {"id": 1, "body": t, "user": {"login": "a"}}, "repository": {"full_name": "a/b"},
        "installation": {"id": 1}, "sender": {"login": "a"}})
    from bot import repoconfig

    found["repoconfig.parse"] = repoconfig.parse
    safe_line = getattr(sanitize, "safe_line", None)  # what comments call now; absent before
    if safe_line is not None:
        found["sanitize.safe_line"] = lambda t: safe_line(t, 600, repo_url="https://github.com/acme/widgets")
    return found


def _quietly(fn: Callable, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


def _timed(name: str, text: str) -> float:
    fn = targets()[name]
    start = time.perf_counter()
    fn(text)
    return time.perf_counter() - start


def _child(name: str, unit: str, size: int, out: "multiprocessing.connection.Connection") -> None:
    try:
        out.send(_timed(name, make(unit, size)))
    except BaseException as exc:  # noqa: BLE001 - a crash is a finding too: report it, not its traceback
        out.send(f"raised {type(exc).__name__}")


def timed_with_limit(name: str, unit: str, size: int, timeout: float) -> float | str | None:
    """Seconds `name` took on `size` characters of `unit`, None when it was stopped at `timeout`,
    or what it raised."""
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_child, args=(name, unit, size, send), daemon=True)
    child.start()
    ready = receive.poll(timeout)
    result = receive.recv() if ready else None
    if child.is_alive():
        child.kill()
    child.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="characters of the full-size input")
    parser.add_argument("--probe", type=int, default=16_384, help="characters used to find the worst patterns")
    parser.add_argument("--top", type=int, default=3, help="worst patterns per function timed at full size")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a full-size run is stopped")
    parser.add_argument("--probe-timeout", type=float, default=5.0, help="seconds before a probe run is stopped")
    parser.add_argument("--only", default="", help="time only functions whose name contains this")
    args = parser.parse_args(argv)
    units = patterns()
    names = [n for n in targets() if args.only in n]
    print(f"{'function':32} {'worst pattern':22} {'probe s':>8} {'full s':>9}")
    for name in names:
        probe, raised = [], []
        for label, unit in units.items():
            seconds = timed_with_limit(name, unit, args.probe, args.probe_timeout)
            if isinstance(seconds, str):
                raised.append(f"{label}: {seconds}")
                continue
            probe.append((float("inf") if seconds is None else seconds, label))
        probe.sort(reverse=True)
        worst = (0.0, "", 0.0)
        for probe_seconds, label in probe[:args.top]:
            seconds = timed_with_limit(name, units[label], args.size, args.timeout)
            if isinstance(seconds, str):
                raised.append(f"{label} (full size): {seconds}")
                continue
            full = float("inf") if seconds is None else seconds
            if full >= worst[0]:
                worst = (full, label, probe_seconds)
        shown = f">{args.timeout:.0f}" if worst[0] == float("inf") else f"{worst[0]:.3f}"
        probe_shown = ">limit" if worst[2] == float("inf") else f"{worst[2]:.3f}"
        note = f"  {'; '.join(raised[:2])}" if raised else ""
        print(f"{name:32} {worst[1]:22} {probe_shown:>8} {shown:>9}{note}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
