"""Every function that reads untrusted text takes time linear in it: random and adversarial text up to 1 MB.

A function that backtracks (a nested quantifier, `^\\s*` over blank lines, a lazy span search) turns
a few kilobytes into minutes; here each gets a whole megabyte and a generous bound. The calls run in
a child process, so a function that would run for an hour fails the test instead of hanging it.
"""

from __future__ import annotations

import datetime
import functools
import multiprocessing
import multiprocessing.pool
import time
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SIZE = 1_000_000
BOUND = 4.0  # seconds for one call on 1 MB: linear code needs under one, quadratic code hours
METACHARACTERS = list("`*_~<>[]()!#-=|\\")
UNITS = METACHARACTERS + ["\n", " \n", "\r\n", "    \n", "<!--", "-->", "x`", "``a", "```\n", "~~~\n", "@a ",
                          "http://a ", "[a](b) ", "{{a.", "# ", "- [ ] ", "> ", "1. ", "a", " ", "abcdef7", "aerror ",
                          "version ", "/a\n", "\u202e", "&", "<issue"]


@functools.lru_cache(maxsize=1)
def gauntlet() -> str:
    """Long runs of every unit, each at the start of a line and after a word."""
    run = SIZE // (2 * len(UNITS)) - 4
    parts = []
    for unit in UNITS:
        repeated = (unit * (run // len(unit) + 1))[:run]
        parts += ["x" + repeated, repeated]
    return "\n".join(parts)[:SIZE]


@functools.lru_cache(maxsize=1)
def functions() -> dict[str, Callable[[str], object]]:
    """Each function that reads untrusted text, called as chantbot calls it (text in every untrusted slot)."""
    from bot import (classifier, comment, llm, prompts, questions, repoconfig, deliveries, sanitize, similarity, specs,
                     store, textmodel)
    from bot import vulnreport
    from bot.assessment import Assessment
    from bot.issuetext import Candidate, IssueText
    from bot.commands import parser, registry
    from bot import issuetext
    from bot.stages import dossier, heldiff

    def issue(text: str) -> IssueText:
        return IssueText(number=7, title=text, body=text, author="reporter",
                         url="https://github.com/acme/widgets/issues/7", answers=(text, text))

    def model(text: str) -> Assessment:
        return Assessment(category="bug", recommendation="needs-info", summary=text, priority="high",
                          missing_information=(text,), questions=(text,) * 5, rationale=text, triager=text)

    def quietly(fn: Callable[[], object]) -> object:
        try:
            return fn()
        except ValueError:  # refusing bad input is fine; taking long over it is not
            return None

    def held(text: str) -> tuple[dict[str, str], dict[str, str]]:
        """An agent's writes over the base: a file grown, one rewritten, one new under a hostile path."""
        base = {"tests/conftest.py": text[:len(text) // 2], "src/b.py": text[:100_000]}
        return base, {"tests/conftest.py": text, "src/b.py": text[50_000:150_000], "docs/" + text[:200]: text[:60_000]}

    payload = {"action": "created", "installation": {"id": 1}, "sender": {"login": "a"},
               "repository": {"full_name": "a/b"}, "issue": {"number": 1, "user": {"login": "a"}},
               "comment": {"id": 1, "user": {"login": "a"}}}
    triager = classifier.rules_only()
    return {
        "parser.parse": parser.parse,
        "parser.added": lambda t: parser.added(t, t + "\n/help"),
        "registry.check_args": lambda t: [registry.check_args(spec, (t, t)) for spec in registry.COMMANDS],
        "registry.suggest": registry.suggest,
        "sanitize.neutralize": lambda t: sanitize.neutralize(t, repo_url="https://github.com/acme/widgets"),
        "sanitize.one_line": sanitize.one_line,
        "specs.triage_spec": lambda t: specs.triage_spec(spec_id="2026-01-01-001-abc", issue=issue(t),
                                                         assessment=model(t), model="local",
                                                         completed_at=datetime.datetime(2026, 1, 1)),
        "specs.stage_spec": lambda t: specs.stage_spec("research", spec_id="2026-01-01-001-abc", issue=issue(t),
                                                       informed_by=[".chant/specs/x.md"], requested_by=t),
        "specs.triage_document": lambda t: specs.triage_document(issue=issue(t), assessment=model(t), labels=[t]),
        "prompts.parse": lambda t: quietly(lambda: prompts.render(prompts.parse("---\n" + t + "\n---\n" + t,
                                                                                name="triage"), {"a": t})),
        "repoconfig.parse": repoconfig.parse,
        "questions.missing_information": lambda t: [questions.missing_information(issue(t), c)
                                                    for c in classifier.LEARNABLE],
        "questions.split_markdown": questions.split_markdown,
        "classifier.features": lambda t: classifier.features(t, t),
        "textmodel.ngrams": lambda t: textmodel.ngrams(t, t),
        "similarity.candidates": lambda t: similarity.candidates(issue(t), [Candidate(8, t[:256], t[:1000])] * 30),
        "classifier.rule_scores": lambda t: classifier.rule_scores(t, t),
        "classifier.assess": lambda t: triager.assess(issue(t), [Candidate(8, t, t)] * 5),
        "classifier.summary": lambda t: classifier.summary(t, "bug"),
        "comment.triage_comment": lambda t: comment.triage_comment(
            issue=issue(t), assessment=model(t), next_step=t, commands_help="help", duplicate=(8, t),
            config_problems=[t]),
        "comment.failure_comment": lambda t: comment.failure_comment(what=t, error=t, retry=t),
        "store.fts_words": store.fts_words,
        "llm.issue_message": lambda t: llm.issue_message(issue(t), [Candidate(8, t, t)]),
        "llm.documentation_message": lambda t: llm.documentation_message(issue(t), [(t[:200], t)] * 3),
        "classifier.security_report": lambda t: [classifier.security_report(issue(t), c) for c in ("bug", "question")],
        "vulnreport.detect": lambda t: vulnreport.detect(issue(t)),
        "comment.suggestion_block": lambda t: comment.suggestion_block(t, [t], "https://github.com/acme/widgets"),
        "issuetext.named_paths": issuetext.named_paths,
        "dossier.trace_locations": dossier.trace_locations,
        "dossier.identifiers": dossier.identifiers,
        "heldiff.scan": lambda t: heldiff.scan(*held(t)),
        "heldiff.render": lambda t: heldiff.render(*held(t)),
        "heldiff.runs_at_build_time": heldiff.runs_at_build_time,
        "deliveries.plan": lambda t: quietly(lambda: deliveries.plan("issue_comment", {**payload, "comment": {
            **payload["comment"], "body": t}})),
    }


def measure(name: str, recipe: list[tuple[str, int]] | None) -> float:
    """Seconds `name` takes on the text a recipe builds (None: the gauntlet); runs in the child process."""
    text = gauntlet() if recipe is None else "".join(unit * count for unit, count in recipe)[:SIZE]
    fn = functions()[name]
    started = time.perf_counter()
    fn(text)
    return time.perf_counter() - started


class Child:
    """A process that runs the calls, so that one that would run for an hour can be stopped: it is killed
    when a call overruns, and the next call starts a new one."""

    def __init__(self) -> None:
        self.pool: multiprocessing.pool.Pool | None = None

    def took(self, name: str, recipe: list[tuple[str, int]] | None) -> float:
        if self.pool is None:
            self.pool = multiprocessing.get_context("spawn").Pool(1)
            self.pool.apply(measure, ("sanitize.one_line", [("a", 1)]))  # imports done before anything is timed
        try:
            return self.pool.apply_async(measure, (name, recipe)).get(timeout=BOUND * 3)
        except multiprocessing.TimeoutError:
            self.close()
            pytest.fail(f"{name} ran for more than {BOUND * 3:.0f} s on "
                        f"{'the gauntlet' if recipe is None else recipe}")

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None


@pytest.fixture(scope="module")
def child():
    runner = Child()
    yield runner
    runner.close()


def worst(child: Child, recipe: list[tuple[str, int]] | None) -> dict[str, float]:
    return {name: child.took(name, recipe) for name in functions()}


def test_every_function_is_fast_on_a_megabyte_of_every_markdown_metacharacter(child):
    slow = {name: round(s, 2) for name, s in worst(child, None).items() if s > BOUND}
    assert not slow


recipes = st.lists(st.tuples(st.one_of(st.sampled_from(UNITS), st.text(alphabet="".join(METACHARACTERS) + " \n\ta@/",
                                                                         min_size=1, max_size=12)),
                             st.integers(min_value=1, max_value=SIZE)), min_size=1, max_size=6)


@settings(max_examples=4, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(recipe=recipes)
def test_every_function_is_fast_on_random_hostile_text(child, recipe):
    slow = {name: round(s, 2) for name, s in worst(child, recipe).items() if s > BOUND}
    assert not slow
