"""A repository's spec files wait while its issues are being worked on, so a burst's specs share one commit and
the people waiting for triage get GitHub's write slots first; they never wait more than a minute."""

import dataclasses

from bot import jobs
from bot.services import specchain
from tests.conftest import INSTALLATION, REPO, ManualClock
from tests.databases import opened


async def test_a_spec_commit_waits_for_the_issue_work_under_way_and_at_most_a_minute(start_bot, tmp_path):
    bot = await start_bot()
    clock = ManualClock()
    store = await opened(f"sqlite:///{tmp_path / 'queue.db'}", clock)  # a queue no worker of the bot's reads
    ctx = dataclasses.replace(bot.runtime.ctx, store=store, clock=clock, spec_commits_put_off={})
    gh = await ctx.github.client(INSTALLATION)
    try:
        await store.queue_files(REPO, INSTALLATION, "chant-specs", {".chant/specs/a.md": "A"})
        await store.enqueue(jobs.EVENT, f"{REPO}#7", {}, installation_id=INSTALLATION)
        [triage] = await store.claim(4, lease=15)  # a triage under way

        await specchain.commit_pending(ctx, gh, REPO, INSTALLATION)
        assert "chant-specs" not in bot.sim.branches(REPO)
        assert (await store.queue_depth()) == {"queued": 1, "running": 1}  # the commit, put off

        await store.finish(triage.id)
        await specchain.commit_pending(ctx, gh, REPO, INSTALLATION)
        assert bot.sim.files(REPO, branch="chant-specs")[".chant/specs/a.md"] == "A"

        # Work that never ends holds a commit back for a minute at most.
        await store.queue_files(REPO, INSTALLATION, "chant-specs", {".chant/specs/b.md": "B"})
        await store.enqueue(jobs.EVENT, f"{REPO}#8", {}, installation_id=INSTALLATION)
        await store.claim(4, lease=600)
        await specchain.commit_pending(ctx, gh, REPO, INSTALLATION)
        assert ".chant/specs/b.md" not in bot.sim.files(REPO, branch="chant-specs")
        clock.now += specchain.PUT_OFF_AT_MOST
        await specchain.commit_pending(ctx, gh, REPO, INSTALLATION)
        assert bot.sim.files(REPO, branch="chant-specs")[".chant/specs/b.md"] == "B"
    finally:
        await store.close()
