"""The simulated GitHub's repository routes: issues, comments, labels, reactions, permissions, contents, git data."""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from chantbot_sim.github.git import iso, valid_path
from chantbot_sim.github.model import Comment, Issue, Label, Repo
from chantbot_sim.github.world import REACTIONS, ROLE_RANK, World, node_id

DOCS = "https://docs.github.com/rest"
# The legacy `permission` field predates the triage and maintain roles.
LEGACY_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
                     "read": "read", "none": "none"}


class GitHubError(Exception):
    """An error answer in GitHub's envelope."""

    def __init__(self, status: int, message: str, *, errors: list | None = None,
                 headers: dict[str, str] | None = None, documentation_url: str = DOCS) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors
        self.headers, self.documentation_url = dict(headers or {}), documentation_url

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "documentation_url": self.documentation_url,
                                "status": str(self.status)}
        if self.errors:
            body["errors"] = self.errors
        return web.json_response(body, status=self.status, headers=self.headers)


def invalid(resource: str, field: str, code: str = "invalid") -> GitHubError:
    return GitHubError(422, "Validation Failed", errors=[{"resource": resource, "field": field, "code": code}])


@dataclass
class Ctx:
    """What a route handler gets: the world, the request and its parsed parts, and who is acting."""
    world: World
    request: web.Request
    params: dict[str, str]
    body: Any
    actor: str
    repo: Repo

    def need(self, key: str) -> Any:
        if not isinstance(self.body, dict) or self.body.get(key) is None:
            raise GitHubError(422, f"Invalid request.\n\n\"{key}\" wasn't supplied.")
        return self.body[key]

    def issue(self) -> Issue:
        issue = self.repo.issues.get(int(self.params["number"]))
        if issue is None:
            raise GitHubError(404, "Not Found")
        return issue

    def comment(self) -> Comment:
        comment = self.world.comment_by_id.get(int(self.params["comment_id"]))
        if comment is None or comment.repo != self.repo.full_name:
            raise GitHubError(404, "Not Found")
        return comment


def paginate(base_url: str, request: web.Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """One page of `items` (`per_page` up to 100) and a Link header with absolute URLs."""
    try:
        per_page = min(100, max(1, int(request.query.get("per_page", 30))))
        page = max(1, int(request.query.get("page", 1)))
    except ValueError:
        per_page, page = 30, 1
    last = max(1, math.ceil(len(items) / per_page))

    def link(number: int, rel: str) -> str:
        query = {**request.query, "page": str(number)}
        return f'<{base_url}{request.rel_url.raw_path}?{urlencode(query)}>; rel="{rel}"'

    links = [link(page + 1, "next"), link(last, "last")] if page < last else []
    if page > 1:
        links += [link(page - 1, "prev"), link(1, "first")]
    return items[(page - 1) * per_page:page * per_page], {"Link": ", ".join(links)} if links else {}


def json_page(ctx: Ctx, items: list[Any]) -> web.Response:
    page, headers = paginate(ctx.world.base_url, ctx.request, items)
    return web.json_response(page, headers=headers)


# ---------------------------------------------------------------------- repository and people
async def get_repo(ctx: Ctx) -> web.Response:
    return web.json_response(ctx.world.render_full_repo(ctx.repo))


async def get_permission(ctx: Ctx) -> web.Response:
    login = ctx.params["username"]
    role = ctx.repo.role(login)
    rank = ROLE_RANK[role]
    user = ctx.world.render_user(login)
    user["permissions"] = {"admin": rank >= 5, "maintain": rank >= 4, "push": rank >= 3,
                           "triage": rank >= 2, "pull": rank >= 1}
    user["role_name"] = role
    return web.json_response({"permission": LEGACY_PERMISSION[role], "role_name": role, "user": user})


async def check_assignee(ctx: Ctx) -> web.Response:
    """204 when the user may be assigned issues here, else 404 (GitHub's answers)."""
    if not ctx.repo.assignable(ctx.params["username"]):
        raise GitHubError(404, "Not Found")
    return web.Response(status=204)


def _logins(body: Any) -> list[str]:
    names = body.get("assignees") if isinstance(body, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise invalid("Issue", "assignees")
    return names


async def add_assignees(ctx: Ctx) -> web.Response:
    """Adds the users who may be assigned (up to 10 on an issue); others are ignored, as on GitHub."""
    issue = ctx.issue()
    for login in _logins(ctx.body):
        if ctx.repo.assignable(login) and login not in issue.assignees and len(issue.assignees) < 10:
            issue.assignees.append(login)
    issue.updated = ctx.world.clock()
    return web.json_response(ctx.world.render_issue(ctx.repo, issue), status=201)


async def remove_assignees(ctx: Ctx) -> web.Response:
    issue = ctx.issue()
    gone = {login.lower() for login in _logins(ctx.body)}
    issue.assignees = [login for login in issue.assignees if login.lower() not in gone]
    issue.updated = ctx.world.clock()
    return web.json_response(ctx.world.render_issue(ctx.repo, issue))


# ---------------------------------------------------------------------- issues and comments
async def list_issues(ctx: Ctx) -> web.Response:
    """Issues and pull requests (these carry a `pull_request` key), filtered by state, labels, milestone and
    `since` (updated at or after it)."""
    query = ctx.request.query
    state = query.get("state", "open")
    since = query.get("since", "")
    if since and not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", since):
        raise invalid("Issue", "since")
    wanted = {w.strip().lower() for w in query.get("labels", "").split(",") if w.strip()}
    milestone = query.get("milestone")
    if milestone not in (None, "*", "none") and not str(milestone).isdigit():
        raise invalid("Issue", "milestone")

    def in_milestone(issue: Issue) -> bool:
        if milestone is None:
            return True
        if milestone in ("*", "none"):
            return (issue.milestone is not None) == (milestone == "*")
        return issue.milestone == int(milestone)

    issues = [i for i in ctx.repo.issues.values()
              if state in ("all", i.state) and wanted <= {n.lower() for n in i.labels} and in_milestone(i)
              and (iso(i.updated) or "") >= since]
    keys: dict[str, Callable[[Issue], Any]] = {"updated": lambda i: (i.updated, i.number),
                                               "comments": lambda i: (len(i.comment_ids), i.number)}
    issues.sort(key=keys.get(query.get("sort", "created"), lambda i: i.number),
                reverse=query.get("direction", "desc") == "desc")
    return json_page(ctx, [ctx.world.render_issue(ctx.repo, i) for i in issues])


async def get_issue(ctx: Ctx) -> web.Response:
    return web.json_response(ctx.world.render_issue(ctx.repo, ctx.issue()))


async def update_issue(ctx: Ctx) -> web.Response:
    issue, body, now = ctx.issue(), ctx.body or {}, ctx.world.clock()
    if body.get("title") is not None:
        issue.title = str(body["title"])
    if "body" in body:
        issue.body = body["body"]
    state = body.get("state") or issue.state
    if state not in ("open", "closed"):
        raise invalid("Issue", "state")
    if state == "closed":
        if issue.state == "open":
            issue.closed_at, issue.closed_by, issue.state_reason = now, ctx.actor, "completed"
        issue.state_reason = body.get("state_reason") or issue.state_reason
    elif issue.state == "closed":
        issue.closed_at, issue.closed_by, issue.state_reason = None, None, "reopened"
    issue.state = state
    if body.get("labels") is not None:
        ctx.world.replace_labels(ctx.repo, issue, _label_names(body["labels"]), ctx.actor)
    issue.updated = now
    return web.json_response(ctx.world.render_issue(ctx.repo, issue))


def _comment_text(ctx: Ctx) -> str:
    text = ctx.body.get("body") if isinstance(ctx.body, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise invalid("IssueComment", "body", "missing_field")
    if len(text) > 65536:
        raise GitHubError(422, "Validation Failed", errors=[{
            "resource": "IssueComment", "code": "custom", "field": "body",
            "message": "body is too long (maximum is 65536 characters)"}])
    return text


async def list_comments(ctx: Ctx) -> web.Response:
    world = ctx.world
    return json_page(ctx, [world.render_comment(world.comment_by_id[c]) for c in ctx.issue().comment_ids])


async def create_comment(ctx: Ctx) -> web.Response:
    issue, text = ctx.issue(), _comment_text(ctx)
    data = ctx.world.render_comment(ctx.world.new_comment(ctx.repo, issue, text, ctx.actor))
    return web.json_response(data, status=201, headers={"Location": data["url"]})


async def get_comment(ctx: Ctx) -> web.Response:
    return web.json_response(ctx.world.render_comment(ctx.comment()))


async def update_comment(ctx: Ctx) -> web.Response:
    comment = ctx.comment()
    comment.body, comment.updated = _comment_text(ctx), ctx.world.clock()
    return web.json_response(ctx.world.render_comment(comment))


async def delete_comment(ctx: Ctx) -> web.Response:
    comment = ctx.comment()
    del ctx.world.comment_by_id[comment.id]
    ctx.repo.issues[comment.issue].comment_ids.remove(comment.id)
    return web.Response(status=204)


def _react(ctx: Ctx, reactions: list[tuple[str, str]]) -> web.Response:
    content = ctx.need("content")
    if content not in REACTIONS:
        raise invalid("Reaction", "content")
    status = 200 if (ctx.actor, content) in reactions else 201
    if status == 201:
        reactions.append((ctx.actor, content))
    reaction_id = ctx.world.next_id()
    return web.json_response({"id": reaction_id, "node_id": node_id("REA", reaction_id),
                              "user": ctx.world.render_user(ctx.actor), "content": content,
                              "created_at": iso(ctx.world.clock())}, status=status)


async def react_to_comment(ctx: Ctx) -> web.Response:
    return _react(ctx, ctx.comment().reactions)


async def react_to_issue(ctx: Ctx) -> web.Response:
    return _react(ctx, ctx.issue().reactions)


# ---------------------------------------------------------------------- labels
def _label_names(body: Any) -> list[str]:
    """Label names from `{"labels": [...]}` or a bare list, of names or `{"name": ...}` objects."""
    if isinstance(body, dict):
        body = body.get("labels")
    if not isinstance(body, list):
        raise GitHubError(422, "Invalid request.\n\n\"labels\" wasn't supplied.")
    return [item["name"] if isinstance(item, dict) else str(item) for item in body]


def _issue_labels(ctx: Ctx, issue: Issue) -> web.Response:
    return web.json_response([ctx.world.render_label(ctx.repo, ctx.repo.labels[n.lower()]) for n in issue.labels])


async def list_issue_labels(ctx: Ctx) -> web.Response:
    return _issue_labels(ctx, ctx.issue())


async def add_labels(ctx: Ctx) -> web.Response:
    issue = ctx.issue()
    for name in _label_names(ctx.body):
        ctx.world.put_label(ctx.repo, issue, name, ctx.actor)
    return _issue_labels(ctx, issue)


async def set_labels(ctx: Ctx) -> web.Response:
    issue = ctx.issue()
    ctx.world.replace_labels(ctx.repo, issue, _label_names(ctx.body), ctx.actor)
    return _issue_labels(ctx, issue)


async def remove_label(ctx: Ctx) -> web.Response:
    issue = ctx.issue()
    if not ctx.world.take_label(issue, ctx.params["name"], ctx.actor):
        raise GitHubError(404, "Label does not exist")
    return _issue_labels(ctx, issue)


async def list_repo_labels(ctx: Ctx) -> web.Response:
    return json_page(ctx, ctx.world.repo_labels(ctx.repo.full_name))


def _repo_label(ctx: Ctx) -> Label:
    label = ctx.repo.labels.get(ctx.params["name"].lower())
    if label is None:
        raise GitHubError(404, "Not Found")
    return label


def _check_color(body: dict[str, Any]) -> None:
    if body.get("color") is not None and not re.fullmatch(r"#?[0-9a-fA-F]{6}", str(body["color"])):
        raise invalid("Label", "color")


async def get_label(ctx: Ctx) -> web.Response:
    return web.json_response(ctx.world.render_label(ctx.repo, _repo_label(ctx)))


async def create_label(ctx: Ctx) -> web.Response:
    name = str(ctx.need("name"))
    _check_color(ctx.body)
    if name.lower() in ctx.repo.labels:
        raise invalid("Label", "name", "already_exists")
    label = Label(ctx.world.next_id(), name, str(ctx.body.get("color") or "ededed").lstrip("#").lower(),
                  ctx.body.get("description"))
    ctx.repo.labels[name.lower()] = label
    return web.json_response(ctx.world.render_label(ctx.repo, label), status=201)


async def update_label(ctx: Ctx) -> web.Response:
    label, body = _repo_label(ctx), ctx.body or {}
    _check_color(body)
    new_name = body.get("new_name")
    if new_name and new_name != label.name:
        old = label.name
        if new_name.lower() != old.lower() and new_name.lower() in ctx.repo.labels:
            raise invalid("Label", "name", "already_exists")
        del ctx.repo.labels[old.lower()]
        label.name = new_name
        ctx.repo.labels[new_name.lower()] = label
        for issue in ctx.repo.issues.values():
            issue.labels = [new_name if n == old else n for n in issue.labels]
    if body.get("color"):
        label.color = str(body["color"]).lstrip("#").lower()
    if "description" in body:
        label.description = body["description"]
    return web.json_response(ctx.world.render_label(ctx.repo, label))


# ---------------------------------------------------------------------- contents and branches
async def get_contents(ctx: Ctx) -> web.Response:
    repo, world = ctx.repo, ctx.world
    ref = ctx.request.query.get("ref") or repo.default_branch
    commit = repo.git.resolve(ref)
    if commit is None:
        raise GitHubError(404, f"No commit found for the ref {ref}")
    files, path = repo.git.files_at(commit), ctx.params["path"].strip("/")
    if path in files:
        entry = world.render_content(repo, path, files[path], "file", ref)
        text = base64.b64encode(repo.git.blobs[files[path]]).decode()
        entry.update(encoding="base64", content="".join(text[i:i + 60] + "\n" for i in range(0, len(text), 60)))
        return web.json_response(entry)
    listing = [world.render_content(repo, f"{path}/{name}", sha, "file" if kind == "blob" else "dir", ref)
               for name, kind, sha in repo.git.subtree(commit, path)]
    if not listing:
        raise GitHubError(404, "Not Found")
    return web.json_response(listing)


async def put_contents(ctx: Ctx) -> web.Response:
    repo, body, path = ctx.repo, ctx.body or {}, ctx.params["path"].strip("/")
    message, content = ctx.need("message"), ctx.need("content")
    branch = body.get("branch") or repo.default_branch
    head = repo.git.refs.get(f"heads/{branch}")
    if head is None:
        raise GitHubError(404, f"Branch {branch} not found")
    files = dict(repo.git.files_at(head))
    existing = files.get(path)
    if existing and not body.get("sha"):
        raise GitHubError(422, "Invalid request.\n\n\"sha\" wasn't supplied.")
    if existing and body["sha"] != existing:
        raise GitHubError(409, f"{path} does not match {body['sha']}")
    files[path] = repo.git.put_blob(base64.b64decode(content))
    sha = ctx.world.commit_on(repo, branch, files, message, ctx.actor, via="contents")
    return web.json_response({"content": ctx.world.render_content(repo, path, files[path], "file", branch),
                              "commit": ctx.world.render_commit(repo, sha)}, status=200 if existing else 201)


async def get_branch(ctx: Ctx) -> web.Response:
    if f"heads/{ctx.params['branch']}" not in ctx.repo.git.refs:
        raise GitHubError(404, "Branch not found")
    return web.json_response(ctx.world.render_branch(ctx.repo, ctx.params["branch"]))


# ---------------------------------------------------------------------- git data
async def get_ref(ctx: Ctx) -> web.Response:
    ref = ctx.params["ref"].removeprefix("refs/")
    if ref not in ctx.repo.git.refs:
        raise GitHubError(404, "Not Found")
    return web.json_response(ctx.world.render_ref(ctx.repo, ref))


async def get_refs_legacy(ctx: Ctx) -> web.Response:
    """The old `git/refs/{ref}`: the ref itself, or every ref under it as a list."""
    ref, refs = ctx.params["ref"].removeprefix("refs/"), ctx.repo.git.refs
    if ref in refs:
        return web.json_response(ctx.world.render_ref(ctx.repo, ref))
    under = [ctx.world.render_ref(ctx.repo, r) for r in sorted(refs) if r.startswith(ref.rstrip("/") + "/")]
    if not under:
        raise GitHubError(404, "Not Found")
    return web.json_response(under)


async def create_ref(ctx: Ctx) -> web.Response:
    git, ref, sha = ctx.repo.git, str(ctx.need("ref")), ctx.need("sha")
    if not ref.startswith("refs/") or ref.count("/") < 2:
        raise GitHubError(422, "Reference name must start with 'refs/' and have at least two slashes.")
    if sha not in git.commits:
        raise GitHubError(422, "Object does not exist")
    if ref[5:] in git.refs:
        raise GitHubError(422, "Reference already exists")
    ctx.world.move_ref(ctx.repo, ref[5:], sha, via="git", actor=ctx.actor)
    return web.json_response(ctx.world.render_ref(ctx.repo, ref[5:]), status=201)


async def update_ref(ctx: Ctx) -> web.Response:
    git, ref, sha = ctx.repo.git, ctx.params["ref"].removeprefix("refs/"), ctx.need("sha")
    if ref not in git.refs:
        raise GitHubError(422, "Reference does not exist")
    if sha not in git.commits:
        raise GitHubError(422, "Object does not exist")
    if not ctx.body.get("force") and not git.is_ancestor(git.refs[ref], sha):
        raise GitHubError(422, "Update is not a fast forward")
    ctx.world.move_ref(ctx.repo, ref, sha, via="git", actor=ctx.actor)
    return web.json_response(ctx.world.render_ref(ctx.repo, ref))


async def create_blob(ctx: Ctx) -> web.Response:
    content = str(ctx.need("content"))
    data = base64.b64decode(content) if ctx.body.get("encoding") == "base64" else content.encode()
    sha = ctx.repo.git.put_blob(data)
    url = f"{ctx.world.base_url}/repos/{ctx.repo.full_name}/git/blobs/{sha}"
    return web.json_response({"sha": sha, "url": url}, status=201)


async def get_blob(ctx: Ctx) -> web.Response:
    sha = ctx.params["sha"]
    data = ctx.repo.git.blobs.get(sha)
    if data is None:
        raise GitHubError(404, "Not Found")
    return web.json_response({"sha": sha, "node_id": node_id("B", int(sha[:8], 16)), "size": len(data),
                              "encoding": "base64", "content": base64.b64encode(data).decode(),
                              "url": f"{ctx.world.base_url}/repos/{ctx.repo.full_name}/git/blobs/{sha}"})


async def create_tree(ctx: Ctx) -> web.Response:
    git, base = ctx.repo.git, (ctx.body or {}).get("base_tree")
    if base and base not in git.trees:
        raise GitHubError(422, "Invalid tree info")
    files: dict[str, str] = dict(git.trees[base]["files"]) if base else {}
    entries = ctx.need("tree")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise invalid("Tree", "tree")
    for entry in entries:
        path = str(entry.get("path", ""))
        if not valid_path(path):
            raise GitHubError(422, "tree.path contains a malformed path component")
        sha = entry.get("sha")
        if "content" in entry and sha:
            raise GitHubError(422, "Invalid tree info")
        if "content" in entry:
            files[path] = git.put_blob(str(entry["content"]).encode())
        elif "sha" in entry and sha is None:  # deletes the file, or the whole directory
            files = {p: s for p, s in files.items() if p != path and not p.startswith(path + "/")}
        elif sha in git.blobs:
            files[path] = sha
        elif sha in git.trees:
            files.update({f"{path}/{p}": s for p, s in git.trees[sha]["files"].items()})
        else:
            raise GitHubError(422, "Invalid tree info")
    tree = git.put_tree(files)
    return web.json_response(ctx.world.render_tree(ctx.repo, tree, recursive=False), status=201)


async def get_tree(ctx: Ctx) -> web.Response:
    git, sha = ctx.repo.git, ctx.params["sha"]
    if sha not in git.trees:
        commit = git.resolve(sha)
        if commit is None:
            raise GitHubError(404, "Not Found")
        sha = git.commits[commit]["tree"]
    recursive = ctx.request.query.get("recursive", "") not in ("", "0", "false")
    return web.json_response(ctx.world.render_tree(ctx.repo, sha, recursive=recursive))


async def create_commit(ctx: Ctx) -> web.Response:
    git, tree, message = ctx.repo.git, ctx.need("tree"), ctx.need("message")
    parents = list(ctx.body.get("parents") or [])
    if tree not in git.trees or any(p not in git.commits for p in parents):
        raise GitHubError(422, "Object does not exist")
    author = ctx.body.get("author")
    sha = git.put_commit(tree, parents, message, ctx.actor, ctx.world.clock(),
                         author=author if isinstance(author, dict) else None)
    return web.json_response(ctx.world.render_commit(ctx.repo, sha), status=201)


async def get_commit(ctx: Ctx) -> web.Response:
    if ctx.params["sha"] not in ctx.repo.git.commits:
        raise GitHubError(404, "Not Found")
    return web.json_response(ctx.world.render_commit(ctx.repo, ctx.params["sha"]))


Handler = Callable[[Ctx], Awaitable[web.Response]]
_R = "/repos/{owner}/{repo}"
# (method, path template, handler); `{name}` is one path segment, `{name*}` the rest of the path.
REPO_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", _R, get_repo),
    ("GET", _R + "/collaborators/{username}/permission", get_permission),
    ("GET", _R + "/assignees/{username}", check_assignee),
    ("POST", _R + "/issues/{number}/assignees", add_assignees),
    ("DELETE", _R + "/issues/{number}/assignees", remove_assignees),
    ("GET", _R + "/issues", list_issues),
    ("GET", _R + "/issues/comments/{comment_id}", get_comment),
    ("PATCH", _R + "/issues/comments/{comment_id}", update_comment),
    ("DELETE", _R + "/issues/comments/{comment_id}", delete_comment),
    ("POST", _R + "/issues/comments/{comment_id}/reactions", react_to_comment),
    ("GET", _R + "/issues/{number}", get_issue),
    ("PATCH", _R + "/issues/{number}", update_issue),
    ("GET", _R + "/issues/{number}/comments", list_comments),
    ("POST", _R + "/issues/{number}/comments", create_comment),
    ("POST", _R + "/issues/{number}/reactions", react_to_issue),
    ("GET", _R + "/issues/{number}/labels", list_issue_labels),
    ("POST", _R + "/issues/{number}/labels", add_labels),
    ("PUT", _R + "/issues/{number}/labels", set_labels),
    ("DELETE", _R + "/issues/{number}/labels/{name}", remove_label),
    ("GET", _R + "/labels", list_repo_labels),
    ("POST", _R + "/labels", create_label),
    ("GET", _R + "/labels/{name}", get_label),
    ("PATCH", _R + "/labels/{name}", update_label),
    ("GET", _R + "/contents/{path*}", get_contents),
    ("PUT", _R + "/contents/{path*}", put_contents),
    ("GET", _R + "/branches/{branch*}", get_branch),
    ("GET", _R + "/git/ref/{ref*}", get_ref),
    ("GET", _R + "/git/refs/{ref*}", get_refs_legacy),
    ("POST", _R + "/git/refs", create_ref),
    ("PATCH", _R + "/git/refs/{ref*}", update_ref),
    ("POST", _R + "/git/blobs", create_blob),
    ("GET", _R + "/git/blobs/{sha}", get_blob),
    ("POST", _R + "/git/trees", create_tree),
    ("GET", _R + "/git/trees/{sha*}", get_tree),
    ("POST", _R + "/git/commits", create_commit),
    ("GET", _R + "/git/commits/{sha}", get_commit),
]
