"""The simulator's CI: check suites for new branch heads that really run pytest, read through the checks API
by the real gidgethub client, and delivered as signed webhooks."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from gidgethub import apps, sansio
from gidgethub.aiohttp import GitHubAPI

from chantbot_sim.github import GitHubSimulator
from chantbot_sim.github.ci import write_tree
from tests.conftest import APP_ID, INSTALLATION, REPO, KeyPair

API = f"/repos/{REPO}"
HOOK_SECRET = "ci-secret"
PASSING = {"tests/test_ok.py": "def test_ok():\n    assert 2 + 2 == 4\n"}
FAILING = {"tests/test_bug.py": "def test_bug():\n    assert 1 + 1 == 3, 'arithmetic is broken'\n"}
SLOW = {"tests/test_slow.py": "import time\n\n\ndef test_slow():\n    time.sleep(60)\n"}


class Receiver:
    """A webhook endpoint that accepts only deliveries gidgethub verifies with the secret."""

    def __init__(self) -> None:
        self.events: list[sansio.Event] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            event = sansio.Event.from_http(request.headers, await request.read(), secret=HOOK_SECRET)
        except sansio.ValidationFailure:
            return web.Response(status=401)
        self.events.append(event)
        return web.Response(status=202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/webhook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver():
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()


@pytest.fixture
async def gh(simulator: GitHubSimulator, app_key: KeyPair):
    async with aiohttp.ClientSession() as session:
        app = GitHubAPI(session, "chantbot-test", base_url=simulator.base_url)
        token = await apps.get_installation_access_token(app, installation_id=str(INSTALLATION), app_id=str(APP_ID),
                                                         private_key=app_key.private_pem)
        yield GitHubAPI(session, "chantbot-test", oauth_token=token["token"], base_url=simulator.base_url)


async def bot_commit(gh: GitHubAPI, branch: str, files: dict[str, str]) -> str:
    """Create `branch` from main with one commit, through the git data API as chantbot does."""
    main = (await gh.getitem(f"{API}/git/ref/heads/main"))["object"]["sha"]
    base_tree = (await gh.getitem(f"{API}/git/commits/{main}"))["tree"]["sha"]
    tree = await gh.post(f"{API}/git/trees", data={"base_tree": base_tree, "tree": [
        {"path": p, "mode": "100644", "type": "blob", "content": t} for p, t in files.items()]})
    made = await gh.post(f"{API}/git/commits", data={"message": "Reproduce", "tree": tree["sha"], "parents": [main]})
    await gh.post(f"{API}/git/refs", data={"ref": f"refs/heads/{branch}", "sha": made["sha"]})
    return made["sha"]


async def test_held_suite_stays_queued_until_released_then_pytest_passes(simulator, receiver, gh):
    simulator.enable_ci(receiver.url, HOOK_SECRET, hold=True)
    head = simulator.push(REPO, "chant/issue-1", PASSING, user="maint", message="Add a test")
    pull = simulator.add_pull(REPO, head="chant/issue-1", title="Fix #1", user="maint", draft=True)

    runs = await gh.getitem(f"{API}/commits/{head}/check-runs")
    assert runs["total_count"] == 1
    assert (runs["check_runs"][0]["name"], runs["check_runs"][0]["status"]) == ("test", "queued")
    suites = await gh.getitem(f"{API}/commits/chant/issue-1/check-suites")
    assert [(s["status"], s["head_branch"], s["app"]["name"]) for s in suites["check_suites"]] == [
        ("queued", "chant/issue-1", "GitHub Actions")]
    with pytest.raises(RuntimeError, match="held"):
        await simulator.ci_idle()
    assert receiver.events == []

    simulator.release_ci()
    await simulator.ci_idle()
    [run] = (await gh.getitem(f"{API}/commits/{head}/check-runs"))["check_runs"]
    assert (run["status"], run["conclusion"], run["head_sha"]) == ("completed", "success", head)
    assert run["output"]["title"].startswith("1 passed") and "1 passed" in run["output"]["summary"]
    suite = await gh.getitem(f"{API}/check-suites/{run['check_suite']['id']}")
    assert (suite["status"], suite["conclusion"], suite["latest_check_runs_count"]) == ("completed", "success", 1)
    assert (await gh.getitem(f"{API}/check-runs/{run['id']}"))["html_url"] == run["html_url"]
    listed = await gh.getitem(f"{API}/check-suites/{suite['id']}/check-runs")
    assert [r["id"] for r in listed["check_runs"]] == [run["id"]]

    assert [(e.event, e.data["action"]) for e in receiver.events] == [("check_run", "completed"),
                                                                     ("check_suite", "completed")]
    delivered = receiver.events[1].data
    assert delivered["installation"]["id"] == INSTALLATION and delivered["repository"]["full_name"] == REPO
    assert delivered["sender"]["login"] == "maint" and delivered["check_suite"]["app"]["slug"] == "github-actions"
    suite_data = delivered["check_suite"]
    assert (suite_data["head_sha"], suite_data["head_branch"], suite_data["conclusion"]) == (
        head, "chant/issue-1", "success")
    [linked] = suite_data["pull_requests"]
    assert (linked["number"], linked["head"]["ref"], linked["head"]["sha"], linked["base"]["ref"]) == (
        pull["number"], "chant/issue-1", head, "main")
    assert receiver.events[0].data["check_run"]["check_suite"]["id"] == suite["id"]

    simulator.hold_ci()  # a person's merge moves main: a new suite, held this time
    simulator.merge_pull(REPO, pull["number"], "maint")
    [main_suite] = simulator.check_suites(REPO, "main")
    assert (main_suite["head_branch"], main_suite["status"]) == ("main", "queued")
    assert len(receiver.events) == 2


async def test_failing_tree_fails_and_the_specs_branch_is_ignored(simulator, receiver, gh):
    simulator.enable_ci(receiver.url, HOOK_SECRET)
    simulator.push(REPO, "chant-specs", {".chant/specs/x.md": "# spec\n"}, user="maint")
    head = await bot_commit(gh, "chant/issue-2", FAILING)
    await simulator.ci_idle()

    [run] = (await gh.getitem(f"{API}/commits/{head}/check-runs"))["check_runs"]
    assert run["conclusion"] == "failure" and run["output"]["title"].startswith("1 failed")
    assert "arithmetic is broken" in run["output"]["summary"] and "arithmetic is broken" in run["output"]["text"]
    assert [s["head_branch"] for s in simulator.check_suites(REPO)] == ["chant/issue-2"]
    assert [e.data["check_suite"]["head_sha"] for e in receiver.events if e.event == "check_suite"] == [head]
    assert receiver.events[1].data["sender"]["login"] == simulator.bot_login


async def test_a_suite_past_its_time_limit_is_killed_and_a_lost_delivery_is_logged(simulator, receiver):
    with socket.socket() as probe:  # a port nobody listens on: the bot is down
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/webhook"
    simulator.enable_ci(dead, HOOK_SECRET, timeout=0.5)
    head = simulator.push(REPO, "chant/issue-3", SLOW, user="maint")
    started = time.monotonic()
    await simulator.ci_idle()
    assert time.monotonic() - started < 20  # the 60 s test was killed
    [run] = simulator.check_runs(REPO, head)
    assert (run["conclusion"], run["output"]["title"]) == ("timed_out", "pytest did not finish within 0.5 s")
    assert simulator.check_suites(REPO, head)[0]["conclusion"] == "timed_out"

    lost = [d for d in simulator.deliveries if d["event"] == "check_suite"]
    assert len(lost) == 1 and lost[0]["status"] is None and lost[0]["error"]
    with pytest.raises(aiohttp.ClientError):  # still nobody there
        await simulator.redeliver(lost[0]["id"], dead, HOOK_SECRET)
    assert await simulator.redeliver(lost[0]["id"], receiver.url, HOOK_SECRET) == 202
    [event] = receiver.events
    assert (event.delivery_id, event.data["check_suite"]["head_sha"]) == (lost[0]["id"], head)


async def test_every_kind_of_branch_move_gets_one_suite(simulator, receiver, gh):
    simulator.enable_ci(receiver.url, HOOK_SECRET, hold=True)
    pushed = simulator.push(REPO, "topic", PASSING, user="maint")
    await gh.put(f"{API}/contents/docs/a.md", data={"message": "Add a", "content": "YQo=", "branch": "topic"})
    await gh.post(f"{API}/git/refs", data={"ref": "refs/heads/copy", "sha": pushed})  # a commit with a suite
    await gh.post(f"{API}/git/refs", data={"ref": "refs/tags/v1", "sha": pushed})  # not a branch
    simulator.push(REPO, "chant-specs", {"a": "b"}, user="maint")
    suites = simulator.check_suites(REPO)
    assert [(s["head_branch"], s["status"]) for s in suites] == [("topic", "queued"), ("topic", "queued")]
    assert suites[0]["head_sha"] == pushed and suites[1]["before"] == pushed
    assert [e["via"] for e in simulator.ref_log(REPO)][-5:] == ["push", "contents", "git", "git", "push"]


def test_paths_that_would_leave_the_checkout_are_skipped(tmp_path: Path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    skipped = write_tree(checkout, {"../escape.txt": b"x", "/tmp/absolute.txt": b"x", "a/../../b.txt": b"x",
                                    "ok/fine.txt": b"fine"})
    assert sorted(skipped) == ["../escape.txt", "/tmp/absolute.txt", "a/../../b.txt"]
    assert (checkout / "ok" / "fine.txt").read_bytes() == b"fine"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["fine.txt"]


async def test_control_api_seeds_pushes_pulls_milestones_and_holds_ci(simulator, receiver):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{simulator.base_url}/_sim/ci", json={
                "webhook": {"url": receiver.url, "secret": HOOK_SECRET}, "hold": True}) as resp:
            assert await resp.json() == {"enabled": True, "held": 0}
        seed = {"issues": [{"repo": REPO, "title": "Bug", "body": "b", "user": "reporter"}],
                "pushes": [{"repo": REPO, "branch": "topic", "files": PASSING, "user": "maint"}],
                "pulls": [{"repo": REPO, "head": "topic", "title": "Topic", "user": "maint"}],
                "milestones": [{"repo": REPO, "title": "v1.0.0", "issues": [1]}]}
        async with session.post(f"{simulator.base_url}/_sim/state", json=seed) as resp:
            created = await resp.json()
        assert created["pulls"][0]["number"] == 2 and created["milestones"][0]["open_issues"] == 1
        async with session.get(f"{simulator.base_url}/_sim/state", params={"repo": REPO}) as resp:
            state = (await resp.json())["repos"][REPO]
    assert [p["head"] for p in state["pulls"]] == ["topic"] and [i["number"] for i in state["issues"]] == [1]
    assert [(s["head_branch"], s["status"]) for s in state["check_suites"]] == [("topic", "queued")]
    assert state["milestones"] == [{"number": 1, "title": "v1.0.0", "state": "open", "issues": [1]}]
    assert len(simulator.ci.held) == 1 and receiver.events == []
