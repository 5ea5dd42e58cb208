"""The GitHub simulator, driven over HTTP by the real gidgethub client."""

from __future__ import annotations

import base64
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from gidgethub import BadRequest, GitHubBroken, apps, sansio
from gidgethub.aiohttp import GitHubAPI

from chantbot_sim.github import GitHubSimulator, app_key_pair
from tests.conftest import ManualClock

APP_ID = 321
INSTALLATION = 99
REPO = "acme/widgets"


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return app_key_pair()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
async def sim(keys: tuple[str, str], clock: ManualClock):
    simulator = GitHubSimulator(app_id=APP_ID, public_key_pem=keys[1], clock=clock)
    simulator.add_repo(REPO, files={"README.md": "# widgets\n", "src/core.py": "x = 1\n"},
                       collaborators={"maint": "maintain", "trin": "triage"})
    simulator.add_repo("acme/secret", private=True)
    simulator.add_installation(INSTALLATION, "acme", [REPO, "acme/secret"])
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def installation_client(sim: GitHubSimulator, session: aiohttp.ClientSession, private_key: str,
                              **kwargs) -> GitHubAPI:
    app = GitHubAPI(session, "chantbot-test", base_url=sim.base_url)
    token = await apps.get_installation_access_token(app, installation_id=str(INSTALLATION), app_id=str(APP_ID),
                                                     private_key=private_key)
    return GitHubAPI(session, "chantbot-test", oauth_token=token["token"], base_url=sim.base_url, **kwargs)


@pytest.fixture
async def gh(sim, session, keys) -> GitHubAPI:
    return await installation_client(sim, session, keys[0])


async def test_app_jwt_mints_an_installation_token_that_expires(sim, session, keys, clock):
    app = GitHubAPI(session, "chantbot-test", base_url=sim.base_url)
    token = await apps.get_installation_access_token(app, installation_id=str(INSTALLATION), app_id=str(APP_ID),
                                                     private_key=keys[0])
    assert token["token"].startswith("ghs_") and token["expires_at"].endswith("Z")
    gh = GitHubAPI(session, "chantbot-test", oauth_token=token["token"], base_url=sim.base_url)
    assert (await gh.getitem(f"/repos/{REPO}"))["default_branch"] == "main"

    clock.now += sim.token_ttl
    with pytest.raises(BadRequest) as expired:
        await gh.getitem(f"/repos/{REPO}")
    assert expired.value.status_code == 401

    stranger_key, _ = app_key_pair()
    with pytest.raises(BadRequest) as bad_jwt:
        await apps.get_installation_access_token(app, installation_id=str(INSTALLATION), app_id=str(APP_ID),
                                                 private_key=stranger_key)
    assert bad_jwt.value.status_code == 401


async def test_repository_outside_the_installation_is_hidden(sim, gh):
    sim.add_repo("acme/other")
    with pytest.raises(BadRequest) as hidden:
        await gh.getitem("/repos/acme/other")
    assert hidden.value.status_code == 404


async def test_issue_and_comment_round_trip(sim, gh):
    sim.add_issue(REPO, title="Crash on save", body="It crashes.", user="reporter")
    issue = await gh.getitem(f"/repos/{REPO}/issues/1")
    assert (issue["title"], issue["user"]["login"], issue["state"]) == ("Crash on save", "reporter", "open")

    sim.add_comment(REPO, 1, body="Same here", user="maint")
    posted = await gh.post(issue["comments_url"], data={"body": "Thanks for the report."})
    assert posted["user"] == {**posted["user"], "login": sim.bot_login, "type": "Bot"}
    assert [c["body"] for c in sim.comments(REPO, 1, bot_only=True)] == ["Thanks for the report."]
    assert [c["author_association"] for c in sim.comments(REPO, 1)] == ["COLLABORATOR", "NONE"]

    await gh.patch(f"/repos/{REPO}/issues/comments/{posted['id']}", data={"body": "Edited."})
    closed = await gh.patch(f"/repos/{REPO}/issues/1", data={"state": "closed", "state_reason": "not_planned"})
    assert (closed["state"], closed["state_reason"]) == ("closed", "not_planned")
    assert [c["body"] for c in sim.comments(REPO, 1)] == ["Same here", "Edited."]

    await gh.post(f"/repos/{REPO}/issues/comments/{posted['id']}/reactions", data={"content": "eyes"},
                  accept="application/vnd.github+json")
    assert sim.reactions(posted["id"]) == ["eyes"]


async def test_assignees_are_checked_added_and_removed(sim, gh):
    sim.add_issue(REPO, title="Crash", body="x", user="reporter")
    await gh.getitem(f"/repos/{REPO}/assignees/trin")  # 204: triage access may be assigned
    with pytest.raises(BadRequest) as refused:
        await gh.getitem(f"/repos/{REPO}/assignees/reporter")
    assert refused.value.status_code == 404
    issue = await gh.post(f"/repos/{REPO}/issues/1/assignees", data={"assignees": ["trin", "reporter"]})
    assert [a["login"] for a in issue["assignees"]] == ["trin"] and issue["assignee"]["login"] == "trin"
    await gh.delete(f"/repos/{REPO}/issues/1/assignees", data={"assignees": ["trin"]})
    assert (await gh.getitem(f"/repos/{REPO}/issues/1"))["assignees"] == []


async def test_a_repository_says_whether_it_has_discussions(sim, gh):
    assert (await gh.getitem(f"/repos/{REPO}"))["has_discussions"] is False
    sim.find_repo(REPO).has_discussions = True
    assert (await gh.getitem(f"/repos/{REPO}"))["has_discussions"] is True


async def test_labels_add_set_remove_and_events(sim, gh):
    sim.add_issue(REPO, title="Slow", body=None, user="reporter")
    sim.label_issue(REPO, 1, "bug", user="maint")

    labels = await gh.post(f"/repos/{REPO}/issues/1/labels", data={"labels": ["priority: high"]})
    assert [lab["name"] for lab in labels] == ["bug", "priority: high"]
    created = next(lab for lab in sim.repo_labels(REPO) if lab["name"] == "priority: high")
    assert created["color"] == "ededed"

    await gh.delete(f"/repos/{REPO}/issues/1/labels/{quote('priority: high', safe='')}")
    with pytest.raises(BadRequest) as missing:
        await gh.delete(f"/repos/{REPO}/issues/1/labels/{quote('priority: high', safe='')}")
    assert missing.value.status_code == 404

    await gh.put(f"/repos/{REPO}/issues/1/labels", data={"labels": ["needs-triage"]})
    assert sim.labels_on(REPO, 1) == ["needs-triage"]
    events = [(e["event"], e["label"], e["by_bot"]) for e in sim.label_events(REPO, 1)]
    assert events == [("labeled", "bug", False), ("labeled", "priority: high", True),
                      ("unlabeled", "priority: high", True), ("unlabeled", "bug", True),
                      ("labeled", "needs-triage", True)]

    with pytest.raises(BadRequest) as exists:
        await gh.post(f"/repos/{REPO}/labels", data={"name": "Bug", "color": "ff0000"})
    assert exists.value.status_code == 422
    assert exists.value.errors == [{"resource": "Label", "code": "already_exists", "field": "name"}]


@pytest.mark.parametrize(("repo", "login", "permission", "role"), [
    (REPO, "maint", "write", "maintain"),
    (REPO, "trin", "read", "triage"),
    (REPO, "passerby", "read", "read"),
    ("acme/secret", "passerby", "none", "none"),
])
async def test_permission_roles(gh, repo, login, permission, role):
    answer = await gh.getitem(f"/repos/{repo}/collaborators/{login}/permission")
    assert (answer["permission"], answer["role_name"], answer["user"]["login"]) == (permission, role, login)


async def test_contents_answer_304_to_gidgethub_cache_and_refund_the_budget(sim, session, keys):
    gh = await installation_client(sim, session, keys[0], cache={})
    first = await gh.getitem(f"/repos/{REPO}/contents/README.md")
    remaining = gh.rate_limit.remaining
    second = await gh.getitem(f"/repos/{REPO}/contents/README.md")
    assert base64.b64decode(second["content"]).decode() == "# widgets\n" and second == first
    assert sim.requests[-1]["status"] == 304
    assert (await gh.getitem("/rate_limit"))["rate"]["remaining"] == remaining

    with pytest.raises(BadRequest) as missing:
        await gh.getitem(f"/repos/{REPO}/contents/.github/chantbot.yml")
    assert missing.value.status_code == 404


async def test_git_data_flow_commits_a_new_branch(sim, gh):
    head = await gh.getitem(f"/repos/{REPO}/git/ref/heads/main")
    await gh.post(f"/repos/{REPO}/git/refs", data={"ref": "refs/heads/chant-specs", "sha": head["object"]["sha"]})
    with pytest.raises(BadRequest) as exists:
        await gh.post(f"/repos/{REPO}/git/refs", data={"ref": "refs/heads/chant-specs", "sha": head["object"]["sha"]})
    assert exists.value.status_code == 422

    base = await gh.getitem(f"/repos/{REPO}/git/commits/{head['object']['sha']}")
    tree = await gh.post(f"/repos/{REPO}/git/trees", data={"base_tree": base["tree"]["sha"], "tree": [
        {"path": ".chant/specs/2024-01-01-001-abc.md", "mode": "100644", "type": "blob", "content": "# spec\n"},
        {"path": "src/core.py", "mode": "100644", "type": "blob", "sha": None}]})
    commit = await gh.post(f"/repos/{REPO}/git/commits", data={
        "message": "Add spec", "tree": tree["sha"], "parents": [head["object"]["sha"]]})
    await gh.patch(f"/repos/{REPO}/git/refs/heads/chant-specs", data={"sha": commit["sha"], "force": False})

    assert sim.files(REPO, branch="chant-specs") == {".chant/specs/2024-01-01-001-abc.md": "# spec\n",
                                                     "README.md": "# widgets\n"}
    assert sim.branches(REPO) == ["chant-specs", "main"]
    listing = await gh.getitem(f"/repos/{REPO}/git/trees/{tree['sha']}?recursive=1")
    assert [e["path"] for e in listing["tree"] if e["type"] == "blob"] == [
        ".chant/specs/2024-01-01-001-abc.md", "README.md"]

    with pytest.raises(BadRequest) as not_ff:
        await gh.patch(f"/repos/{REPO}/git/refs/heads/chant-specs", data={"sha": head["object"]["sha"]})
    assert not_ff.value.status_code == 422


async def test_secondary_limit_answers_403_with_retry_after(sim, gh, clock):
    sim.write_limits = [(2, 60.0)]
    sim.add_issue(REPO, title="t", body="b", user="reporter")
    for n in range(2):
        await gh.post(f"/repos/{REPO}/issues/1/comments", data={"body": f"comment {n}"})
    with pytest.raises(BadRequest) as limited:
        await gh.post(f"/repos/{REPO}/issues/1/comments", data={"body": "one too many"})
    assert limited.value.status_code == 403
    assert "secondary rate limit" in str(limited.value)
    assert int(limited.value.headers["retry-after"]) == 60
    assert sim.violations["secondary"] == 1 and sim.requests[-1]["limited"] == "secondary"
    assert len(sim.comments(REPO, 1)) == 2

    clock.now += 60
    await gh.post(f"/repos/{REPO}/issues/1/comments", data={"body": "after the window"})
    assert len(sim.comments(REPO, 1)) == 3


async def test_injected_502_leaves_state_unchanged_then_succeeds(sim, gh):
    sim.add_issue(REPO, title="t", body="b", user="reporter")
    sim.fail("POST", r"/issues/1/comments$", status=502)
    with pytest.raises(GitHubBroken):
        await gh.post(f"/repos/{REPO}/issues/1/comments", data={"body": "hello"})
    assert sim.comments(REPO, 1) == []
    await gh.post(f"/repos/{REPO}/issues/1/comments", data={"body": "hello"})
    assert [c["body"] for c in sim.comments(REPO, 1)] == ["hello"]


async def test_getiter_follows_link_headers(sim, gh):
    sim.add_issue(REPO, title="busy", body="b", user="reporter")
    for n in range(25):
        sim.add_comment(REPO, 1, body=f"c{n}", user="reporter")
    bodies = [c["body"] async for c in gh.getiter(f"/repos/{REPO}/issues/1/comments?per_page=10")]
    assert bodies == [f"c{n}" for n in range(25)]
    assert [r["query"].get("page") for r in sim.requests[-3:]] == [None, "2", "3"]


async def test_unknown_route_and_missing_credentials(sim, session):
    async with session.get(f"{sim.base_url}/repos/{REPO}/nope", headers={"Authorization": "token x"}) as resp:
        assert resp.status == 404
        assert (await resp.json())["message"] == "Not Found"
    async with session.get(f"{sim.base_url}/repos/{REPO}") as resp:
        assert resp.status == 401 and "x-ratelimit-limit" in resp.headers


async def test_control_api_seeds_and_reports_state(sim, session):
    seed = {"issues": [{"repo": REPO, "title": "Seeded", "body": "b", "user": "reporter", "labels": ["bug"]}],
            "comments": [{"repo": REPO, "issue": 1, "body": "hi", "user": "maint"}]}
    async with session.post(f"{sim.base_url}/_sim/state", json=seed) as resp:
        created = await resp.json()
    assert created["issues"][0]["number"] == 1 and created["comments"][0]["body"] == "hi"
    async with session.get(f"{sim.base_url}/_sim/state", params={"repo": REPO}) as resp:
        state = (await resp.json())["repos"][REPO]
    assert state["issues"][0]["labels"] == ["bug"]
    assert state["issues"][0]["comments"][0]["by_bot"] is False
    assert state["branches"]["main"]["files"]["README.md"] == "# widgets\n"


async def test_deliver_signs_what_gidgethub_verifies(sim):
    sim.add_issue(REPO, title="t", body="b", user="reporter")
    received: list[sansio.Event] = []

    async def webhook(request: web.Request) -> web.Response:
        try:
            received.append(sansio.Event.from_http(request.headers, await request.read(), secret="s3cret"))
        except sansio.ValidationFailure:
            return web.Response(status=401)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"
    try:
        payload = sim.issue_payload("opened", REPO, 1)
        assert await sim.deliver(url, "s3cret", "issues", payload, delivery_id="d-1") == 202
        assert await sim.deliver(url, "wrong", "issues", payload) == 401
    finally:
        await runner.cleanup()
    (event,) = received
    assert (event.event, event.delivery_id, event.data["action"]) == ("issues", "d-1", "opened")
    assert event.data["installation"]["id"] == INSTALLATION
    assert event.data["issue"]["user"]["login"] == "reporter"
