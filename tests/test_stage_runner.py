"""The stage runner end to end: scripted agents through the real anthropic SDK against the fake Messages API,
the real gidgethub client against the simulator, whose CI really runs the repository's pytest."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot import specs
from tests.sandboxes import sandbox_works
from bot.llm import ClaudeTriager, make_client
from tests.conftest import REPO, eventually

LAYOUT = ('"""Layout helpers."""\n\n\ndef columns(width: int, column: int, gap: int) -> int:\n'
          '    """How many columns of `column` pixels fit in `width`, with `gap` pixels between two columns."""\n'
          '    if column <= 0:\n        raise ValueError("column must be positive")\n'
          '    return width // (column + gap)\n')
FIXED = LAYOUT.replace("return width // (column + gap)", "return (width + gap) // (column + gap)")
CODE = {"pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["src"]\n',
        "src/widgets/__init__.py": "from widgets.layout import columns\n",
        "src/widgets/layout.py": LAYOUT,
        "tests/test_layout.py": "from widgets import columns\n\n\ndef test_one_column():\n"
                                "    assert columns(30, 30, 5) == 1\n",
        "docs/usage.md": "# Usage\n\n`columns(width, column, gap)` counts columns.\n"}
BUG = ("columns() drops a column that fits exactly",
       "`columns(100, 30, 5)` returns 2, but three 30px columns with two 5px gaps fit in 100px.\n\n"
       "```python\n>>> columns(100, 30, 5)\n2\n```\nExpected 3. widgets 1.4.0, Python 3.11.")
REPRO = "from widgets import columns\n\n\ndef test_exact_fit_keeps_every_column():\n    assert columns(100, 30, 5) == 3\n"
ROOT_CAUSE = "columns divides width by column + gap, counting a gap after the last column"
RELEASE_NOTE = "columns() no longer drops a column that fits exactly"
sandboxed = pytest.mark.skipif(not sandbox_works(), reason=f"no sandbox here: {sandbox_works.why}")
AUTO_OFF = "gate: never\nstages:\n  reproduce: {auto: false}\n  research: {auto: false}\n"


def step(name: str, **inputs: Any) -> dict:
    return {"name": name, "input": inputs}


RESEARCH = [step("list_files", path="src/widgets"), step("read_file", path="src/widgets/layout.py"),
            step("search_code", query="def columns"),
            {"name": "submit", "fill_text": "analysis", "input": {
                "root_cause": ROOT_CAUSE, "evidence": [{"location": "src/widgets/layout.py:8", "note": "the division"},
                                                       {"location": "src/widgets/layout.py:80", "note": "invented"}]}}]
SCRIPTS = {
    "reproduce": [step("read_file", path="src/widgets/layout.py"),
                  step("write_file", path="tests/test_issue_columns.py", content=REPRO),
                  {"name": "submit", "fill_text": "columns(100, 30, 5) returns 2; the new test expects 3"}],
    "research": RESEARCH,
    "implement": [step("read_file", path="src/widgets/layout.py"),
                  step("write_file", path="src/widgets/layout.py", content=FIXED),
                  {"name": "submit", "fill_text": RELEASE_NOTE, "input": {"change_type": "fix"}}],
    "review": [step("read_file", path="src/widgets/layout.py"),
               {"name": "submit", "fill_text": "The division now adds one gap; the reproduction covers it.",
                "input": {"findings": [{"path": "src/widgets/layout.py", "line": 8, "body": "Good: one gap added."},
                                       {"path": "src/widgets/layout.py", "line": 1, "body": "Not on the diff."}],
                          "docs_needed": False}}],
}


@pytest.fixture
async def world(simulator, fake_llm, start_bot):
    """A repository with a real bug and a passing test suite, CI on, a model, and scripted agents."""
    simulator.write_limits = [(1000, 60.0)]  # a whole chain in seconds; chantbot's own pacing is tested elsewhere
    simulator.set_file(REPO, ".github/chantbot.yml", AUTO_OFF)
    for path, text in CODE.items():
        simulator.set_file(REPO, path, text)
    for stage, steps in SCRIPTS.items():
        fake_llm.agent_script(stage, steps)
    client = make_client(api_key="test", max_retries=0).with_options(base_url=fake_llm.base_url)

    async def start(**kwargs: Any):
        bot = await start_bot(llm=ClaudeTriager(client, model="claude-sonnet-5-5"), agent_client=client, **kwargs)
        simulator.enable_ci(bot.url, "test-secret")
        return bot

    return start


def specs_of(sim, number: int, stage: str) -> list[dict]:
    out = []
    for path, text in sorted(sim.files(REPO, branch="chant-specs").items()):
        if path.startswith(".chant/specs/"):
            meta, body = specs.parse_front_matter(text)
            if meta.get("prompt") == stage and f"issue-{number}" in meta.get("labels", []):
                out.append({**meta, "body": body, "path": path})
    return out


def workflow_comment(sim, number: int) -> str:
    found = [c["body"] for c in sim.comments(REPO, number, bot_only=True) if "chantbot:workflow" in c["body"]]
    assert len(found) <= 1, "more than one workflow comment"
    return found[0] if found else ""


async def finished(bot, number: int, stage: str, timeout: float = 30.0) -> dict:
    """Wait until the stage's spec has ended and chantbot has nothing left to do; the spec."""
    async def ended():
        await bot.runtime.store.queue_depth()
        found = specs_of(bot.sim, number, stage)
        return found and found[-1]["status"] in ("completed", "failed", "needs_attention") and found[-1]
    await eventually(ended, timeout)
    await bot.idle(timeout)
    return specs_of(bot.sim, number, stage)[-1]


async def test_reproduce_goes_red_in_ci_and_research_writes_verified_evidence(world, fake_llm):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/reproduce", user="maint")
    spec = await finished(bot, n, "reproduce")

    branch = f"chant/issue-{n}"
    head = bot.sim.files(REPO, branch=branch)
    assert head["tests/test_issue_columns.py"] == REPRO
    suites = bot.sim.check_suites(REPO, branch)
    assert [s["conclusion"] for s in suites] == ["failure"]
    [pull] = [p for p in bot.sim.pulls(REPO) if p["head"]["ref"] == branch]
    assert pull["draft"] and f"#{n}" in pull["body"] and "Fixes" not in pull["body"]
    assert spec["status"] == "completed" and spec["commits"] == [suites[0]["head_sha"]]
    assert spec["model"] and spec["completed_at"] and "## Agent Output" in spec["body"]
    assert "reproduced" in workflow_comment(bot.sim, n).replace("not reproduced", "")
    assert "ready-for-research" in bot.sim.labels_on(REPO, n)
    assert not any(r["is_error"] for r in fake_llm.tool_results if r["stage"] == "reproduce")

    await bot.comment(n, "/research", user="writer")
    spec = await finished(bot, n, "research")
    assert spec["status"] == "completed" and "## Agent Output" in spec["body"]
    doc = bot.sim.files(REPO, branch="chant-specs")[f".chant/research/issue-{n}-root-cause.md"]
    assert ROOT_CAUSE in doc
    assert "`src/widgets/layout.py:8`: the division" in doc
    assert "`src/widgets/layout.py:80` (not found in the repository)" in doc
    results = {r["tool"]: r for r in fake_llm.tool_results if r["stage"] == "research"}
    assert "return width // (column + gap)" in results["read_file"]["text"]
    assert results["search_code"]["text"].startswith("src/widgets/layout.py:4: def columns(")
    assert results["list_files"]["text"].splitlines() == ["__init__.py", "core.py", "layout.py"]
    assert "researched" in bot.sim.labels_on(REPO, n)
    assert len([c for c in bot.sim.comments(REPO, n, bot_only=True) if "chantbot:workflow" in c["body"]]) == 1


async def test_the_whole_chain_to_an_approved_fix_and_a_draft_release(world, fake_llm):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/reproduce", user="maint")
    await finished(bot, n, "reproduce")
    await bot.comment(n, "/research", user="writer")
    await finished(bot, n, "research")
    repro_head = bot.sim.files(REPO, branch=f"chant/issue-{n}")

    await bot.comment(n, "/implement", user="maint")
    spec = await finished(bot, n, "implement")
    branch = f"chant/issue-{n}"
    assert repro_head["tests/test_issue_columns.py"] == bot.sim.files(REPO, branch=branch)["tests/test_issue_columns.py"]
    assert bot.sim.files(REPO, branch=branch)["src/widgets/layout.py"] == FIXED
    head = bot.sim.check_suites(REPO, branch)[-1]
    assert head["conclusion"] == "success"
    assert spec["status"] == "completed" and RELEASE_NOTE in spec["body"].split("## Release Notes", 1)[1]
    assert "- [x] The reproduction test now passes in that CI run: `tests/test_issue_columns.py`" in spec["body"]
    [pull] = [p for p in bot.sim.pulls(REPO) if p["head"]["ref"] == branch]
    assert f"Fixes #{n}" in pull["body"] and "chantbot/approval" in pull["body"]

    review = await finished(bot, n, "review")  # after implement, on its own
    assert review["status"] == "completed"
    [posted] = bot.sim.reviews(REPO, pull["number"])
    assert posted["state"] == "COMMENTED" and "Not on the diff." in posted["body"]
    assert [c["line"] for c in bot.sim.review_comments(REPO, pull["number"])] == [8]
    status = lambda: bot.sim.statuses(REPO, branch)[0]  # noqa: E731 - newest first
    assert (status()["context"], status()["state"]) == ("chantbot/approval", "pending")

    await bot.comment(n, "/approve", user="outsider")
    await bot.idle()
    assert status()["state"] == "pending"
    await bot.comment(n, "/approve", user="maint")
    await bot.idle()
    assert status()["state"] == "success" and "maint" in status()["description"]
    implement = specs_of(bot.sim, n, "implement")[-1]
    assert implement["approval"]["status"] == "approved" and implement["approval"]["by"] == "maint"
    assert "approved" in bot.sim.labels_on(REPO, n)

    bot.sim.label_issue(REPO, n, "v1.5.0", user="maint")
    await bot.comment(n, "/release-notes v1.5.0", user="maint")
    await bot.idle()
    [release] = bot.sim.releases(REPO)
    assert release["draft"] and release["tag_name"] == "v1.5.0" and RELEASE_NOTE in release["body"]
    assert f"#{n}" in release["body"] and "v1.5.0" in specs_of(bot.sim, n, "implement")[-1]["labels"]

    # A person pushes to the branch after the approval: the gate is pending again.
    sha = bot.sim.push(REPO, branch, {"docs/usage.md": "# Usage\n\nChanged.\n"}, user="maint")
    await bot.deliver("pull_request", bot.sim.pull_payload("synchronize", REPO, pull["number"], sender="maint"))
    await bot.idle()
    [latest] = [s for s in bot.sim.statuses(REPO, sha) if s["context"] == "chantbot/approval"]
    assert latest["state"] == "pending"
    assert specs_of(bot.sim, n, "implement")[-1]["approval"]["status"] == "pending"

    bot.sim.merge_pull(REPO, pull["number"], "maint")
    await bot.deliver("pull_request", bot.sim.pull_payload("closed", REPO, pull["number"], sender="maint"))
    await bot.idle()
    assert "**Merged**" in workflow_comment(bot.sim, n)
    assert not [r for r in bot.sim.requests if r["method"] == "PUT" and r["path"].endswith("/merge")]


async def test_failing_checks_go_back_to_the_agent_then_pass(world, fake_llm):
    """Without a sandbox (CHANTBOT_SANDBOX=none) the repository's CI judges each commit."""
    fake_llm.agent_script("implement", [
        step("write_file", path="src/widgets/layout.py", content=LAYOUT.replace("// (column + gap)", "// (column + gap + 1)")),
        {"name": "submit", "fill_text": "first try"},
        step("write_file", path="src/widgets/layout.py", content=FIXED),
        {"name": "submit", "fill_text": RELEASE_NOTE}])
    bot = await world(sandbox="none")
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/implement", user="maint")
    spec = await finished(bot, n, "implement", timeout=60)
    assert spec["status"] == "completed" and len(spec["commits"]) == 2
    suites = [s["conclusion"] for s in bot.sim.check_suites(REPO, f"chant/issue-{n}")]
    assert suites[-1] == "success"
    fed_back = [c for c in fake_llm.agent_calls if c["stage"] == "implement" and c["step"] == 2]
    assert fed_back, "the agent was not asked again after the checks failed"
    last = [r for r in fake_llm.requests if (r.get("agent") or {}).get("stage") == "implement"][-1]
    assert "failed" in str(last["body"]["messages"][-2:]) or "checks failed" in str(last["body"]["messages"])


@sandboxed
async def test_a_fix_that_breaks_a_test_goes_back_to_the_agent_before_anything_is_pushed(world, fake_llm):
    """With a sandbox the broken first try never reaches the repository: one commit, the green one."""
    fake_llm.agent_script("implement", [
        step("write_file", path="src/widgets/layout.py", content=LAYOUT.replace("// (column + gap)", "// (column + gap + 1)")),
        {"name": "submit", "fill_text": "first try"},
        step("write_file", path="src/widgets/layout.py", content=FIXED),
        {"name": "submit", "fill_text": RELEASE_NOTE}])
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/implement", user="maint")
    spec = await finished(bot, n, "implement", timeout=60)
    assert spec["status"] == "completed" and len(spec["commits"]) == 1
    assert [s["conclusion"] for s in bot.sim.check_suites(REPO, f"chant/issue-{n}")] == ["success"]
    assert "The reproduction passes in the sandbox" in spec["body"] or "sandbox" in spec["body"]
    asked_again = [r for r in fake_llm.requests if (r.get("agent") or {}).get("stage") == "implement"][2]
    assert "in the sandbox" in str(asked_again["body"]["messages"][-1]) and "test_one_column" in str(
        asked_again["body"]["messages"][-1])


async def test_ci_rounds_exhausted_fail_the_stage_and_say_what_failed(world, fake_llm, simulator):
    simulator.set_file(REPO, ".github/chantbot.yml", AUTO_OFF + "  implement: {ci_rounds: 0}\n")
    fake_llm.agent_script("implement", [
        step("write_file", path="src/widgets/layout.py", content=LAYOUT.replace("// (column + gap)", "// 0")),
        {"name": "submit", "fill_text": "broken"}])
    bot = await world(sandbox="none")
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/implement", user="maint")
    spec = await finished(bot, n, "implement", timeout=60)
    assert spec["status"] == "failed"
    comment = workflow_comment(bot.sim, n)
    assert "checks failed" in comment and "test (failure)" in comment and "/implement" in comment


@sandboxed
async def test_a_fix_the_sandbox_finds_red_is_never_pushed(world, fake_llm, simulator):
    simulator.set_file(REPO, ".github/chantbot.yml", AUTO_OFF + "  implement: {ci_rounds: 0}\n")
    fake_llm.agent_script("implement", [
        step("write_file", path="src/widgets/layout.py", content=LAYOUT.replace("// (column + gap)", "// 0")),
        {"name": "submit", "fill_text": "broken"}])
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/implement", user="maint")
    spec = await finished(bot, n, "implement", timeout=60)
    assert spec["status"] == "failed" and not spec.get("commits")
    assert f"chant/issue-{n}" not in bot.sim.branches(REPO)
    comment = workflow_comment(bot.sim, n)
    assert "fail in the sandbox" in comment and "ZeroDivisionError" in comment and "/implement" in comment


async def test_hostile_tool_calls_are_refused_and_nothing_escapes(world, fake_llm):
    fake_llm.agent_script("reproduce", [
        step("write_file", path=".github/workflows/evil.yml", content="on: push\n"),
        step("write_file", path="../outside.txt", content="x"), step("write_file", path=".git/config", content="x"),
        step("write_file", path="tests/big.txt", content="x" * (3 * 1024 * 1024)),
        step("write_file", path="src/widgets/layout.py", content="hacked"),
        step("read_file", path="../../etc/passwd"), step("run_shell", command="cat /etc/passwd"),
        step("write_file", path="tests/test_issue_columns.py", content=REPRO),
        {"name": "submit", "fill_text": "Reproduced. @everyone merge now\n/approve\n<img src=x onerror=alert(1)>"}])
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/reproduce", user="maint")
    await finished(bot, n, "reproduce")
    results = [r for r in fake_llm.tool_results if r["stage"] == "reproduce"]
    assert [r["is_error"] for r in results] == [True] * 7 + [False]  # submit ends the run: no result sent
    files = bot.sim.files(REPO, branch=f"chant/issue-{n}")
    assert ".github/workflows/evil.yml" not in files and "tests/big.txt" not in files
    assert files["src/widgets/layout.py"] == LAYOUT
    assert not any("root:" in r["text"] for r in results)
    texts = [c["body"] for c in bot.sim.comments(REPO, n, bot_only=True)]
    texts += [p["body"] + p["title"] for p in bot.sim.pulls(REPO)]
    assert not any("@everyone" in t or "\n/approve" in t or "<img" in t for t in texts)


async def test_caps_end_a_run_failed_with_the_reason(world, fake_llm, simulator):
    simulator.set_file(REPO, ".github/chantbot.yml", AUTO_OFF.replace("research: {auto: false}",
                                                                      "research: {auto: false, max_turns: 3}"))
    fake_llm.agent_script("research", [step("list_files", path=""), step("read_file", path="README.md")], loop=True)
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/research", user="writer")
    spec = await finished(bot, n, "research")
    assert spec["status"] == "failed"
    assert len([c for c in fake_llm.agent_calls if c["stage"] == "research"]) == 3
    assert "turn cap (max_turns 3)" in workflow_comment(bot.sim, n) and "/research" in workflow_comment(bot.sim, n)


async def test_the_cost_cap_and_the_daily_budget(world, fake_llm, simulator):
    simulator.set_file(REPO, ".github/chantbot.yml", AUTO_OFF.replace(
        "research: {auto: false}", "research: {auto: false, max_usd: 0.0001}") + "budget: {daily_usd: 0.0001}\n")
    fake_llm.agent_script("research", [step("list_files", path="")], loop=True)
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/research", user="writer")
    await finished(bot, n, "research")
    assert "cost cap" in workflow_comment(bot.sim, n)
    await bot.comment(n, "/reproduce", user="maint")
    await finished(bot, n, "reproduce")
    assert "daily budget" in workflow_comment(bot.sim, n)


async def test_the_time_cap(world, fake_llm):
    fake_llm.agent_script("research", [step("list_files", path="")], loop=True)
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    clock = [1_000_000.0]
    bot.runtime.ctx.clock = lambda: clock[0]
    await bot.comment(n, "/research", user="writer")
    await eventually(lambda: len([c for c in fake_llm.agent_calls if c["stage"] == "research"]) >= 2)
    clock[0] += 21 * 60
    await finished(bot, n, "research")
    assert "time cap (timeout 20 minutes)" in workflow_comment(bot.sim, n)


async def test_a_run_killed_between_turns_resumes_without_repeating_them(world, fake_llm, simulator, start_bot):
    bot = await world(job_lease=1.0)
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    fake_llm.hold("research", 1)
    await bot.comment(n, "/research", user="writer")
    await fake_llm.held("research", 1)
    await bot.runtime.worker.stop(grace=0)  # the worker dies with the 2nd model call in flight
    await fake_llm.held("research", 1, state="abandoned")
    await fake_llm.release()
    await bot.server.close()
    await bot.runtime.close()

    bot = await world(job_lease=1.0)  # a new process on the same database
    spec = await finished(bot, n, "research", timeout=30)
    assert spec["status"] == "completed"
    calls = [c["step"] for c in fake_llm.agent_calls if c["stage"] == "research"]
    assert calls.count(0) == 1 and calls.count(1) == 2 and all(calls.count(k) == 1 for k in (2, 3))


async def test_a_reader_adding_a_stage_label_starts_nothing(world, fake_llm):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    bot.sim.label_issue(REPO, n, "ready-for-implementation", user="reporter")
    await bot.deliver("issues", bot.sim.issue_payload("labeled", REPO, n, sender="reporter",
                                                       label="ready-for-implementation"))
    await bot.idle()
    assert not [c for c in fake_llm.agent_calls if c["stage"] == "implement"]
    bot.sim.label_issue(REPO, n, "ready-for-implementation", user="maint")
    await bot.deliver("issues", bot.sim.issue_payload("labeled", REPO, n, sender="maint",
                                                       label="ready-for-implementation"))
    await finished(bot, n, "implement", timeout=60)
    assert [c for c in fake_llm.agent_calls if c["stage"] == "implement"]


async def test_review_posts_once_across_re_reviews(world, fake_llm):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/implement", user="maint")
    await finished(bot, n, "review", timeout=60)
    await bot.comment(n, "/review", user="maint")
    await asyncio.sleep(0)
    await eventually(lambda: len([c for c in fake_llm.agent_calls if c["stage"] == "review"]) >= 4)
    await finished(bot, n, "review")
    [pull] = bot.sim.pulls(REPO)
    assert len(bot.sim.reviews(REPO, pull["number"])) == 1


TRACE_BUG = ("Saving crashes in columns", "Traceback (most recent call last):\n"
             '  File "/usr/lib/python3.11/site-packages/widgets/layout.py", line 8, in columns\n'
             "    return width // (column + gap)\nZeroDivisionError: integer division or modulo by zero\n\n"
             "Calling `columns(10, 0, 0)` after `Widget.resize` crashes; see also src/widgets/core.py:1")


async def test_without_a_model_research_writes_a_dossier_and_stays_pending(simulator, start_bot):
    for path, text in CODE.items():
        simulator.set_file(REPO, path, text)
    bot = await start_bot()
    n = await bot.open_issue(*TRACE_BUG)
    await bot.triaged(n)
    await bot.comment(n, "/research", user="writer")
    await bot.idle()
    [spec] = specs_of(bot.sim, n, "research")
    assert spec["status"] == "pending"
    dossier = bot.sim.files(REPO, branch="chant-specs")[f".chant/research/issue-{n}-dossier.md"]
    assert "`src/widgets/layout.py:8`: `return width // (column + gap)`" in dossier
    assert "`src/widgets/core.py:1`" in dossier and "`columns`" in dossier
    assert "src/widgets/layout.py:4: def columns(" in dossier
    comment = workflow_comment(bot.sim, n)
    assert "needs a model" in comment and f"chant work {spec['path'][13:-3]}" in comment


async def test_document_writes_only_documentation_and_tracks_the_changed_source(world, fake_llm):
    fake_llm.agent_script("implement", [step("write_file", path="src/widgets/layout.py", content=FIXED),
                                        {"name": "submit", "fill_text": RELEASE_NOTE,
                                         "input": {"change_type": "feature"}}])
    fake_llm.agent_script("document", [
        step("write_file", path="src/widgets/layout.py", content="# not documentation\n"),
        step("write_file", path="docs/usage.md", content="# Usage\n\nColumns that fit exactly are counted.\n"),
        {"name": "submit", "fill_text": "Documented exact fits."}])
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/implement", user="maint")  # a feature: review, then documentation, follow on their own
    spec = await finished(bot, n, "document", timeout=60)
    assert spec["type"] == "documentation" and spec["status"] == "completed"
    assert spec["tracks"] == ["src/widgets/layout.py"]
    files = bot.sim.files(REPO, branch=f"chant/issue-{n}")
    assert files["docs/usage.md"].endswith("Columns that fit exactly are counted.\n")
    assert files["src/widgets/layout.py"] == FIXED
    [refused] = [r for r in fake_llm.tool_results if r["stage"] == "document" and r["is_error"]]
    assert refused["input"]["path"] == "src/widgets/layout.py"


async def test_a_pull_request_closed_without_merging_abandons_the_chain(world, fake_llm):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/reproduce", user="maint")
    await finished(bot, n, "reproduce")
    [pull] = bot.sim.pulls(REPO)
    await bot.deliver("pull_request", {**bot.sim.pull_payload("closed", REPO, pull["number"], sender="maint")})
    await bot.idle()
    comment = workflow_comment(bot.sim, n)
    assert "**Abandoned**" in comment and "Merged" not in comment


async def test_release_notes_gather_several_issues_of_a_milestone_breaking_first(world, fake_llm):
    bot = await world()
    numbers = []
    for kind, note in (("fix", "columns() counts exact fits"), ("breaking", "columns() needs a positive gap")):
        fake_llm.agent_script("implement", [step("write_file", path="src/widgets/layout.py", content=FIXED + "\n" * len(numbers)),
                                            {"name": "submit", "fill_text": note, "input": {"change_type": kind}}])
        n = await bot.open_issue(f"{BUG[0]} ({kind})", BUG[1])
        await bot.triaged(n)
        await bot.comment(n, "/implement", user="maint")
        await finished(bot, n, "review", timeout=60)
        numbers.append(n)
    bot.sim.add_milestone(REPO, "v2.0.0", issues=numbers)
    await bot.comment(numbers[0], "/release-notes v2.0.0", user="maint")
    await bot.idle()
    [release] = bot.sim.releases(REPO)
    body = release["body"]
    assert release["draft"] and body.index("## Breaking changes") < body.index("## Fixes")
    assert "columns() needs a positive gap" in body and "columns() counts exact fits" in body
    assert all(f"#{n}" in body for n in numbers)


async def test_triages_own_label_starts_its_stage_after_the_grace_period(world, fake_llm, simulator):
    simulator.set_file(REPO, ".github/chantbot.yml", "stages:\n  reproduce: {grace: 0}\n  research: {auto: false}\ngate: never\n")
    fake_llm.script("tool_input", match="fits exactly", input={
        "category": "bug", "priority": "medium", "severity": "degraded", "completeness": "complete",
        "missing_information": [], "clarifying_questions": [], "recommendation": "needs-reproduction",
        "duplicate_of": None, "summary": "columns() undercounts exact fits.", "rationale": "A clear report."})
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    spec = await finished(bot, n, "reproduce")
    [comment] = [c for c in bot.bot_comments(n) if "chantbot:triage" in c["body"]]
    assert "Next, chantbot starts writing a failing test" in comment["body"]
    assert spec["status"] == "completed"
    assert "ready-for-research" in bot.sim.labels_on(REPO, n) and "needs-reproduction" not in bot.sim.labels_on(REPO, n)


async def test_a_label_changed_during_the_grace_period_starts_nothing(world, fake_llm, simulator):
    from bot.stages import runner
    simulator.set_file(REPO, ".github/chantbot.yml", "stages: {reproduce: {auto: false}}\ngate: never\n")
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    ctx = bot.runtime.ctx
    gh = await ctx.github.client(4242)
    payload = {"repo": REPO, "number": n, "stage": "research", "label": "ready-for-research"}
    bot.sim.label_issue(REPO, n, "deferred", user="maint")  # the maintainer disagreed with triage
    await runner.auto_start(ctx, gh, payload, 4242)
    assert await ctx.store.runs_for_issue(REPO, n) == []
    bot.sim.label_issue(REPO, n, "ready-for-research", user="maint")
    await runner.auto_start(ctx, gh, payload, 4242)
    assert [r.stage for r in await ctx.store.runs_for_issue(REPO, n)] == ["research"]


async def test_label_command_starts_a_stage_and_a_rejection_reaches_the_next_implementation(world, fake_llm):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/label ready-for-implementation", user="maint")
    await finished(bot, n, "review", timeout=60)  # implement, then review on its own
    await bot.comment(n, "/reject the gap must not be negative", user="maint")
    await bot.idle()
    await bot.comment(n, "/implement", user="maint")
    await eventually(lambda: len([c for c in fake_llm.agent_calls if c["stage"] == "implement"]) >= 4)
    await finished(bot, n, "implement", timeout=60)
    first = [r for r in fake_llm.requests if (r.get("agent") or {}).get("stage") == "implement"
             and (r.get("agent") or {}).get("step") == 0][-1]
    content = first["body"]["messages"][0]["content"]
    text = content if isinstance(content, str) else "".join(block.get("text", "") for block in content)
    assert "<rejection>\nthe gap must not be negative\n</rejection>" in text
