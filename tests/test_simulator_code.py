"""The simulator's code routes (git data, archives, compare, pull requests, reviews, statuses, releases,
milestones), driven over HTTP by the real gidgethub client."""

from __future__ import annotations

import base64
import io
import tarfile

import aiohttp
import pytest
from gidgethub import BadRequest, InvalidField, ValidationError, apps
from gidgethub.aiohttp import GitHubAPI

from chantbot_sim.github import GitHubSimulator
from tests.conftest import APP_ID, INSTALLATION, REPO, KeyPair

API = f"/repos/{REPO}"
CORE = "src/widgets/core.py"
NUMBERED = "".join(f"line {n}\n" for n in range(1, 21))


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def token(simulator: GitHubSimulator, session: aiohttp.ClientSession, app_key: KeyPair) -> str:
    app = GitHubAPI(session, "chantbot-test", base_url=simulator.base_url)
    answer = await apps.get_installation_access_token(app, installation_id=str(INSTALLATION), app_id=str(APP_ID),
                                                      private_key=app_key.private_pem)
    return answer["token"]


@pytest.fixture
async def gh(simulator: GitHubSimulator, session: aiohttp.ClientSession, token: str) -> GitHubAPI:
    return GitHubAPI(session, "chantbot-test", oauth_token=token, base_url=simulator.base_url)


async def commit(gh: GitHubAPI, branch: str, files: dict[str, str | None], message: str) -> str:
    """Commit through the git data API as chantbot does (blobs in the tree, no force); returns the sha."""
    try:
        head = (await gh.getitem(f"{API}/git/ref/heads/{branch}"))["object"]["sha"]
        new_branch = False
    except BadRequest:
        head, new_branch = (await gh.getitem(f"{API}/git/ref/heads/main"))["object"]["sha"], True
    base_tree = (await gh.getitem(f"{API}/git/commits/{head}"))["tree"]["sha"]
    entries = [{"path": p, "mode": "100644", "type": "blob", **({"sha": None} if t is None else {"content": t})}
               for p, t in files.items()]
    tree = await gh.post(f"{API}/git/trees", data={"base_tree": base_tree, "tree": entries})
    made = await gh.post(f"{API}/git/commits", data={"message": message, "tree": tree["sha"], "parents": [head]})
    if new_branch:
        await gh.post(f"{API}/git/refs", data={"ref": f"refs/heads/{branch}", "sha": made["sha"]})
    else:
        await gh.patch(f"{API}/git/refs/heads/{branch}", data={"sha": made["sha"], "force": False})
    return made["sha"]


async def open_draft(gh: GitHubAPI, simulator: GitHubSimulator) -> dict:
    simulator.push(REPO, "main", {"src/numbers.txt": NUMBERED}, user="maint", message="Add numbers")
    await commit(gh, "chant/issue-1", {"src/numbers.txt": NUMBERED.replace("line 10\n", "line ten\n"),
                                       "tests/test_numbers.py": "def test_ten():\n    assert 'ten'\n"}, "Fix #1")
    return await gh.post(f"{API}/pulls", data={"title": "Fix #1", "head": "acme:chant/issue-1", "base": "main",
                                               "body": "Refs #1", "draft": True})


async def test_git_data_commit_with_base_tree_blobs_and_deletion(simulator, gh):
    blob = await gh.post(f"{API}/git/blobs", data={"content": base64.b64encode(b"\x00binary").decode(),
                                                   "encoding": "base64"})
    fetched = await gh.getitem(f"{API}/git/blobs/{blob['sha']}")
    assert (fetched["encoding"], base64.b64decode(fetched["content"]), fetched["size"]) == ("base64", b"\x00binary", 7)

    main = (await gh.getitem(f"{API}/git/ref/heads/main"))["object"]["sha"]
    base_tree = (await gh.getitem(f"{API}/git/commits/{main}"))["tree"]["sha"]
    tree = await gh.post(f"{API}/git/trees", data={"base_tree": base_tree, "tree": [
        {"path": "data/blob.bin", "mode": "100644", "type": "blob", "sha": blob["sha"]},
        {"path": "tests/test_core.py", "mode": "100644", "type": "blob", "content": "def test_x():\n    pass\n"},
        {"path": "README.md", "mode": "100644", "type": "blob", "sha": None}]})
    made = await gh.post(f"{API}/git/commits", data={"message": "Reproduce #1", "tree": tree["sha"], "parents": [main]})
    ref = await gh.post(f"{API}/git/refs", data={"ref": "refs/heads/chant/issue-1", "sha": made["sha"]})
    assert ref["ref"] == "refs/heads/chant/issue-1" and ref["object"]["sha"] == made["sha"]

    listing = await gh.getitem(f"{API}/git/trees/{tree['sha']}?recursive=1")
    blobs = {e["path"]: e["size"] for e in listing["tree"] if e["type"] == "blob"}
    assert blobs == {"data/blob.bin": 7, CORE: len(simulator.file(REPO, CORE)), "tests/test_core.py": 23}
    assert listing["truncated"] is False
    simulator.tree_limit = 2
    assert (await gh.getitem(f"{API}/git/trees/{tree['sha']}?recursive=1"))["truncated"] is True

    for bad in ("../outside.txt", ".git/config", "a//b"):
        with pytest.raises(BadRequest) as malformed:
            await gh.post(f"{API}/git/trees", data={"base_tree": base_tree, "tree": [
                {"path": bad, "mode": "100644", "type": "blob", "content": "x"}]})
        assert malformed.value.status_code == 422

    with pytest.raises(BadRequest) as not_fast_forward:
        await gh.patch(f"{API}/git/refs/heads/chant/issue-1", data={"sha": main, "force": False})
    assert "not a fast forward" in str(not_fast_forward.value)
    await gh.patch(f"{API}/git/refs/heads/chant/issue-1", data={"sha": main, "force": True})
    log = [(e["ref"], e["via"], e["forced"]) for e in simulator.ref_log(REPO)]
    assert log[-2:] == [("refs/heads/chant/issue-1", "git", False), ("refs/heads/chant/issue-1", "git", True)]


async def test_tarball_is_a_redirect_to_a_real_tar_gz_of_the_tree(simulator, gh, session, token):
    sha = simulator.push(REPO, "chant/issue-2", {"tests/test_core.py": "def test_x():\n    pass\n"}, user="maint")
    async with session.get(f"{simulator.base_url}{API}/tarball/chant/issue-2", allow_redirects=False,
                           headers={"Authorization": f"token {token}"}) as resp:
        assert resp.status == 302
        location = resp.headers["Location"]
    assert simulator.requests[-1]["status"] == 302
    async with session.get(location) as download:  # a download link needs no token, as codeload's
        assert download.status == 200
        data = await download.read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        files = {m.name: archive.extractfile(m).read().decode() for m in archive.getmembers() if m.isfile()}
    top = f"acme-widgets-{sha[:7]}"
    assert files == {f"{top}/{path}": text for path, text in simulator.files(REPO, branch="chant/issue-2").items()}
    assert f"{top}/tests/test_core.py" in files
    with pytest.raises(BadRequest) as missing:
        await gh.getitem(f"{API}/tarball/no-such-branch")
    assert missing.value.status_code == 404


async def test_compare_commits_and_branches(simulator, gh):
    simulator.push(REPO, "main", {"src/numbers.txt": NUMBERED}, user="maint")
    fix = await commit(gh, "chant/issue-1", {"src/numbers.txt": NUMBERED.replace("line 10\n", "line ten\n"),
                                             "docs/new.md": "new\n", "README.md": None}, "Fix #1")

    compared = await gh.getitem(f"{API}/compare/main...chant/issue-1")
    assert (compared["status"], compared["ahead_by"], compared["behind_by"]) == ("ahead", 1, 0)
    assert [c["sha"] for c in compared["commits"]] == [fix]
    files = {f["filename"]: f for f in compared["files"]}
    assert {name: f["status"] for name, f in files.items()} == {
        "README.md": "removed", "docs/new.md": "added", "src/numbers.txt": "modified"}
    numbers = files["src/numbers.txt"]
    assert (numbers["additions"], numbers["deletions"], numbers["changes"]) == (1, 1, 2)
    assert numbers["patch"] == ("@@ -7,7 +7,7 @@\n line 7\n line 8\n line 9\n-line 10\n+line ten\n"
                                " line 11\n line 12\n line 13")

    one = await gh.getitem(f"{API}/commits/{fix}")
    assert one["sha"] == fix and one["commit"]["message"] == "Fix #1"
    assert one["stats"] == {"total": 4, "additions": 2, "deletions": 2}
    assert sorted(f["filename"] for f in one["files"]) == ["README.md", "docs/new.md", "src/numbers.txt"]

    history = [c["sha"] async for c in gh.getiter(f"{API}/commits?sha=chant/issue-1")]
    assert history[0] == fix and len(history) == 3  # the fix, the person's push, the initial commit
    touching = [c["commit"]["message"] async for c in gh.getiter(f"{API}/commits?sha=chant/issue-1&path=docs")]
    assert touching == ["Fix #1"]

    branches = [b async for b in gh.getiter(f"{API}/branches")]
    assert {b["name"]: b["commit"]["sha"] for b in branches} == {
        "chant/issue-1": fix, "main": simulator.dump(REPO)["repos"][REPO]["branches"]["main"]["sha"]}


async def test_draft_pull_request_lifecycle(simulator, gh):
    pull = await open_draft(gh, simulator)
    assert (pull["number"], pull["draft"], pull["state"], pull["head"]["ref"], pull["base"]["ref"]) == (
        1, True, "open", "chant/issue-1", "main")
    assert (pull["commits"], pull["changed_files"], pull["additions"], pull["deletions"]) == (1, 2, 3, 1)
    assert pull["user"]["login"] == simulator.bot_login

    with pytest.raises(ValidationError) as duplicate:
        await gh.post(f"{API}/pulls", data={"title": "again", "head": "acme:chant/issue-1", "base": "main"})
    assert "A pull request already exists for acme:chant/issue-1." in str(duplicate.value)
    simulator.push(REPO, "empty", {}, user="maint", message="nothing new")
    await gh.patch(f"{API}/git/refs/heads/empty", data={"sha": simulator.dump(REPO)["repos"][REPO]["branches"]
                                                        ["main"]["sha"], "force": True})
    with pytest.raises(ValidationError) as no_commits:
        await gh.post(f"{API}/pulls", data={"title": "t", "head": "empty", "base": "main"})
    assert "No commits between main and empty" in str(no_commits.value)
    with pytest.raises(InvalidField):
        await gh.post(f"{API}/pulls", data={"title": "t", "head": "acme:nope", "base": "main"})

    found = [p["number"] async for p in gh.getiter(f"{API}/pulls?head=acme:chant/issue-1&state=open")]
    assert found == [1]
    assert [p async for p in gh.getiter(f"{API}/pulls?head=acme:other&state=all")] == []

    updated = await gh.patch(f"{API}/pulls/1", data={"title": "Fix the numbers", "body": "Fixes #1"})
    assert (updated["title"], updated["body"]) == ("Fix the numbers", "Fixes #1")
    files = [f async for f in gh.getiter(f"{API}/pulls/1/files")]
    assert [(f["filename"], f["status"]) for f in files] == [("src/numbers.txt", "modified"),
                                                             ("tests/test_numbers.py", "added")]
    assert "+line ten" in files[0]["patch"]
    commits = [c["commit"]["message"] async for c in gh.getiter(f"{API}/pulls/1/commits")]
    assert commits == ["Fix #1"]

    as_issue = [i async for i in gh.getiter(f"{API}/issues?state=all")]
    assert [(i["number"], "pull_request" in i) for i in as_issue] == [(1, True)]
    closed = await gh.patch(f"{API}/pulls/1", data={"state": "closed"})
    assert (closed["state"], closed["merged"]) == ("closed", False)
    assert [p async for p in gh.getiter(f"{API}/pulls")] == []
    assert (await gh.patch(f"{API}/pulls/1", data={"state": "open"}))["state"] == "open"


async def test_a_person_merges_a_pull_request(simulator, gh):
    await open_draft(gh, simulator)
    simulator.push(REPO, "main", {"docs/other.md": "other\n"}, user="maint", message="Meanwhile on main")
    merged = simulator.merge_pull(REPO, 1, "maint")
    assert (merged["state"], merged["merged"], merged["merged_by"]["login"]) == ("closed", True, "maint")
    main = simulator.files(REPO)
    assert "line ten\n" in main["src/numbers.txt"] and main["docs/other.md"] == "other\n"
    merge_commit = await gh.getitem(f"{API}/commits/main")
    assert merge_commit["sha"] == merged["merge_commit_sha"] and len(merge_commit["parents"]) == 2
    fetched = await gh.getitem(f"{API}/pulls/1")
    assert (fetched["merged"], fetched["merged_at"] is not None) == (True, True)

    payload = simulator.pull_payload("closed", REPO, 1)
    assert (payload["action"], payload["number"], payload["pull_request"]["merged"]) == ("closed", 1, True)
    assert payload["sender"]["login"] == "maint" and payload["installation"]["id"] == INSTALLATION
    assert simulator.pull_payload("opened", REPO, 1)["sender"]["login"] == simulator.bot_login
    [dumped] = simulator.dump(REPO)["repos"][REPO]["pulls"]
    assert (dumped["merged"], dumped["merged_by"], dumped["draft"]) == (True, "maint", True)
    with pytest.raises(ValueError):
        simulator.merge_pull(REPO, 1, "maint")


async def test_reviews_and_review_comments(simulator, gh):
    await open_draft(gh, simulator)
    for event, reason in (("APPROVE", "Can not approve your own pull request"),
                          ("REQUEST_CHANGES", "Can not request changes on your own pull request")):
        with pytest.raises(ValidationError) as own:
            await gh.post(f"{API}/pulls/1/reviews", data={"event": event, "body": "ok"})
        assert own.value.status_code == 422 and reason in str(own.value)

    with pytest.raises(ValidationError) as outside:
        await gh.post(f"{API}/pulls/1/reviews", data={"event": "COMMENT", "body": "b", "comments": [
            {"path": "src/numbers.txt", "line": 10, "side": "RIGHT", "body": "ok"},
            {"path": "src/numbers.txt", "line": 1, "side": "RIGHT", "body": "not in the diff"}]})
    assert "Line could not be resolved" in str(outside.value)
    assert simulator.reviews(REPO, 1) == [] and simulator.review_comments(REPO, 1) == []

    review = await gh.post(f"{API}/pulls/1/reviews", data={"event": "COMMENT", "body": "Two findings", "comments": [
        {"path": "src/numbers.txt", "line": 10, "side": "RIGHT", "body": "Why words?"},
        {"path": "src/numbers.txt", "line": 10, "side": "LEFT", "body": "The old line"}]})
    assert (review["state"], review["body"], review["user"]["login"]) == ("COMMENTED", "Two findings",
                                                                         simulator.bot_login)
    edited = await gh.put(f"{API}/pulls/1/reviews/{review['id']}", data={"body": "Two findings (edited)"})
    assert edited["body"] == "Two findings (edited)"
    assert [r["state"] async for r in gh.getiter(f"{API}/pulls/1/reviews")] == ["COMMENTED"]

    comments = [c async for c in gh.getiter(f"{API}/pulls/1/comments")]
    assert [(c["path"], c["line"], c["side"], c["pull_request_review_id"]) for c in comments] == [
        ("src/numbers.txt", 10, "RIGHT", review["id"]), ("src/numbers.txt", 10, "LEFT", review["id"])]
    assert comments[0]["position"] == 5 and comments[0]["diff_hunk"].endswith("+line ten")
    await gh.patch(f"{API}/pulls/comments/{comments[0]['id']}", data={"body": "Why words? (edited)"})
    await gh.delete(f"{API}/pulls/comments/{comments[1]['id']}")
    assert [c["body"] for c in simulator.review_comments(REPO, 1)] == ["Why words? (edited)"]

    simulator.push(REPO, "feature", {"docs/feature.md": "x\n"}, user="maint")
    theirs = simulator.add_pull(REPO, head="feature", title="A person's change", user="maint")
    approved = await gh.post(f"{API}/pulls/{theirs['number']}/reviews", data={"event": "APPROVE"})
    assert approved["state"] == "APPROVED"


async def test_commit_statuses_and_the_combined_state(simulator, gh):
    head = simulator.push(REPO, "chant/issue-1", {"a.txt": "a\n"}, user="maint")
    with pytest.raises(BadRequest) as unknown:
        await gh.post(f"{API}/statuses/{'0' * 40}", data={"state": "pending"})
    assert unknown.value.status_code == 422
    with pytest.raises(BadRequest):
        await gh.post(f"{API}/statuses/{head}", data={"state": "approved", "context": "chantbot/approval"})
    with pytest.raises(BadRequest):
        await gh.post(f"{API}/statuses/{head}", data={"state": "pending", "description": "x" * 141})

    assert (await gh.getitem(f"{API}/commits/{head}/status"))["state"] == "pending"  # no status yet
    pending = await gh.post(f"{API}/statuses/{head}", data={
        "state": "pending", "context": "chantbot/approval", "description": "Waiting for /approve",
        "target_url": "https://github.com/acme/widgets/issues/1"})
    assert (pending["state"], pending["context"], pending["creator"]["login"]) == (
        "pending", "chantbot/approval", simulator.bot_login)
    await gh.post(f"{API}/statuses/{head}", data={"state": "success", "context": "chantbot/approval"})
    await gh.post(f"{API}/statuses/{head}", data={"state": "success", "context": "lint"})

    listed = [(s["context"], s["state"]) async for s in gh.getiter(f"{API}/commits/chant/issue-1/statuses")]
    assert listed == [("lint", "success"), ("chantbot/approval", "success"), ("chantbot/approval", "pending")]
    combined = await gh.getitem(f"{API}/commits/chant/issue-1/status")
    assert (combined["state"], combined["sha"], combined["total_count"]) == ("success", head, 2)
    await gh.post(f"{API}/statuses/{head}", data={"state": "failure", "context": "chantbot/approval"})
    assert (await gh.getitem(f"{API}/commits/{head}/status"))["state"] == "failure"


async def test_writes_to_new_routes_count_against_the_secondary_limit(simulator, gh):
    head = simulator.push(REPO, "chant/issue-1", {"a.txt": "a\n"}, user="maint")
    simulator.write_limits = [(1, 60.0)]
    await gh.post(f"{API}/statuses/{head}", data={"state": "pending", "context": "c"})
    with pytest.raises(BadRequest) as limited:
        await gh.post(f"{API}/releases", data={"tag_name": "v1", "draft": True})
    assert limited.value.status_code == 403 and simulator.requests[-1]["limited"] == "secondary"


async def test_draft_release_notes_and_publishing(simulator, gh):
    await open_draft(gh, simulator)
    simulator.merge_pull(REPO, 1, "maint")
    draft = await gh.post(f"{API}/releases", data={"tag_name": "v1.0.0", "name": "v1.0.0", "body": "first",
                                                   "draft": True})
    assert (draft["draft"], draft["tag_name"], draft["published_at"]) == (True, "v1.0.0", None)
    with pytest.raises(BadRequest) as draft_tag:
        await gh.getitem(f"{API}/releases/tags/v1.0.0")
    assert draft_tag.value.status_code == 404
    assert (await gh.patch(f"{API}/releases/{draft['id']}", data={"body": "second"}))["body"] == "second"
    assert [r["body"] async for r in gh.getiter(f"{API}/releases")] == ["second"]
    assert (await gh.getitem(f"{API}/releases/{draft['id']}"))["name"] == "v1.0.0"

    notes = await gh.post(f"{API}/releases/generate-notes", data={"tag_name": "v1.0.0"})
    assert notes["name"] == "v1.0.0"
    assert f"* Fix #1 by @{simulator.app_slug} in https://github.com/{REPO}/pull/1" in notes["body"]
    assert notes["body"].endswith(f"**Full Changelog**: https://github.com/{REPO}/commits/v1.0.0")

    published = await gh.patch(f"{API}/releases/{draft['id']}", data={"draft": False})
    assert published["draft"] is False and published["published_at"]
    assert (await gh.getitem(f"{API}/releases/tags/v1.0.0"))["id"] == draft["id"]
    assert (await gh.getitem(f"{API}/git/ref/tags/v1.0.0"))["object"]["sha"] == simulator.dump(REPO)["repos"][REPO][
        "branches"]["main"]["sha"]
    later = await gh.post(f"{API}/releases/generate-notes", data={"tag_name": "v1.1.0"})
    assert later["body"] == f"**Full Changelog**: https://github.com/{REPO}/compare/v1.0.0...v1.1.0"


async def test_milestones_and_issue_filters(simulator, gh):
    for title in ("one", "two", "three"):
        simulator.add_issue(REPO, title=title, body="b", user="reporter", labels=["bug"] if title != "two" else [])
    simulator.add_milestone(REPO, "v1.0.0", issues=[1, 2])
    simulator.add_milestone(REPO, "v0.9.0", state="closed")
    milestones = [m async for m in gh.getiter(f"{API}/milestones")]
    assert [(m["number"], m["title"], m["open_issues"]) for m in milestones] == [(1, "v1.0.0", 2)]
    assert len([m async for m in gh.getiter(f"{API}/milestones?state=all")]) == 2

    in_milestone = [i["number"] async for i in gh.getiter(f"{API}/issues?milestone=1&state=all")]
    assert sorted(in_milestone) == [1, 2]
    assert [i["number"] async for i in gh.getiter(f"{API}/issues?milestone=none")] == [3]
    assert [i["number"] async for i in gh.getiter(f"{API}/issues?milestone=1&labels=bug")] == [1]
    assert (await gh.getitem(f"{API}/issues/1"))["milestone"]["title"] == "v1.0.0"
