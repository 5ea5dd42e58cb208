"""The simulated GitHub's code routes: commits, archives, pull requests, reviews, statuses, checks, releases."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from chantbot_sim.github.git import FileChange, locate
from chantbot_sim.github.model import CommitStatus, Issue, Release, Review, ReviewComment
from chantbot_sim.github.rest import Ctx, GitHubError, Handler, invalid, json_page, paginate
from chantbot_sim.github.world import WEB

STATUS_STATES = ("error", "failure", "pending", "success")
REVIEW_STATES = {"COMMENT": "COMMENTED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "APPROVE": "APPROVED"}
ARCHIVE_TTL = 300.0  # seconds a tarball link works, like codeload's tokens


def unprocessable(*errors: str) -> GitHubError:
    """GitHub's 422 for review rules: a plain list of messages."""
    return GitHubError(422, "Unprocessable Entity", errors=list(errors))


def _commit(ctx: Ctx, ref: str) -> str:
    sha = ctx.repo.git.resolve(ref)
    if sha is None:
        raise GitHubError(422, f"No commit found for SHA: {ref}")
    return sha


def _text(value: Any, field: str, resource: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise invalid(resource, field)
    return value


# ---------------------------------------------------------------------- commits, compare, branches, archives
async def list_commits(ctx: Ctx) -> web.Response:
    git, query = ctx.repo.git, ctx.request.query
    head = git.resolve(query.get("sha") or ctx.repo.default_branch)
    if head is None:
        raise GitHubError(404, "Not Found")
    path = query.get("path", "").strip("/")
    shas = git.history(head)
    if path:
        shas = [sha for sha in shas if _touches(ctx, sha, path)]
    return json_page(ctx, [ctx.world.render_commit_listing(ctx.repo, sha) for sha in shas])


def _touches(ctx: Ctx, sha: str, path: str) -> bool:
    git = ctx.repo.git
    parents = git.commits[sha]["parents"]
    before = git.files_at(parents[0]) if parents else {}
    after = git.files_at(sha)

    def under(files: dict[str, str]) -> dict[str, str]:
        return {p: s for p, s in files.items() if p == path or p.startswith(path + "/")}

    return under(before) != under(after)


async def get_commit(ctx: Ctx) -> web.Response:
    sha = _commit(ctx, ctx.params["ref"])
    parents = ctx.repo.git.commits[sha]["parents"]
    changes = ctx.repo.git.diff(parents[0] if parents else None, sha)
    return web.json_response(ctx.world.render_commit_listing(ctx.repo, sha, changes=changes))


async def compare(ctx: Ctx) -> web.Response:
    git, spec = ctx.repo.git, ctx.params["basehead"]
    base_ref, dots, head_ref = spec.partition("...")
    if not dots:
        base_ref, dots, head_ref = spec.partition("..")
    base, head = git.resolve(base_ref), git.resolve(head_ref)
    if not dots or base is None or head is None:
        raise GitHubError(404, "Not Found")
    merge_base = git.merge_base(base, head)
    if merge_base is None:
        raise GitHubError(404, f"No common ancestor between {base_ref} and {head_ref}.")
    ahead, behind = git.between(base, head), git.between(head, base)
    status = ("identical" if not ahead and not behind else "ahead" if not behind
              else "behind" if not ahead else "diverged")
    world, repo = ctx.world, ctx.repo
    html = f"{WEB}/{repo.full_name}/compare/{base_ref}...{head_ref}"
    return web.json_response({
        "url": f"{world.base_url}/repos/{repo.full_name}/compare/{spec}", "html_url": html,
        "permalink_url": f"{WEB}/{repo.full_name}/compare/{repo.owner}:{base}...{repo.owner}:{head}",
        "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
        "base_commit": world.render_commit_listing(repo, base),
        "merge_base_commit": world.render_commit_listing(repo, merge_base),
        "status": status, "ahead_by": len(ahead), "behind_by": len(behind), "total_commits": len(ahead),
        "commits": [world.render_commit_listing(repo, sha) for sha in ahead[:250]],
        "files": [world.render_file_change(repo, c, head) for c in git.diff(merge_base, head)[:300]]})


async def list_branches(ctx: Ctx) -> web.Response:
    api = f"{ctx.world.base_url}/repos/{ctx.repo.full_name}/commits"
    branches = [{"name": name, "commit": {"sha": ctx.repo.git.refs[f"heads/{name}"],
                                          "url": f"{api}/{ctx.repo.git.refs[f'heads/{name}']}"},
                 "protected": False} for name in ctx.world.branches(ctx.repo.full_name)]
    return json_page(ctx, branches)


async def tarball(ctx: Ctx) -> web.Response:
    """A 302 to a short-lived download link, as GitHub answers with a codeload URL."""
    sha = ctx.repo.git.resolve(ctx.params["ref"])
    if sha is None:
        raise GitHubError(404, "Not Found")
    token = secrets.token_urlsafe(16)
    ctx.world.downloads[token] = (ctx.repo.full_name, sha, ctx.world.clock() + ARCHIVE_TTL)
    location = f"{ctx.world.base_url}/_sim/codeload/{token}/{ctx.repo.owner}-{ctx.repo.name}-{sha[:7]}.tar.gz"
    return web.Response(status=302, headers={"Location": location})


# ---------------------------------------------------------------------- pull requests
def _pull(ctx: Ctx) -> Issue:
    issue = ctx.repo.issues.get(int(ctx.params["number"]))
    if issue is None or issue.pull is None:
        raise GitHubError(404, "Not Found")
    return issue


def _pull_error(message: str) -> GitHubError:
    return GitHubError(422, "Validation Failed", errors=[{"resource": "PullRequest", "code": "custom",
                                                          "message": message}])


def _check_open_pull(ctx: Ctx, head: str, base: str, *, other_than: int = 0) -> None:
    """GitHub's rules for an open pull request: real branches, commits between them, one per head and base."""
    git = ctx.repo.git
    if f"heads/{head}" not in git.refs:
        raise GitHubError(422, "Validation Failed", errors=[{"resource": "PullRequest", "field": "head",
                                                             "code": "invalid"}])
    if f"heads/{base}" not in git.refs:
        raise GitHubError(422, "Validation Failed", errors=[{"resource": "PullRequest", "field": "base",
                                                             "code": "invalid"}])
    if any(i.pull and i.state == "open" and i.pull.head == head and i.pull.base == base and i.number != other_than
           for i in ctx.repo.issues.values()):
        raise _pull_error(f"A pull request already exists for {ctx.repo.owner}:{head}.")
    if not git.between(git.refs[f"heads/{base}"], git.refs[f"heads/{head}"]):
        raise _pull_error(f"No commits between {base} and {head}")


async def create_pull(ctx: Ctx) -> web.Response:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    owner, _, head = str(ctx.need("head")).rpartition(":")
    base = str(ctx.need("base"))
    title = _text(body.get("title"), "title", "PullRequest")
    if not title:
        raise invalid("PullRequest", "title", "missing_field")
    if owner and owner.lower() != ctx.repo.owner.lower():
        raise GitHubError(422, "Validation Failed", errors=[{"resource": "PullRequest", "field": "head",
                                                             "code": "invalid"}])
    _check_open_pull(ctx, head, base)
    issue = ctx.world.open_pull(ctx.repo, head=head, base=base, title=title,
                                body=_text(body.get("body"), "body", "PullRequest"), user=ctx.actor,
                                draft=bool(body.get("draft")))
    data = ctx.world.render_pull(ctx.repo, issue)
    return web.json_response(data, status=201, headers={"Location": data["url"]})


async def list_pulls(ctx: Ctx) -> web.Response:
    """Pull requests by state, base and head. A `head` without `owner:` is ignored, as GitHub ignores it."""
    query = ctx.request.query
    state = query.get("state", "open")
    owner, colon, head = query.get("head", "").partition(":")
    pulls = [i for i in ctx.repo.issues.values() if i.pull and state in ("all", i.state)
             and (not colon or (owner.lower() == ctx.repo.owner.lower() and i.pull.head == head))
             and query.get("base", i.pull.base) == i.pull.base]
    key = (lambda i: (i.updated, i.number)) if query.get("sort") == "updated" else (lambda i: i.number)
    pulls.sort(key=key, reverse=query.get("direction", "desc") == "desc")
    return json_page(ctx, [ctx.world.render_pull(ctx.repo, i) for i in pulls])


async def get_pull(ctx: Ctx) -> web.Response:
    return web.json_response(ctx.world.render_pull(ctx.repo, _pull(ctx)))


async def update_pull(ctx: Ctx) -> web.Response:
    issue, body, now = _pull(ctx), ctx.body if isinstance(ctx.body, dict) else {}, ctx.world.clock()
    pull = issue.pull
    assert pull is not None
    state = body.get("state") or issue.state
    if state not in ("open", "closed"):
        raise invalid("PullRequest", "state")
    base = body.get("base") or pull.base
    if state == "open" and (issue.state == "closed" or base != pull.base):
        if pull.merged_at is not None:
            raise _pull_error("Cannot reopen a merged pull request")
        _check_open_pull(ctx, pull.head, base, other_than=issue.number)
    if body.get("title") is not None:
        issue.title = str(body["title"])
    if "body" in body:
        issue.body = _text(body["body"], "body", "PullRequest")
    ctx.world.pull_shas(ctx.repo, issue)  # remember the shas it closes on
    pull.base = base
    if state == "closed" and issue.state == "open":
        issue.closed_at, issue.closed_by = now, ctx.actor
    elif state == "open":
        issue.closed_at, issue.closed_by = None, None
    issue.state, issue.updated = state, now
    return web.json_response(ctx.world.render_pull(ctx.repo, issue))


async def list_pull_files(ctx: Ctx) -> web.Response:
    issue = _pull(ctx)
    _, changes = ctx.world.pull_changes(ctx.repo, issue)
    head = ctx.world.pull_shas(ctx.repo, issue)[1]
    return json_page(ctx, [ctx.world.render_file_change(ctx.repo, c, head) for c in changes[:3000]])


async def list_pull_commits(ctx: Ctx) -> web.Response:
    commits, _ = ctx.world.pull_changes(ctx.repo, _pull(ctx))
    return json_page(ctx, [ctx.world.render_commit_listing(ctx.repo, sha) for sha in commits[:250]])


# ---------------------------------------------------------------------- reviews and review comments
def _review(ctx: Ctx, issue: Issue) -> Review:
    assert issue.pull is not None
    for review in issue.pull.reviews:
        if review.id == int(ctx.params["review_id"]):
            return review
    raise GitHubError(404, "Not Found")


def _place(ctx: Ctx, issue: Issue, spec: Any) -> tuple[str, int, str, int, str]:
    """(path, line, side, diff position, diff hunk) of a review comment, checked against the pull's diff."""
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
        raise unprocessable("Path could not be resolved")
    side = spec.get("side") or "RIGHT"
    line = spec.get("line")
    if side not in ("LEFT", "RIGHT") or not isinstance(line, int) or isinstance(line, bool):
        raise unprocessable("Line could not be resolved")
    _, changes = ctx.world.pull_changes(ctx.repo, issue)
    change: FileChange | None = next((c for c in changes if c.path == spec["path"]), None)
    if change is None:
        raise unprocessable("Path could not be resolved")
    found = locate(change.patch or "", side, line)
    if found is None:
        raise unprocessable("Line could not be resolved")
    return spec["path"], line, side, *found


def _comment_body(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("PullRequestReviewComment", "body", "missing_field")
    return value


def _new_review_comment(ctx: Ctx, issue: Issue, spec: Any, review_id: int | None, commit_id: str) -> ReviewComment:
    path, line, side, position, hunk = _place(ctx, issue, spec)
    now = ctx.world.clock()
    return ReviewComment(ctx.world.next_id(), issue.number, review_id, ctx.actor, _comment_body(spec.get("body")),
                         path, line, side, commit_id, hunk, position, now, now)


async def create_review(ctx: Ctx) -> web.Response:
    issue, body = _pull(ctx), ctx.body if isinstance(ctx.body, dict) else {}
    pull = issue.pull
    assert pull is not None
    event = body.get("event")
    if event is not None and event not in REVIEW_STATES:
        raise invalid("PullRequestReview", "event")
    if event == "APPROVE" and issue.user == ctx.actor:
        raise unprocessable("Can not approve your own pull request")
    if event == "REQUEST_CHANGES" and issue.user == ctx.actor:
        raise unprocessable("Can not request changes on your own pull request")
    text = _text(body.get("body"), "body", "PullRequestReview") or ""
    specs = body.get("comments") or []
    if not isinstance(specs, list):
        raise invalid("PullRequestReview", "comments")
    if event in ("COMMENT", "REQUEST_CHANGES") and not text.strip() and not specs:
        raise unprocessable("Body cannot be blank")
    if event is None and any(r.state == "PENDING" and r.user == ctx.actor for r in pull.reviews):
        raise unprocessable("User can only have one pending review per pull request")
    commit_id = body.get("commit_id") or ctx.world.pull_shas(ctx.repo, issue)[1]
    if commit_id not in ctx.repo.git.commits:
        raise unprocessable("Commit could not be resolved")
    review = Review(ctx.world.next_id(), ctx.actor, text, REVIEW_STATES.get(event, "PENDING"), commit_id,
                    ctx.world.clock() if event else None)
    comments = [_new_review_comment(ctx, issue, spec, review.id, commit_id) for spec in specs]  # all or nothing
    pull.reviews.append(review)
    ctx.repo.review_comments.update((c.id, c) for c in comments)
    return web.json_response(ctx.world.render_review(ctx.repo, issue, review))


async def list_reviews(ctx: Ctx) -> web.Response:
    issue = _pull(ctx)
    assert issue.pull is not None
    return json_page(ctx, [ctx.world.render_review(ctx.repo, issue, r) for r in issue.pull.reviews])


async def get_review(ctx: Ctx) -> web.Response:
    issue = _pull(ctx)
    return web.json_response(ctx.world.render_review(ctx.repo, issue, _review(ctx, issue)))


async def update_review(ctx: Ctx) -> web.Response:
    issue = _pull(ctx)
    review = _review(ctx, issue)
    review.body = _comment_body(ctx.need("body"))
    return web.json_response(ctx.world.render_review(ctx.repo, issue, review))


async def list_review_comments(ctx: Ctx) -> web.Response:
    number = _pull(ctx).number
    return json_page(ctx, [ctx.world.render_review_comment(ctx.repo, c) for c in ctx.repo.review_comments.values()
                       if c.number == number])


async def create_review_comment(ctx: Ctx) -> web.Response:
    issue, body = _pull(ctx), ctx.body if isinstance(ctx.body, dict) else {}
    commit_id = str(ctx.need("commit_id"))
    if commit_id not in ctx.repo.git.commits:
        raise unprocessable("Commit could not be resolved")
    comment = _new_review_comment(ctx, issue, body, None, commit_id)
    ctx.repo.review_comments[comment.id] = comment
    data = ctx.world.render_review_comment(ctx.repo, comment)
    return web.json_response(data, status=201, headers={"Location": data["url"]})


def _review_comment(ctx: Ctx) -> ReviewComment:
    comment = ctx.repo.review_comments.get(int(ctx.params["comment_id"]))
    if comment is None:
        raise GitHubError(404, "Not Found")
    return comment


async def update_review_comment(ctx: Ctx) -> web.Response:
    comment = _review_comment(ctx)
    comment.body, comment.updated = _comment_body(ctx.need("body")), ctx.world.clock()
    return web.json_response(ctx.world.render_review_comment(ctx.repo, comment))


async def delete_review_comment(ctx: Ctx) -> web.Response:
    del ctx.repo.review_comments[_review_comment(ctx).id]
    return web.Response(status=204)


# ---------------------------------------------------------------------- commit statuses and checks
async def create_status(ctx: Ctx) -> web.Response:
    sha, body = ctx.params["sha"], ctx.body if isinstance(ctx.body, dict) else {}
    if sha not in ctx.repo.git.commits:
        raise GitHubError(422, f"No commit found for SHA: {sha}")
    state = ctx.need("state")
    if state not in STATUS_STATES:
        raise GitHubError(422, "Validation Failed", errors=[{"resource": "Status", "code": "custom", "field": "state",
                                                             "message": "state is not included in the list"}])
    description = _text(body.get("description"), "description", "Status")
    if description is not None and len(description) > 140:
        raise GitHubError(422, "Validation Failed", errors=[{
            "resource": "Status", "code": "custom", "field": "description",
            "message": "description is too long (maximum is 140 characters)"}])
    status = CommitStatus(ctx.world.next_id(), sha, state, str(body.get("context") or "default"), description,
                          _text(body.get("target_url"), "target_url", "Status"), ctx.actor, ctx.world.clock())
    ctx.repo.statuses.append(status)
    return web.json_response(ctx.world.render_status(ctx.repo, status), status=201)


async def list_statuses(ctx: Ctx) -> web.Response:
    sha = _commit(ctx, ctx.params["ref"])
    return json_page(ctx, [ctx.world.render_status(ctx.repo, st) for st in reversed(ctx.repo.statuses)
                           if st.sha == sha])


async def combined_status(ctx: Ctx) -> web.Response:
    return web.json_response(ctx.world.render_combined_status(ctx.repo, _commit(ctx, ctx.params["ref"])))


def _listing(ctx: Ctx, key: str, items: list[dict[str, Any]]) -> web.Response:
    """A `{total_count, <key>: [...]}` page, as the checks API answers."""
    page, headers = paginate(ctx.world.base_url, ctx.request, items)
    return web.json_response({"total_count": len(items), key: page}, headers=headers)


def _runs(ctx: Ctx, runs: list[Any]) -> web.Response:
    query = ctx.request.query
    runs = [r for r in runs if query.get("check_name", r.name) == r.name and query.get("status", r.status) == r.status]
    return _listing(ctx, "check_runs", [ctx.world.render_check_run(ctx.repo, r) for r in runs])


async def list_check_runs_for_ref(ctx: Ctx) -> web.Response:
    sha = _commit(ctx, ctx.params["ref"])
    return _runs(ctx, [r for r in ctx.repo.check_runs.values() if r.head_sha == sha])


async def list_check_suites_for_ref(ctx: Ctx) -> web.Response:
    sha = _commit(ctx, ctx.params["ref"])
    return _listing(ctx, "check_suites", [ctx.world.render_check_suite(ctx.repo, s)
                                          for s in ctx.repo.check_suites.values() if s.head_sha == sha])


def _suite_id(ctx: Ctx) -> int:
    suite_id = int(ctx.params["check_suite_id"])
    if suite_id not in ctx.repo.check_suites:
        raise GitHubError(404, "Not Found")
    return suite_id


async def get_check_suite(ctx: Ctx) -> web.Response:
    return web.json_response(ctx.world.render_check_suite(ctx.repo, ctx.repo.check_suites[_suite_id(ctx)]))


async def list_check_runs_for_suite(ctx: Ctx) -> web.Response:
    suite = ctx.repo.check_suites[_suite_id(ctx)]
    return _runs(ctx, [ctx.repo.check_runs[r] for r in suite.run_ids])


async def get_check_run(ctx: Ctx) -> web.Response:
    run = ctx.repo.check_runs.get(int(ctx.params["check_run_id"]))
    if run is None:
        raise GitHubError(404, "Not Found")
    return web.json_response(ctx.world.render_check_run(ctx.repo, run))


# ---------------------------------------------------------------------- releases and milestones
def _release(ctx: Ctx) -> Release:
    release = ctx.repo.releases.get(int(ctx.params["release_id"]))
    if release is None:
        raise GitHubError(404, "Not Found")
    return release


def _publish(ctx: Ctx, release: Release) -> None:
    """A published release owns its tag: the tag is made at the target when it does not exist yet."""
    if any(r.tag_name == release.tag_name and not r.draft and r.id != release.id for r in ctx.repo.releases.values()):
        raise invalid("Release", "tag_name", "already_exists")
    release.published = ctx.world.clock()
    if f"tags/{release.tag_name}" not in ctx.repo.git.refs:
        target = ctx.repo.git.resolve(release.target_commitish)
        if target is None:
            raise invalid("Release", "target_commitish")
        ctx.world.move_ref(ctx.repo, f"tags/{release.tag_name}", target, via="release", actor=ctx.actor)


def release_notes(ctx: Ctx, tag: str, target: str | None, previous: str | None) -> dict[str, str]:
    """GitHub's generated notes: the pull requests merged between the previous release tag and the target."""
    git, repo = ctx.repo.git, ctx.repo
    head = git.resolve(f"tags/{tag}") or git.resolve(target or repo.default_branch)
    if head is None:
        raise GitHubError(404, "Not Found")
    if previous is None:
        published = sorted((r for r in repo.releases.values() if not r.draft and r.tag_name != tag),
                           key=lambda r: r.published or 0)
        previous = next((r.tag_name for r in reversed(published)
                         if git.resolve(f"tags/{r.tag_name}") in git.ancestors(head)), None)
    elif git.resolve(f"tags/{previous}") is None:
        raise GitHubError(404, "Not Found")
    old = git.ancestors(git.resolve(f"tags/{previous}")) if previous else set()
    new = git.ancestors(head) - old
    merged = [i for i in repo.issues.values() if i.pull and i.pull.merge_commit_sha in new]
    lines = [f"* {i.title} by @{i.user.removesuffix('[bot]')} in {WEB}/{repo.full_name}/pull/{i.number}"
             for i in merged]
    changelog = (f"{WEB}/{repo.full_name}/compare/{previous}...{tag}" if previous
                 else f"{WEB}/{repo.full_name}/commits/{tag}")
    body = ("## What's Changed\n" + "\n".join(lines) + "\n\n" if lines else "") + f"**Full Changelog**: {changelog}"
    return {"name": tag, "body": body}


async def create_release(ctx: Ctx) -> web.Response:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    tag = _text(ctx.need("tag_name"), "tag_name", "Release") or ""
    target = str(body.get("target_commitish") or ctx.repo.default_branch)
    text = _text(body.get("body"), "body", "Release")
    if body.get("generate_release_notes"):
        notes = release_notes(ctx, tag, target, None)["body"]
        text = f"{text}\n\n{notes}" if text else notes
    release = Release(ctx.world.next_id(), tag, target, _text(body.get("name"), "name", "Release"), text,
                      bool(body.get("draft")), bool(body.get("prerelease")), ctx.actor, ctx.world.clock())
    if not release.draft:
        _publish(ctx, release)
    ctx.repo.releases[release.id] = release
    data = ctx.world.render_release(ctx.repo, release)
    return web.json_response(data, status=201, headers={"Location": data["url"]})


async def update_release(ctx: Ctx) -> web.Response:
    release, body = _release(ctx), ctx.body if isinstance(ctx.body, dict) else {}
    for key in ("tag_name", "target_commitish", "name", "body"):
        if key in body:
            setattr(release, key, _text(body[key], key, "Release"))
    if "prerelease" in body:
        release.prerelease = bool(body["prerelease"])
    if body.get("draft") is False and release.draft:
        _publish(ctx, release)
        release.draft = False
    elif body.get("draft") is True:
        release.draft, release.published = True, None
    return web.json_response(ctx.world.render_release(ctx.repo, release))


async def get_release(ctx: Ctx) -> web.Response:
    return web.json_response(ctx.world.render_release(ctx.repo, _release(ctx)))


async def list_releases(ctx: Ctx) -> web.Response:
    return json_page(ctx, ctx.world.releases(ctx.repo.full_name))


async def get_release_by_tag(ctx: Ctx) -> web.Response:
    """Published releases only: a draft has no tag yet, so its tag_name answers 404, as on GitHub."""
    for release in ctx.repo.releases.values():
        if release.tag_name == ctx.params["tag"] and not release.draft:
            return web.json_response(ctx.world.render_release(ctx.repo, release))
    raise GitHubError(404, "Not Found")


async def generate_notes(ctx: Ctx) -> web.Response:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    return web.json_response(release_notes(ctx, str(ctx.need("tag_name")), body.get("target_commitish"),
                                           body.get("previous_tag_name")))


async def list_milestones(ctx: Ctx) -> web.Response:
    state = ctx.request.query.get("state", "open")
    found = [m for m in ctx.repo.milestones.values() if state in ("all", m.state)]
    return json_page(ctx, [ctx.world.render_milestone(ctx.repo, m) for m in found])


_R = "/repos/{owner}/{repo}"
# (method, path template, handler); a route with a suffix comes before the `{ref*}` route it would match.
CODE_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", _R + "/commits", list_commits),
    ("GET", _R + "/commits/{ref*}/statuses", list_statuses),
    ("GET", _R + "/commits/{ref*}/status", combined_status),
    ("GET", _R + "/commits/{ref*}/check-runs", list_check_runs_for_ref),
    ("GET", _R + "/commits/{ref*}/check-suites", list_check_suites_for_ref),
    ("GET", _R + "/commits/{ref*}", get_commit),
    ("GET", _R + "/compare/{basehead*}", compare),
    ("GET", _R + "/branches", list_branches),
    ("GET", _R + "/tarball/{ref*}", tarball),
    ("GET", _R + "/pulls", list_pulls),
    ("POST", _R + "/pulls", create_pull),
    ("PATCH", _R + "/pulls/comments/{comment_id}", update_review_comment),
    ("DELETE", _R + "/pulls/comments/{comment_id}", delete_review_comment),
    ("GET", _R + "/pulls/{number}", get_pull),
    ("PATCH", _R + "/pulls/{number}", update_pull),
    ("GET", _R + "/pulls/{number}/files", list_pull_files),
    ("GET", _R + "/pulls/{number}/commits", list_pull_commits),
    ("GET", _R + "/pulls/{number}/reviews", list_reviews),
    ("POST", _R + "/pulls/{number}/reviews", create_review),
    ("GET", _R + "/pulls/{number}/reviews/{review_id}", get_review),
    ("PUT", _R + "/pulls/{number}/reviews/{review_id}", update_review),
    ("GET", _R + "/pulls/{number}/comments", list_review_comments),
    ("POST", _R + "/pulls/{number}/comments", create_review_comment),
    ("POST", _R + "/statuses/{sha}", create_status),
    ("GET", _R + "/check-suites/{check_suite_id}", get_check_suite),
    ("GET", _R + "/check-suites/{check_suite_id}/check-runs", list_check_runs_for_suite),
    ("GET", _R + "/check-runs/{check_run_id}", get_check_run),
    ("GET", _R + "/releases", list_releases),
    ("POST", _R + "/releases", create_release),
    ("POST", _R + "/releases/generate-notes", generate_notes),
    ("GET", _R + "/releases/tags/{tag*}", get_release_by_tag),
    ("GET", _R + "/releases/{release_id}", get_release),
    ("PATCH", _R + "/releases/{release_id}", update_release),
    ("GET", _R + "/milestones", list_milestones),
]
