"""The approval gate and the chain's end: only the issue's own pull request moves them, people's own pull
requests pass the check, a rejected change stays out of the release notes, and no write to a run is lost."""

from __future__ import annotations

import asyncio

from bot import deliveries, specs
from bot.repoconfig import RepoConfig
from bot.stages import gate
from tests.conftest import INSTALLATION, REPO
from tests.test_stage_runner import BUG, finished, world, workflow_comment  # noqa: F401 (world is a fixture)

APPROVAL = "chantbot/approval"


def approval_statuses(sim, ref: str) -> list[dict]:
    """The `chantbot/approval` statuses of a commit (or branch head), newest first."""
    return [s for s in sim.statuses(REPO, ref) if s["context"] == APPROVAL]


def from_fork(sim, action: str, number: int, branch: str, fork: dict | None) -> dict:
    """A `pull_request` delivery of pull request `number` as GitHub sends it when its head is a fork's `branch`
    (`fork` None: the fork was deleted)."""
    payload = sim.pull_payload(action, REPO, number, sender="outsider")
    head = payload["pull_request"]["head"]
    head.update(ref=branch, repo=fork, label=f"{fork['owner']['login'] if fork else 'ghost'}:{branch}")
    return payload


def test_only_the_repositorys_own_branch_is_an_issues_work_branch():
    repository = {"id": 7, "full_name": "acme/widgets"}
    own = {"id": 7, "full_name": "acme/widgets"}
    fork = {"id": 8, "full_name": "mallory/widgets"}

    def delivery(head_repo):
        return {"repository": repository, "pull_request": {"number": 3, "head": {"ref": "chant/issue-5",
                                                                                  "repo": head_repo}}}
    assert deliveries.work_issue("pull_request", delivery(own)) == 5
    assert deliveries.work_issue("pull_request", delivery(fork)) is None
    assert deliveries.work_issue("pull_request", delivery(None)) is None  # a deleted fork
    assert deliveries.work_issue("pull_request", delivery({"id": 8, "full_name": "acme/widgets"})) is None  # ids win
    assert deliveries.work_issue("pull_request", delivery({"full_name": "ACME/widgets"})) == 5  # no id: the name
    assert deliveries.work_issue("pull_request", delivery({"full_name": "mallory/widgets"})) is None


async def test_a_forks_pull_request_on_a_branch_named_like_the_issues_neither_ends_the_chain_nor_voids_approval(
        world, fake_llm, simulator):
    simulator.add_repo("mallory/widgets")
    fork = simulator.render_repo(simulator.find_repo("mallory/widgets"))
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    branch = f"chant/issue-{n}"
    fake_llm.hold("review", 1)
    await bot.comment(n, "/implement", user="maint")  # review follows on its own
    await fake_llm.held("review", 1)
    # the fork's pull request carries a copy of the agent's commit, and is closed while the review runs
    [own] = bot.sim.pulls(REPO)
    simulator.push(REPO, "fork-head", {"src/widgets/layout.py": "# the fork's copy\n"}, user="outsider")
    other = simulator.add_pull(REPO, head="fork-head", title="Copy of the fix", user="outsider")
    copied = from_fork(simulator, "opened", other["number"], branch, fork)
    copied["pull_request"]["head"]["sha"] = own["head"]["sha"]
    await bot.deliver("pull_request", copied)
    for head_repo in (fork, None):
        await bot.deliver("pull_request", from_fork(simulator, "closed", other["number"], branch, head_repo))
    await fake_llm.release()
    review = await finished(bot, n, "review", timeout=60)
    assert review["status"] == "completed"
    assert [s["state"] for s in approval_statuses(simulator, branch)][0] == "pending"  # the copy got no success

    await bot.comment(n, "/approve", user="maint")
    await bot.idle()
    assert approval_statuses(simulator, branch)[0]["state"] == "success"
    simulator.push(REPO, "fork-head", {"README.md": "# widgets, forked\n"}, user="outsider")
    await bot.deliver("pull_request", from_fork(simulator, "synchronize", other["number"], branch, fork))
    await bot.idle()

    assert approval_statuses(simulator, branch)[0]["state"] == "success"
    state = await bot.runtime.store.issue_state(REPO, n)
    assert state["approval"]["status"] == "approved" and "chain" not in state
    comment = workflow_comment(simulator, n)
    assert "**Abandoned**" not in comment and "approved by" in comment
    assert [p["state"] for p in simulator.pulls(REPO) if p["head"]["ref"] == branch] == ["open"]


async def test_peoples_own_pull_requests_pass_the_approval_check(start_bot, simulator):
    bot = await start_bot()
    simulator.push(REPO, "fix-typo", {"README.md": "# Widgets\n"}, user="writer")
    pull = simulator.add_pull(REPO, head="fix-typo", title="Fix the title", user="writer")
    assert await bot.deliver("pull_request", simulator.pull_payload("opened", REPO, pull["number"])) == 202
    await bot.idle()
    [status] = approval_statuses(simulator, "fix-typo")
    assert status["state"] == "success" and status["description"] == gate.NOT_AN_AGENTS_CHANGE

    simulator.push(REPO, "fix-typo", {"README.md": "# Widgets!\n"}, user="writer")
    assert await bot.deliver("pull_request", simulator.pull_payload("synchronize", REPO, pull["number"])) == 202
    await bot.idle()
    assert [s["state"] for s in approval_statuses(simulator, "fix-typo")] == ["success"]  # the new head's


async def test_a_rejected_implementation_is_left_out_of_the_release_notes(world, fake_llm):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/implement", user="maint")
    await finished(bot, n, "review", timeout=60)
    await bot.comment(n, "/reject the gap must not be negative", user="maint")
    await bot.idle()
    bot.sim.add_milestone(REPO, "v2.0.0", issues=[n])
    await bot.comment(n, "/release-notes v2.0.0", user="maint")
    await bot.idle()
    assert bot.sim.releases(REPO) == []
    [reply] = [c["body"] for c in bot.bot_comments(n) if "/release-notes v2.0.0" in c["body"]]
    assert f"Left out: #{n} (rejected by `maint`)" in reply and "no draft release was written" in reply


async def test_a_persons_label_command_cannot_set_the_approved_label(start_bot):
    bot = await start_bot()
    n = await bot.open_issue("Crash on start", "It crashes.")
    await bot.triaged(n)
    await bot.comment(n, "/label approved", user="triager")
    await bot.idle()
    assert "approved" not in bot.sim.labels_on(REPO, n)
    [reply] = [c["body"] for c in bot.bot_comments(n) if "/label approved" in c["body"]]
    assert "only chantbot sets it" in reply and "nothing was added" in reply


SPEC = "---\ntype: code\nstatus: completed\nprompt: implement\n---\n# Fix columns\n"


async def test_two_concurrent_saves_of_the_implementation_spec_keep_both(start_bot):
    bot = await start_bot()
    ctx = bot.runtime.ctx
    run = await ctx.store.start_run(REPO, 1, "implement", INSTALLATION,
                                    {"spec_text": SPEC, "spec_path": ".chant/specs/2026-01-01-001-abc.md"})
    approve = lambda text: specs.set_approval(text, status="approved", by="maint", at="2026-01-01T00:00:00Z")  # noqa: E731
    label = lambda text: specs.add_labels(text, ["v2.0.0"])  # noqa: E731
    # both writers start from the same version of the run: one of them meets a write conflict
    await asyncio.gather(gate.record_spec(ctx, run, RepoConfig(), approve),
                         gate.record_spec(ctx, run, RepoConfig(), label))
    saved = await ctx.store.get_run(run.id)
    meta, _ = specs.parse_front_matter(saved.data["spec_text"])
    assert meta["approval"]["status"] == "approved" and "v2.0.0" in meta["labels"]
    assert saved.version == run.version + 2
