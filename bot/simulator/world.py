"""The simulated GitHub's state (repositories, issues, comments, labels, files) and its GitHub-shaped JSON."""

from __future__ import annotations

import base64
import collections
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence
from urllib.parse import quote

from bot.simulator.git import GitStore, iso

WEB = "https://github.com"
DEFAULT_LABELS = [
    ("bug", "d73a4a", "Something isn't working"),
    ("documentation", "0075ca", "Improvements or additions to documentation"),
    ("duplicate", "cfd3d7", "This issue or pull request already exists"),
    ("enhancement", "a2eeef", "New feature or request"),
    ("good first issue", "7057ff", "Good for newcomers"),
    ("help wanted", "008672", "Extra attention is needed"),
    ("invalid", "e4e669", "This doesn't seem right"),
    ("question", "d876e3", "Further information is requested"),
    ("wontfix", "ffffff", "This will not be worked on"),
]
ROLE_RANK = {"none": 0, "read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
TOKEN_PERMISSIONS = {"issues": "write", "contents": "write", "metadata": "read", "pull_requests": "write"}


def node_id(prefix: str, number: int) -> str:
    return base64.b64encode(f"0{prefix}{number}".encode()).decode().rstrip("=")


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False


@dataclass
class Comment:
    id: int
    repo: str
    issue: int
    body: str
    user: str
    created: float
    updated: float
    reactions: list[tuple[str, str]] = field(default_factory=list)  # (login, content)


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str | None
    user: str
    created: float
    updated: float
    state: str = "open"
    state_reason: str | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    labels: list[str] = field(default_factory=list)
    comment_ids: list[int] = field(default_factory=list)
    reactions: list[tuple[str, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # labeled / unlabeled


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    private: bool
    default_branch: str
    created: float
    collaborators: dict[str, str]  # login -> role
    labels: dict[str, Label] = field(default_factory=dict)  # lower-case name -> Label
    issues: dict[int, Issue] = field(default_factory=dict)
    git: GitStore = field(default_factory=GitStore)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def role(self, login: str) -> str:
        """A collaborator's role; anyone else can read a public repository and nothing of a private one."""
        return self.collaborators.get(login, "none" if self.private else "read")


class World:
    """Everything the simulated GitHub knows, how people change it, and how GitHub renders it."""

    def __init__(self, *, app_id: int, app_slug: str, clock: Callable[[], float]) -> None:
        self.app_id = int(app_id)
        self.app_slug = app_slug
        self.bot_login = f"{app_slug}[bot]"
        self.clock = clock
        self.base_url = ""
        self.users: dict[str, dict[str, Any]] = {}
        self.installations: dict[int, dict[str, Any]] = {}
        self.repos: dict[str, Repo] = {}  # lower-case full name -> Repo
        self.comment_by_id: dict[int, Comment] = {}
        self._ids = itertools.count(1001)
        self.user(self.bot_login, "Bot")

    def next_id(self) -> int:
        return next(self._ids)

    def user(self, login: str, kind: str = "User") -> dict[str, Any]:
        if login not in self.users:
            self.users[login] = {"id": self.next_id(), "type": kind}
        return self.users[login]

    # ------------------------------------------------------------------ world building (no webhooks)
    def add_installation(self, installation_id: int, account: str, repos: list[str]) -> None:
        self.user(account, "Organization")
        self.installations[int(installation_id)] = {"id": int(installation_id), "account": account,
                                                    "repos": list(repos)}

    def add_repo(self, full_name: str, *, default_branch: str = "main", files: dict[str, str] | None = None,
                 collaborators: dict[str, str] | None = None, labels: list[dict] | None = None,
                 private: bool = False) -> dict:
        owner, name = full_name.split("/", 1)
        self.user(owner)
        repo = Repo(self.next_id(), owner, name, private, default_branch, self.clock(), dict(collaborators or {}))
        if labels is None:
            labels = [{"name": n, "color": c, "description": d, "default": True} for n, c, d in DEFAULT_LABELS]
        for spec in labels:
            repo.labels[spec["name"].lower()] = Label(self.next_id(), spec["name"], spec.get("color", "ededed"),
                                                      spec.get("description"), spec.get("default", False))
        blobs = {path: repo.git.put_blob(text.encode()) for path, text in (files or {}).items()}
        repo.git.commit_files(default_branch, blobs, "Initial commit", owner, self.clock())
        self.repos[full_name.lower()] = repo
        return self.render_repo(repo)

    def add_issue(self, full_name: str, *, title: str, body: str | None, user: str, labels: Sequence[str] = (),
                  state: str = "open", state_reason: str | None = None) -> dict:
        repo = self.find_repo(full_name)
        self.user(user)
        now = self.clock()
        issue = Issue(self.next_id(), len(repo.issues) + 1, title, body, user, now, now, state=state)
        if state == "closed":
            issue.state_reason, issue.closed_at, issue.closed_by = state_reason or "completed", now, user
        repo.issues[issue.number] = issue
        for name in labels:
            self.put_label(repo, issue, name, user)
        return self.render_issue(repo, issue)

    def add_comment(self, full_name: str, number: int, *, body: str, user: str) -> dict:
        repo, issue = self.find_issue(full_name, number)
        return self.render_comment(self.new_comment(repo, issue, body, user))

    def edit_comment(self, comment_id: int, body: str) -> tuple[dict, str]:
        comment = self.comment_by_id[comment_id]
        old, comment.body, comment.updated = comment.body, body, self.clock()
        return self.render_comment(comment), old

    def edit_issue(self, full_name: str, number: int, *, body: str | None = None,
                   title: str | None = None) -> tuple[dict, dict]:
        repo, issue = self.find_issue(full_name, number)
        changes: dict[str, dict[str, Any]] = {}
        if body is not None and body != issue.body:
            changes["body"], issue.body = {"from": issue.body}, body
        if title is not None and title != issue.title:
            changes["title"], issue.title = {"from": issue.title}, title
        issue.updated = self.clock()
        return self.render_issue(repo, issue), changes

    def label_issue(self, full_name: str, number: int, name: str, *, user: str) -> None:
        repo, issue = self.find_issue(full_name, number)
        self.put_label(repo, issue, name, user)

    def set_file(self, full_name: str, path: str, text: str, *, branch: str | None = None) -> None:
        """Commit one file on a branch (created from the default branch when missing)."""
        repo = self.find_repo(full_name)
        branch = branch or repo.default_branch
        if f"heads/{branch}" not in repo.git.refs:
            repo.git.refs[f"heads/{branch}"] = repo.git.refs[f"heads/{repo.default_branch}"]
        files = dict(repo.git.files_at(repo.git.refs[f"heads/{branch}"]))
        files[path] = repo.git.put_blob(text.encode())
        repo.git.commit_files(branch, files, f"Update {path}", repo.owner, self.clock())

    def seed(self, data: dict[str, Any]) -> dict[str, list]:
        """Build a world from JSON (the body of `POST /_sim/state`); returns what was created."""
        out: dict[str, list] = {"repos": [], "issues": [], "comments": []}
        for spec in data.get("repos", []):
            out["repos"].append(self.add_repo(
                spec["full_name"], default_branch=spec.get("default_branch", "main"), files=spec.get("files"),
                collaborators=spec.get("collaborators"), labels=spec.get("labels"),
                private=spec.get("private", False)))
        for spec in data.get("installations", []):
            self.add_installation(spec["id"], spec["account"], spec["repos"])
        for spec in data.get("issues", []):
            out["issues"].append(self.add_issue(
                spec["repo"], title=spec["title"], body=spec.get("body"), user=spec.get("user", "reporter"),
                labels=spec.get("labels", ()), state=spec.get("state", "open")))
        for spec in data.get("comments", []):
            out["comments"].append(self.add_comment(spec["repo"], int(spec["issue"]), body=spec["body"],
                                                    user=spec["user"]))
        return out

    # ------------------------------------------------------------------ reading state
    def issue(self, full_name: str, number: int) -> dict:
        return self.render_issue(*self.find_issue(full_name, number))

    def labels_on(self, full_name: str, number: int) -> list[str]:
        return list(self.find_issue(full_name, number)[1].labels)

    def comments(self, full_name: str, number: int, *, bot_only: bool = False) -> list[dict]:
        found = [self.comment_by_id[c] for c in self.find_issue(full_name, number)[1].comment_ids]
        return [self.render_comment(c) for c in found if not bot_only or c.user == self.bot_login]

    def file(self, full_name: str, path: str, *, branch: str | None = None) -> str | None:
        return self.files(full_name, branch=branch).get(path)

    def files(self, full_name: str, *, branch: str | None = None) -> dict[str, str]:
        repo = self.find_repo(full_name)
        head = repo.git.refs.get(f"heads/{branch or repo.default_branch}")
        if head is None:
            return {}
        return {p: repo.git.blobs[s].decode("utf-8", "replace") for p, s in sorted(repo.git.files_at(head).items())}

    def branches(self, full_name: str) -> list[str]:
        return sorted(r.removeprefix("heads/") for r in self.find_repo(full_name).git.refs if r.startswith("heads/"))

    def repo_labels(self, full_name: str) -> list[dict]:
        repo = self.find_repo(full_name)
        return [self.render_label(repo, label) for label in sorted(repo.labels.values(), key=lambda x: x.name.lower())]

    def label_events(self, full_name: str, number: int) -> list[dict]:
        return [dict(e) for e in self.find_issue(full_name, number)[1].events]

    def reactions(self, comment_id: int) -> list[str]:
        return [content for _, content in self.comment_by_id[comment_id].reactions]

    def dump(self, full_name: str | None = None) -> dict[str, Any]:
        """Issues (labels, comments with `by_bot`), branches with files and labels of each repository."""
        repos = {}
        for repo in self.repos.values():
            if full_name and repo.full_name.lower() != full_name.lower():
                continue
            issues = [{"number": i.number, "title": i.title, "body": i.body, "user": i.user, "state": i.state,
                       "state_reason": i.state_reason, "labels": list(i.labels), "label_events": list(i.events),
                       "reactions": [r for _, r in i.reactions],
                       "comments": [{"id": c.id, "body": c.body, "user": c.user, "by_bot": c.user == self.bot_login,
                                     "reactions": [r for _, r in c.reactions]}
                                    for c in (self.comment_by_id[x] for x in i.comment_ids)]}
                      for i in repo.issues.values()]
            branches = {b: {"sha": repo.git.refs[f"heads/{b}"], "files": self.files(repo.full_name, branch=b)}
                        for b in self.branches(repo.full_name)}
            repos[repo.full_name] = {"default_branch": repo.default_branch, "private": repo.private,
                                     "issues": issues, "branches": branches,
                                     "labels": self.repo_labels(repo.full_name)}
        return {"bot_login": self.bot_login, "repos": repos}

    # ------------------------------------------------------------------ webhook payloads
    def issue_payload(self, action: str, full_name: str, number: int, *, sender: str | None = None,
                      changes: dict | None = None, label: str | None = None) -> dict:
        repo, issue = self.find_issue(full_name, number)
        payload: dict[str, Any] = {"action": action, "issue": self.render_issue(repo, issue)}
        if changes is not None or action == "edited":
            payload["changes"] = changes or {}
        if label is not None:
            payload["label"] = self.render_label(repo, repo.labels.get(label.lower()) or Label(0, label))
        return {**payload, **self._envelope(repo, sender or issue.user)}

    def comment_payload(self, action: str, full_name: str, number: int, comment_id: int, *,
                        old_body: str | None = None) -> dict:
        repo, issue = self.find_issue(full_name, number)
        comment = self.comment_by_id[comment_id]
        payload: dict[str, Any] = {"action": action}
        if old_body is not None:
            payload["changes"] = {"body": {"from": old_body}}
        payload.update(issue=self.render_issue(repo, issue), comment=self.render_comment(comment))
        return {**payload, **self._envelope(repo, comment.user)}

    def _envelope(self, repo: Repo, sender: str) -> dict[str, Any]:
        out: dict[str, Any] = {"repository": self.render_repo(repo), "sender": self.render_user(sender)}
        for installation in self.installations.values():
            if self.covers(installation, repo):
                out["installation"] = {"id": installation["id"], "node_id": node_id("IN", installation["id"])}
                break
        return out

    # ------------------------------------------------------------------ lookups and changes
    def find_repo(self, full_name: str) -> Repo:
        return self.repos[full_name.lower()]

    def find_issue(self, full_name: str, number: int) -> tuple[Repo, Issue]:
        repo = self.find_repo(full_name)
        return repo, repo.issues[int(number)]

    @staticmethod
    def covers(installation: dict[str, Any], repo: Repo) -> bool:
        return repo.full_name.lower() in (r.lower() for r in installation["repos"])

    def new_comment(self, repo: Repo, issue: Issue, body: str, user: str) -> Comment:
        self.user(user, "Bot" if user == self.bot_login else "User")
        now = self.clock()
        comment = Comment(self.next_id(), repo.full_name, issue.number, body, user, now, now)
        self.comment_by_id[comment.id] = comment
        issue.comment_ids.append(comment.id)
        issue.updated = now
        return comment

    def put_label(self, repo: Repo, issue: Issue, name: str, actor: str) -> None:
        """Put a label on an issue, creating a grey repository label when it is missing (as GitHub does)."""
        label = repo.labels.get(name.lower())
        if label is None:
            label = repo.labels[name.lower()] = Label(self.next_id(), name)
        if label.name not in issue.labels:
            issue.labels.append(label.name)
            issue.updated = self.clock()
            issue.events.append({"event": "labeled", "label": label.name, "actor": actor,
                                 "by_bot": actor == self.bot_login})

    def take_label(self, issue: Issue, name: str, actor: str) -> bool:
        """Remove a label from an issue; False when it was not there."""
        for existing in issue.labels:
            if existing.lower() == name.lower():
                issue.labels.remove(existing)
                issue.updated = self.clock()
                issue.events.append({"event": "unlabeled", "label": existing, "actor": actor,
                                     "by_bot": actor == self.bot_login})
                return True
        return False

    def replace_labels(self, repo: Repo, issue: Issue, names: list[str], actor: str) -> None:
        wanted = {n.lower() for n in names}
        for existing in [n for n in issue.labels if n.lower() not in wanted]:
            self.take_label(issue, existing, actor)
        for name in names:
            self.put_label(repo, issue, name, actor)

    # ------------------------------------------------------------------ rendering
    def render_user(self, login: str) -> dict[str, Any]:
        info = self.user(login)
        return {"login": login, "id": info["id"], "node_id": node_id("U", info["id"]),
                "avatar_url": f"https://avatars.githubusercontent.com/u/{info['id']}?v=4",
                "url": f"{self.base_url}/users/{quote(login)}", "html_url": f"{WEB}/{quote(login)}",
                "type": info["type"], "site_admin": False}

    def render_app(self) -> dict[str, Any]:
        return {"id": self.app_id, "slug": self.app_slug, "node_id": node_id("A", self.app_id),
                "name": self.app_slug, "html_url": f"{WEB}/apps/{self.app_slug}",
                "permissions": dict(TOKEN_PERMISSIONS), "events": ["issues", "issue_comment", "label"],
                "installations_count": len(self.installations)}

    def render_repo(self, repo: Repo) -> dict[str, Any]:
        created = iso(repo.created)
        return {"id": repo.id, "node_id": node_id("R", repo.id), "name": repo.name, "full_name": repo.full_name,
                "private": repo.private, "owner": self.render_user(repo.owner),
                "html_url": f"{WEB}/{repo.full_name}", "url": f"{self.base_url}/repos/{repo.full_name}",
                "description": None, "fork": False, "default_branch": repo.default_branch,
                "visibility": "private" if repo.private else "public",
                "open_issues_count": sum(1 for i in repo.issues.values() if i.state == "open"),
                "has_issues": True, "archived": False, "disabled": False,
                "created_at": created, "updated_at": created, "pushed_at": created}

    def render_label(self, repo: Repo, label: Label) -> dict[str, Any]:
        return {"id": label.id, "node_id": node_id("LA", label.id),
                "url": f"{self.base_url}/repos/{repo.full_name}/labels/{quote(label.name, safe='')}",
                "name": label.name, "color": label.color, "default": label.default,
                "description": label.description}

    def association(self, repo: Repo, login: str) -> str:
        if login == self.bot_login:
            return "NONE"
        if login.lower() == repo.owner.lower():
            return "OWNER"
        return "COLLABORATOR" if login in repo.collaborators else "NONE"

    @staticmethod
    def _reaction_summary(url: str, reactions: list[tuple[str, str]]) -> dict[str, Any]:
        counts = collections.Counter(content for _, content in reactions)
        return {"url": url, "total_count": len(reactions), **{r: counts[r] for r in REACTIONS}}

    def render_issue(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}/issues/{issue.number}"
        return {
            "url": api, "repository_url": f"{self.base_url}/repos/{repo.full_name}",
            "labels_url": f"{api}/labels{{/name}}", "comments_url": f"{api}/comments",
            "events_url": f"{api}/events", "html_url": f"{WEB}/{repo.full_name}/issues/{issue.number}",
            "id": issue.id, "node_id": node_id("I", issue.id), "number": issue.number, "title": issue.title,
            "user": self.render_user(issue.user),
            "labels": [self.render_label(repo, repo.labels[n.lower()]) for n in issue.labels],
            "state": issue.state, "state_reason": issue.state_reason, "locked": False, "assignee": None,
            "assignees": [], "milestone": None, "comments": len(issue.comment_ids),
            "created_at": iso(issue.created), "updated_at": iso(issue.updated), "closed_at": iso(issue.closed_at),
            "closed_by": self.render_user(issue.closed_by) if issue.closed_by else None,
            "author_association": self.association(repo, issue.user), "active_lock_reason": None,
            "body": issue.body, "reactions": self._reaction_summary(f"{api}/reactions", issue.reactions),
            "timeline_url": f"{api}/timeline", "performed_via_github_app": None,
        }

    def render_comment(self, comment: Comment) -> dict[str, Any]:
        repo = self.find_repo(comment.repo)
        url = f"{self.base_url}/repos/{repo.full_name}/issues/comments/{comment.id}"
        by_bot = comment.user == self.bot_login
        return {
            "id": comment.id, "node_id": node_id("IC", comment.id), "url": url,
            "html_url": f"{WEB}/{repo.full_name}/issues/{comment.issue}#issuecomment-{comment.id}",
            "issue_url": f"{self.base_url}/repos/{repo.full_name}/issues/{comment.issue}",
            "body": comment.body, "user": self.render_user(comment.user),
            "created_at": iso(comment.created), "updated_at": iso(comment.updated),
            "author_association": self.association(repo, comment.user),
            "performed_via_github_app": self.render_app() if by_bot else None,
            "reactions": self._reaction_summary(f"{url}/reactions", comment.reactions),
        }

    def render_commit(self, repo: Repo, sha: str) -> dict[str, Any]:
        commit, api = repo.git.commits[sha], f"{self.base_url}/repos/{repo.full_name}/git"
        return {"sha": sha, "node_id": node_id("C", int(sha[:8], 16)), "url": f"{api}/commits/{sha}",
                "html_url": f"{WEB}/{repo.full_name}/commit/{sha}", "author": commit["author"],
                "committer": commit["committer"], "message": commit["message"],
                "tree": {"sha": commit["tree"], "url": f"{api}/trees/{commit['tree']}"},
                "parents": [{"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{WEB}/{repo.full_name}/commit/{p}"}
                            for p in commit["parents"]],
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None}}

    def render_branch(self, repo: Repo, branch: str) -> dict[str, Any]:
        sha = repo.git.refs[f"heads/{branch}"]
        git, api = self.render_commit(repo, sha), f"{self.base_url}/repos/{repo.full_name}"
        commit = {"sha": sha, "node_id": git["node_id"], "url": f"{api}/commits/{sha}", "html_url": git["html_url"],
                  "commit": {k: git[k] for k in ("author", "committer", "message", "tree", "url", "verification")},
                  "parents": git["parents"]}
        return {"name": branch, "commit": commit, "protected": False,
                "_links": {"self": f"{api}/branches/{quote(branch, safe='')}",
                           "html": f"{WEB}/{repo.full_name}/tree/{branch}"}}

    def render_ref(self, repo: Repo, ref: str) -> dict[str, Any]:
        sha, api = repo.git.refs[ref], f"{self.base_url}/repos/{repo.full_name}/git"
        return {"ref": f"refs/{ref}", "node_id": node_id("REF", repo.id), "url": f"{api}/refs/{ref}",
                "object": {"type": "commit", "sha": sha, "url": f"{api}/commits/{sha}"}}

    def render_tree(self, repo: Repo, sha: str, *, recursive: bool) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}/git"

        def walk(tree_sha: str, prefix: str) -> list[dict[str, Any]]:
            out = []
            for name, kind, entry_sha in repo.git.trees[tree_sha]["entries"]:
                item = {"path": prefix + name, "mode": "040000" if kind == "tree" else "100644", "type": kind,
                        "sha": entry_sha, "url": f"{api}/{kind}s/{entry_sha}"}
                if kind == "blob":
                    item["size"] = len(repo.git.blobs[entry_sha])
                out.append(item)
                if kind == "tree" and recursive:
                    out += walk(entry_sha, prefix + name + "/")
            return out

        return {"sha": sha, "url": f"{api}/trees/{sha}", "tree": walk(sha, ""), "truncated": False}

    def render_content(self, repo: Repo, path: str, sha: str, kind: str, ref: str) -> dict[str, Any]:
        """A contents-API entry (`kind` "file" or "dir") without the file's content."""
        api = f"{self.base_url}/repos/{repo.full_name}"
        git_url = f"{api}/git/{'blobs' if kind == 'file' else 'trees'}/{sha}"
        html_url = f"{WEB}/{repo.full_name}/{'blob' if kind == 'file' else 'tree'}/{ref}/{path}"
        self_url = f"{api}/contents/{quote(path)}?ref={quote(ref)}"
        size = len(repo.git.blobs[sha]) if kind == "file" else 0
        download = f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}" if kind == "file" else None
        return {"type": kind, "name": path.rsplit("/", 1)[-1], "path": path, "sha": sha, "size": size,
                "url": self_url, "git_url": git_url, "html_url": html_url, "download_url": download,
                "_links": {"self": self_url, "git": git_url, "html": html_url}}
