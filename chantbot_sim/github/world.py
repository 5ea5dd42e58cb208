"""The simulated GitHub's world: what people do to its repositories, what it holds, and its GitHub-shaped JSON."""

from __future__ import annotations

import base64
import collections
import itertools
from typing import Any, Callable, Sequence
from urllib.parse import quote

from chantbot_sim.github.git import FileChange, iso
from chantbot_sim.github.model import (CheckRun, CheckSuite, Comment, CommitStatus, Issue, Label, Milestone, Pull, Release,
                                 Repo, Review, ReviewComment)

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
TOKEN_PERMISSIONS = {"issues": "write", "contents": "write", "metadata": "read", "pull_requests": "write",
                     "checks": "read", "statuses": "write"}


def node_id(prefix: str, number: int) -> str:
    return base64.b64encode(f"0{prefix}{number}".encode()).decode().rstrip("=")


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
        self.tree_limit = 100_000  # entries in one tree answer; GitHub truncates recursive trees there
        self.downloads: dict[str, tuple[str, str, float]] = {}  # archive token -> (repo, commit, expiry)
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
                 private: bool = False, has_discussions: bool = False) -> dict:
        owner, name = full_name.split("/", 1)
        self.user(owner)
        repo = Repo(self.next_id(), owner, name, private, default_branch, self.clock(), dict(collaborators or {}),
                    has_discussions=has_discussions)
        if labels is None:
            labels = [{"name": n, "color": c, "description": d, "default": True} for n, c, d in DEFAULT_LABELS]
        for spec in labels:
            repo.labels[spec["name"].lower()] = Label(self.next_id(), spec["name"], spec.get("color", "ededed"),
                                                      spec.get("description"), spec.get("default", False))
        self.repos[full_name.lower()] = repo
        blobs = {path: repo.git.put_blob(text.encode()) for path, text in (files or {}).items()}
        self.commit_on(repo, default_branch, blobs, "Initial commit", owner, via="create")
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
        self.push(full_name, branch or repo.default_branch, {path: text}, user=repo.owner, message=f"Update {path}")

    def push(self, full_name: str, branch: str, files: dict[str, str | bytes | None], *, user: str,
             message: str = "Update files") -> str:
        """A person's commit of `files` (None deletes a path) on a branch, made from the default branch
        when missing; returns the commit sha. Starts simulated CI like any push."""
        repo = self.find_repo(full_name)
        self.user(user)
        head = repo.git.refs.get(f"heads/{branch}") or repo.git.refs[f"heads/{repo.default_branch}"]
        tree = dict(repo.git.files_at(head))
        for path, content in files.items():
            if content is None:
                tree.pop(path, None)
            else:
                tree[path] = repo.git.put_blob(content.encode() if isinstance(content, str) else content)
        return self.commit_on(repo, branch, tree, message, user, via="push")

    def commit_on(self, repo: Repo, branch: str, files: dict[str, str], message: str, who: str, *,
                  via: str) -> str:
        """Commit a whole {path: blob sha} map on a branch (from the default branch when new) and move it."""
        head = repo.git.refs.get(f"heads/{branch}") or repo.git.refs.get(f"heads/{repo.default_branch}")
        sha = repo.git.commit_files(head, files, message, who, self.clock())
        self.move_ref(repo, f"heads/{branch}", sha, via=via, actor=who)
        return sha

    def move_ref(self, repo: Repo, ref: str, sha: str, *, via: str, actor: str) -> None:
        """The one place a ref (`heads/x`, `tags/y`) is created or moved: logged, and a branch head
        that moved is announced to `head_moved`."""
        old = repo.git.refs.get(ref)
        repo.git.refs[ref] = sha
        forced = old is not None and not repo.git.is_ancestor(old, sha)
        repo.ref_log.append({"ref": f"refs/{ref}", "old": old, "new": sha, "via": via, "actor": actor,
                             "forced": forced})
        if ref.startswith("heads/") and old != sha:
            self.head_moved(repo, ref.removeprefix("heads/"), sha, old, actor)

    def head_moved(self, repo: Repo, branch: str, sha: str, before: str | None, actor: str) -> None:
        """Called after a branch head moved; the server runs simulated CI from here."""

    def open_pull(self, repo: Repo, *, head: str, base: str, title: str, body: str | None, user: str,
                  draft: bool = False) -> Issue:
        """Open a pull request (the caller checked that both branches exist); it takes the next issue number."""
        self.user(user, "Bot" if user == self.bot_login else "User")
        now = self.clock()
        issue = Issue(self.next_id(), len(repo.issues) + 1, title, body, user, now, now)
        issue.pull = Pull(self.next_id(), head, base, repo.git.refs[f"heads/{head}"], repo.git.refs[f"heads/{base}"],
                          draft=draft)
        repo.issues[issue.number] = issue
        return issue

    def add_pull(self, full_name: str, *, head: str, title: str, user: str, body: str | None = None,
                 base: str | None = None, draft: bool = False) -> dict:
        """A person opens a pull request from an existing branch."""
        repo = self.find_repo(full_name)
        issue = self.open_pull(repo, head=head, base=base or repo.default_branch, title=title, body=body,
                               user=user, draft=draft)
        return self.render_pull(repo, issue)

    def merge_pull(self, full_name: str, number: int, user: str, *, message: str | None = None) -> dict:
        """A person merges an open pull request with a merge commit: the base branch moves (simulated CI
        runs on it), the pull request closes with `merged` true. Raises ValueError when it cannot merge."""
        repo, issue = self.find_issue(full_name, number)
        pull = issue.pull
        if pull is None or issue.state != "open":
            raise ValueError(f"#{number} is not an open pull request")
        base, head = self.pull_shas(repo, issue)
        files = repo.git.merge_files(base, head)
        if files is None:
            raise ValueError(f"#{number} has conflicts with {pull.base}")
        now = self.clock()
        text = message or f"Merge pull request #{number} from {repo.owner}/{pull.head}\n\n{issue.title}"
        merge = repo.git.put_commit(repo.git.put_tree(files), [base, head], text, user, now)
        pull.base_sha, pull.head_sha = base, head
        pull.merged_at, pull.merged_by, pull.merge_commit_sha = now, user, merge
        issue.state, issue.closed_at, issue.closed_by, issue.updated = "closed", now, user, now
        self.move_ref(repo, f"heads/{pull.base}", merge, via="merge", actor=user)
        return self.render_pull(repo, issue)

    def pull_shas(self, repo: Repo, issue: Issue) -> tuple[str, str]:
        """(base sha, head sha) of a pull request: the branches' heads while it is open."""
        pull = issue.pull
        assert pull is not None
        if issue.state == "open":
            pull.base_sha = repo.git.refs.get(f"heads/{pull.base}", pull.base_sha)
            pull.head_sha = repo.git.refs.get(f"heads/{pull.head}", pull.head_sha)
        return pull.base_sha, pull.head_sha

    def pull_changes(self, repo: Repo, issue: Issue) -> tuple[list[str], list[FileChange]]:
        """The pull request's commits (oldest first) and its diff, from the merge base to the head."""
        base, head = self.pull_shas(repo, issue)
        return repo.git.between(base, head), repo.git.diff(repo.git.merge_base(base, head), head)

    def add_milestone(self, full_name: str, title: str, *, issues: Sequence[int] = (), state: str = "open",
                      description: str | None = None) -> dict:
        """A milestone holding the given issues."""
        repo = self.find_repo(full_name)
        now = self.clock()
        milestone = Milestone(self.next_id(), len(repo.milestones) + 1, title, description, state, now,
                              now if state == "closed" else None)
        repo.milestones[milestone.number] = milestone
        for number in issues:
            repo.issues[number].milestone = milestone.number
        return self.render_milestone(repo, milestone)

    def seed(self, data: dict[str, Any]) -> dict[str, list]:
        """Build a world from JSON (the body of `POST /_sim/state`); returns what was created."""
        out: dict[str, list] = {"repos": [], "issues": [], "comments": [], "pushes": [], "pulls": [], "milestones": []}
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
        for spec in data.get("pushes", []):
            out["pushes"].append(self.push(spec["repo"], spec["branch"], spec["files"], user=spec["user"],
                                           message=spec.get("message", "Update files")))
        for spec in data.get("pulls", []):
            out["pulls"].append(self.add_pull(spec["repo"], head=spec["head"], base=spec.get("base"),
                                              title=spec["title"], body=spec.get("body"), user=spec["user"],
                                              draft=spec.get("draft", False)))
        for spec in data.get("milestones", []):
            out["milestones"].append(self.add_milestone(spec["repo"], spec["title"], issues=spec.get("issues", ()),
                                                        state=spec.get("state", "open")))
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

    def branch_head(self, full_name: str, branch: str) -> str | None:
        """The commit a branch points at, or None when there is no such branch."""
        return self.find_repo(full_name).git.refs.get(f"heads/{branch}")

    def branches(self, full_name: str) -> list[str]:
        return sorted(r.removeprefix("heads/") for r in self.find_repo(full_name).git.refs if r.startswith("heads/"))

    def repo_labels(self, full_name: str) -> list[dict]:
        repo = self.find_repo(full_name)
        return [self.render_label(repo, label) for label in sorted(repo.labels.values(), key=lambda x: x.name.lower())]

    def label_events(self, full_name: str, number: int) -> list[dict]:
        return [dict(e) for e in self.find_issue(full_name, number)[1].events]

    def reactions(self, comment_id: int) -> list[str]:
        return [content for _, content in self.comment_by_id[comment_id].reactions]

    def pull(self, full_name: str, number: int) -> dict:
        return self.render_pull(*self.find_issue(full_name, number))

    def pulls(self, full_name: str) -> list[dict]:
        repo = self.find_repo(full_name)
        return [self.render_pull(repo, i) for i in repo.issues.values() if i.pull]

    def reviews(self, full_name: str, number: int) -> list[dict]:
        repo, issue = self.find_issue(full_name, number)
        return [self.render_review(repo, issue, r) for r in (issue.pull.reviews if issue.pull else [])]

    def review_comments(self, full_name: str, number: int) -> list[dict]:
        repo = self.find_repo(full_name)
        return [self.render_review_comment(repo, c) for c in repo.review_comments.values() if c.number == number]

    def statuses(self, full_name: str, ref: str) -> list[dict]:
        """Commit statuses of a commit (or a branch's head), newest first."""
        repo = self.find_repo(full_name)
        sha = repo.git.resolve(ref)
        return [self.render_status(repo, st) for st in reversed(repo.statuses) if st.sha == sha]

    def check_suites(self, full_name: str, ref: str | None = None) -> list[dict]:
        """Check suites of one commit (or a branch's head), or of every commit, oldest first."""
        repo = self.find_repo(full_name)
        sha = repo.git.resolve(ref) if ref else None
        return [self.render_check_suite(repo, suite) for suite in repo.check_suites.values()
                if ref is None or suite.head_sha == sha]

    def check_runs(self, full_name: str, ref: str) -> list[dict]:
        repo = self.find_repo(full_name)
        sha = repo.git.resolve(ref)
        return [self.render_check_run(repo, run) for run in repo.check_runs.values() if run.head_sha == sha]

    def releases(self, full_name: str) -> list[dict]:
        repo = self.find_repo(full_name)
        return [self.render_release(repo, r) for r in sorted(repo.releases.values(), key=lambda r: -r.id)]

    def ref_log(self, full_name: str) -> list[dict]:
        """Every ref change: ref, old, new, via (create, push, merge, git, contents), actor, forced."""
        return [dict(entry) for entry in self.find_repo(full_name).ref_log]

    def dump(self, full_name: str | None = None) -> dict[str, Any]:
        """Per repository: issues and pull requests (with comments, reviews, merge state), branches with
        files, labels, commit statuses, check suites, releases, milestones and the ref log."""
        repos = {}
        for repo in self.repos.values():
            if full_name and repo.full_name.lower() != full_name.lower():
                continue
            branches = {b: {"sha": repo.git.refs[f"heads/{b}"], "files": self.files(repo.full_name, branch=b)}
                        for b in self.branches(repo.full_name)}
            repos[repo.full_name] = {
                "default_branch": repo.default_branch, "private": repo.private,
                "issues": [self._dump_issue(i) for i in repo.issues.values() if not i.pull],
                "pulls": [self._dump_pull(repo, i) for i in repo.issues.values() if i.pull],
                "branches": branches, "labels": self.repo_labels(repo.full_name),
                "statuses": [{"sha": st.sha, "context": st.context, "state": st.state, "description": st.description,
                              "target_url": st.target_url, "creator": st.creator} for st in repo.statuses],
                "check_suites": [{"id": suite.id, "head_sha": suite.head_sha, "head_branch": suite.head_branch,
                                  "status": suite.status, "conclusion": suite.conclusion,
                                  "runs": [{"name": run.name, "status": run.status, "conclusion": run.conclusion,
                                            "title": run.title}
                                           for run in (repo.check_runs[r] for r in suite.run_ids)]}
                                 for suite in repo.check_suites.values()],
                "releases": [{"id": r.id, "tag_name": r.tag_name, "name": r.name, "body": r.body, "draft": r.draft,
                              "prerelease": r.prerelease, "author": r.author} for r in repo.releases.values()],
                "milestones": [{"number": m.number, "title": m.title, "state": m.state,
                                "issues": [i.number for i in repo.issues.values() if i.milestone == m.number]}
                               for m in repo.milestones.values()],
                "ref_log": self.ref_log(repo.full_name)}
        return {"bot_login": self.bot_login, "repos": repos}

    def _dump_issue(self, issue: Issue) -> dict[str, Any]:
        return {"number": issue.number, "title": issue.title, "body": issue.body, "user": issue.user,
                "state": issue.state, "state_reason": issue.state_reason, "labels": list(issue.labels),
                "label_events": list(issue.events), "reactions": [r for _, r in issue.reactions],
                "comments": [{"id": c.id, "body": c.body, "user": c.user, "by_bot": c.user == self.bot_login,
                              "reactions": [r for _, r in c.reactions]}
                             for c in (self.comment_by_id[x] for x in issue.comment_ids)]}

    def _dump_pull(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        pull = issue.pull
        assert pull is not None
        base, head = self.pull_shas(repo, issue)
        comments = [c for c in repo.review_comments.values() if c.number == issue.number]
        return {**self._dump_issue(issue), "head": pull.head, "base": pull.base, "head_sha": head, "base_sha": base,
                "draft": pull.draft, "merged": pull.merged_at is not None, "merged_by": pull.merged_by,
                "merge_commit_sha": pull.merge_commit_sha,
                "reviews": [{"id": r.id, "user": r.user, "state": r.state, "body": r.body, "commit_id": r.commit_id}
                            for r in pull.reviews],
                "review_comments": [{"id": c.id, "review_id": c.review_id, "user": c.user, "path": c.path,
                                     "line": c.line, "side": c.side, "body": c.body} for c in comments]}

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

    def pull_payload(self, action: str, full_name: str, number: int, *, sender: str | None = None) -> dict:
        """A `pull_request` delivery (`opened`, `closed` with `merged`, `synchronize`, ...)."""
        repo, issue = self.find_issue(full_name, number)
        pull = self.render_pull(repo, issue)
        if sender is None:
            sender = issue.pull.merged_by if action == "closed" and issue.pull and issue.pull.merged_by else issue.user
        return {"action": action, "number": issue.number, "pull_request": pull, **self._envelope(repo, sender)}

    def check_suite_payload(self, full_name: str, suite_id: int, action: str = "completed") -> dict:
        """A `check_suite` delivery as an App with checks read gets it."""
        repo = self.find_repo(full_name)
        suite = repo.check_suites[suite_id]
        rendered = self.render_check_suite(repo, suite)
        del rendered["repository"]  # the payload carries it at the top level
        return {"action": action, "check_suite": rendered, **self._envelope(repo, suite.pusher)}

    def check_run_payload(self, full_name: str, run_id: int, action: str = "completed") -> dict:
        """A `check_run` delivery; its `check_suite` is the suite without repository and head commit."""
        repo = self.find_repo(full_name)
        run = repo.check_runs[run_id]
        suite = self.render_check_suite(repo, repo.check_suites[run.suite_id])
        rendered = self.render_check_run(repo, run)
        dropped = ("repository", "head_commit", "latest_check_runs_count", "check_runs_url", "rerequestable",
                   "runs_rerequestable")
        rendered["check_suite"] = {k: v for k, v in suite.items() if k not in dropped}
        return {"action": action, "check_run": rendered,
                **self._envelope(repo, repo.check_suites[run.suite_id].pusher)}

    def push_payload(self, full_name: str, branch: str | None = None, *, sender: str | None = None) -> dict:
        """A `push` delivery for the branch's current head (the default branch unless named), as GitHub sends it
        after a push (the fields chantbot reads; no commits list)."""
        repo = self.find_repo(full_name)
        name = branch or repo.default_branch
        head = repo.git.refs[f"heads/{name}"]
        return {"ref": f"refs/heads/{name}", "before": "0" * 40, "after": head, "created": False, "deleted": False,
                "forced": False, "commits": [], "pusher": {"name": sender or repo.owner},
                **self._envelope(repo, sender or repo.owner)}

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
        api = f"{self.base_url}/users/{quote(login)}"
        return {"login": login, "id": info["id"], "node_id": node_id("U", info["id"]),
                "avatar_url": f"https://avatars.githubusercontent.com/u/{info['id']}?v=4", "gravatar_id": "",
                "url": api, "html_url": f"{WEB}/{quote(login)}", "followers_url": f"{api}/followers",
                "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
                "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
                "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos",
                "events_url": f"{api}/events{{/privacy}}", "received_events_url": f"{api}/received_events",
                "type": info["type"], "site_admin": False}

    def render_app(self) -> dict[str, Any]:
        return {"id": self.app_id, "slug": self.app_slug, "node_id": node_id("A", self.app_id),
                "name": self.app_slug, "html_url": f"{WEB}/apps/{self.app_slug}",
                "permissions": dict(TOKEN_PERMISSIONS),
                "events": ["issues", "issue_comment", "label", "pull_request", "check_suite", "check_run"],
                "installations_count": len(self.installations)}

    def render_repo(self, repo: Repo) -> dict[str, Any]:
        """A repository as webhook payloads, pull requests and check suites carry it."""
        created = iso(repo.created)
        api, html = f"{self.base_url}/repos/{repo.full_name}", f"{WEB}/{repo.full_name}"
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        templates = {
            "forks": "/forks", "keys": "/keys{/key_id}", "collaborators": "/collaborators{/collaborator}",
            "teams": "/teams", "hooks": "/hooks", "issue_events": "/issues/events{/number}", "events": "/events",
            "assignees": "/assignees{/user}", "branches": "/branches{/branch}", "tags": "/tags",
            "blobs": "/git/blobs{/sha}", "git_tags": "/git/tags{/sha}", "git_refs": "/git/refs{/sha}",
            "trees": "/git/trees{/sha}", "statuses": "/statuses/{sha}", "languages": "/languages",
            "stargazers": "/stargazers", "contributors": "/contributors", "subscribers": "/subscribers",
            "subscription": "/subscription", "commits": "/commits{/sha}", "git_commits": "/git/commits{/sha}",
            "comments": "/comments{/number}", "issue_comment": "/issues/comments{/number}",
            "contents": "/contents/{+path}", "compare": "/compare/{base}...{head}", "merges": "/merges",
            "archive": "/{archive_format}{/ref}", "downloads": "/downloads", "issues": "/issues{/number}",
            "pulls": "/pulls{/number}", "milestones": "/milestones{/number}",
            "notifications": "/notifications{?since,all,participating}", "labels": "/labels{/name}",
            "releases": "/releases{/id}", "deployments": "/deployments"}
        return {"id": repo.id, "node_id": node_id("R", repo.id), "name": repo.name, "full_name": repo.full_name,
                "private": repo.private, "owner": self.render_user(repo.owner), "html_url": html,
                "description": None, "fork": False, "url": api,
                **{f"{name}_url": api + path for name, path in templates.items()},
                "created_at": created, "updated_at": created, "pushed_at": created,
                "git_url": f"git://github.com/{repo.full_name}.git", "ssh_url": f"git@github.com:{repo.full_name}.git",
                "clone_url": f"{html}.git", "svn_url": html, "homepage": None, "size": 0, "stargazers_count": 0,
                "watchers_count": 0, "language": None, "has_issues": True, "has_projects": True,
                "has_downloads": True, "has_wiki": True, "has_pages": False, "has_discussions": repo.has_discussions,
                "forks_count": 0, "mirror_url": None, "archived": False, "disabled": False,
                "open_issues_count": open_issues, "license": None, "allow_forking": True, "is_template": False,
                "web_commit_signoff_required": False, "topics": [],
                "visibility": "private" if repo.private else "public", "forks": 0, "open_issues": open_issues,
                "watchers": 0, "default_branch": repo.default_branch, "custom_properties": {}}

    def render_full_repo(self, repo: Repo) -> dict[str, Any]:
        """A repository as `GET /repos/{owner}/{repo}` answers it."""
        return {**self.render_repo(repo), "network_count": 0, "subscribers_count": 0}

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
            "state": issue.state, "state_reason": issue.state_reason, "locked": False,
            "assignee": self.render_user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.render_user(login) for login in issue.assignees], "comments": len(issue.comment_ids),
            "milestone": self.render_milestone(repo, repo.milestones[issue.milestone]) if issue.milestone else None,
            "created_at": iso(issue.created), "updated_at": iso(issue.updated), "closed_at": iso(issue.closed_at),
            "closed_by": self.render_user(issue.closed_by) if issue.closed_by else None,
            "author_association": self.association(repo, issue.user), "active_lock_reason": None,
            "body": issue.body, "reactions": self._reaction_summary(f"{api}/reactions", issue.reactions),
            "timeline_url": f"{api}/timeline", "performed_via_github_app": None,
            **self._issue_pull_fields(repo, issue),
        }

    def _issue_pull_fields(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        """What marks an issue as a pull request in the issues API."""
        if issue.pull is None:
            return {}
        html = f"{WEB}/{repo.full_name}/pull/{issue.number}"
        return {"draft": issue.pull.draft, "pull_request": {
            "url": f"{self.base_url}/repos/{repo.full_name}/pulls/{issue.number}", "html_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "merged_at": iso(issue.pull.merged_at)}}

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
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                                 "verified_at": None}}

    def render_branch(self, repo: Repo, branch: str) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}/branches/{quote(branch, safe='')}"
        return {"name": branch, "commit": self.render_commit_listing(repo, repo.git.refs[f"heads/{branch}"]),
                "_links": {"self": api, "html": f"{WEB}/{repo.full_name}/tree/{branch}"}, "protected": False,
                "protection": {"enabled": False, "required_status_checks": {"enforcement_level": "off",
                                                                            "contexts": [], "checks": []}},
                "protection_url": f"{api}/protection"}

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

        entries = walk(sha, "")
        return {"sha": sha, "url": f"{api}/trees/{sha}", "tree": entries[:self.tree_limit],
                "truncated": len(entries) > self.tree_limit}

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

    def render_commit_listing(self, repo: Repo, sha: str, *, changes: list[FileChange] | None = None) -> dict[str, Any]:
        """A commit as the commits API shows it (the git commit under `commit`); with `changes`, its files."""
        git, api = self.render_commit(repo, sha), f"{self.base_url}/repos/{repo.full_name}"
        login = repo.git.commits[sha].get("login")
        account = self.render_user(login) if login else None
        out: dict[str, Any] = {
            "sha": sha, "node_id": git["node_id"], "url": f"{api}/commits/{sha}", "html_url": git["html_url"],
            "comments_url": f"{api}/commits/{sha}/comments",
            "commit": {**{k: git[k] for k in ("author", "committer", "message", "tree", "url", "verification")},
                       "comment_count": 0},
            "author": account, "committer": account,
            "parents": [{"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{WEB}/{repo.full_name}/commit/{p}"}
                        for p in repo.git.commits[sha]["parents"]]}
        if changes is not None:
            additions, deletions = sum(c.additions for c in changes), sum(c.deletions for c in changes)
            out["stats"] = {"total": additions + deletions, "additions": additions, "deletions": deletions}
            out["files"] = [self.render_file_change(repo, c, sha) for c in changes]
        return out

    def render_file_change(self, repo: Repo, change: FileChange, ref: str) -> dict[str, Any]:
        api, path = f"{self.base_url}/repos/{repo.full_name}", quote(change.path)
        out: dict[str, Any] = {
            "sha": change.new_sha or change.old_sha, "filename": change.path, "status": change.status,
            "additions": change.additions, "deletions": change.deletions,
            "changes": change.additions + change.deletions,
            "blob_url": f"{WEB}/{repo.full_name}/blob/{ref}/{path}",
            "raw_url": f"{WEB}/{repo.full_name}/raw/{ref}/{path}",
            "contents_url": f"{api}/contents/{path}?ref={ref}"}
        if change.patch is not None:
            out["patch"] = change.patch
        if change.previous_path is not None:
            out["previous_filename"] = change.previous_path
        return out

    def render_pull(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        """A pull request as the pulls API shows it."""
        pull = issue.pull
        assert pull is not None
        base_sha, head_sha = self.pull_shas(repo, issue)
        commits, changes = self.pull_changes(repo, issue)
        rendered = self.render_issue(repo, issue)
        api = f"{self.base_url}/repos/{repo.full_name}"
        url, html = f"{api}/pulls/{issue.number}", f"{WEB}/{repo.full_name}/pull/{issue.number}"
        mergeable = None if issue.state != "open" else repo.git.merge_files(base_sha, head_sha) is not None
        links = {"self": url, "html": html, "issue": rendered["url"], "comments": rendered["comments_url"],
                 "review_comments": f"{url}/comments", "review_comment": f"{api}/pulls/comments{{/number}}",
                 "commits": f"{url}/commits", "statuses": f"{api}/statuses/{head_sha}"}
        return {
            "url": url, "id": pull.id, "node_id": node_id("PR", pull.id), "html_url": html, "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch", "issue_url": rendered["url"], "commits_url": links["commits"],
            "review_comments_url": links["review_comments"], "review_comment_url": links["review_comment"],
            "comments_url": rendered["comments_url"], "statuses_url": links["statuses"], "number": issue.number,
            "state": issue.state, "locked": False, "title": issue.title, "user": rendered["user"], "body": issue.body,
            "labels": rendered["labels"], "milestone": rendered["milestone"], "active_lock_reason": None,
            "created_at": rendered["created_at"], "updated_at": rendered["updated_at"],
            "closed_at": rendered["closed_at"], "merged_at": iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha, "assignee": None, "assignees": [], "requested_reviewers": [],
            "requested_teams": [], "head": self._pull_side(repo, pull.head, head_sha),
            "base": self._pull_side(repo, pull.base, base_sha),
            "_links": {name: {"href": href} for name, href in links.items()},
            "author_association": rendered["author_association"], "auto_merge": None, "draft": pull.draft,
            "merged": pull.merged_at is not None, "mergeable": mergeable, "rebaseable": mergeable,
            "mergeable_state": ("draft" if pull.draft else "clean" if mergeable else "dirty")
            if issue.state == "open" else "unknown",
            "merged_by": self.render_user(pull.merged_by) if pull.merged_by else None,
            "comments": len(issue.comment_ids),
            "review_comments": sum(1 for c in repo.review_comments.values() if c.number == issue.number),
            "maintainer_can_modify": False, "commits": len(commits),
            "additions": sum(c.additions for c in changes), "deletions": sum(c.deletions for c in changes),
            "changed_files": len(changes)}

    def _pull_side(self, repo: Repo, branch: str, sha: str) -> dict[str, Any]:
        return {"label": f"{repo.owner}:{branch}", "ref": branch, "sha": sha, "user": self.render_user(repo.owner),
                "repo": self.render_repo(repo)}

    def pull_minimal(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        """A pull request as a check suite or check run lists it."""
        assert issue.pull is not None
        base_sha, head_sha = self.pull_shas(repo, issue)
        short = {"id": repo.id, "url": f"{self.base_url}/repos/{repo.full_name}", "name": repo.name}
        return {"id": issue.pull.id, "number": issue.number,
                "url": f"{self.base_url}/repos/{repo.full_name}/pulls/{issue.number}",
                "head": {"ref": issue.pull.head, "sha": head_sha, "repo": short},
                "base": {"ref": issue.pull.base, "sha": base_sha, "repo": short}}

    def render_review(self, repo: Repo, issue: Issue, review: Review) -> dict[str, Any]:
        url = f"{self.base_url}/repos/{repo.full_name}/pulls/{issue.number}"
        html = f"{WEB}/{repo.full_name}/pull/{issue.number}#pullrequestreview-{review.id}"
        out = {"id": review.id, "node_id": node_id("PRR", review.id), "user": self.render_user(review.user),
               "body": review.body, "state": review.state, "html_url": html, "pull_request_url": url,
               "_links": {"html": {"href": html}, "pull_request": {"href": url}}, "commit_id": review.commit_id,
               "author_association": self.association(repo, review.user)}
        if review.submitted is not None:
            out["submitted_at"] = iso(review.submitted)
        return out

    def render_review_comment(self, repo: Repo, comment: ReviewComment) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}/pulls"
        url, pull_url = f"{api}/comments/{comment.id}", f"{api}/{comment.number}"
        html = f"{WEB}/{repo.full_name}/pull/{comment.number}#discussion_r{comment.id}"
        return {"url": url, "pull_request_review_id": comment.review_id, "id": comment.id,
                "node_id": node_id("PRRC", comment.id), "diff_hunk": comment.diff_hunk, "path": comment.path,
                "position": comment.position, "original_position": comment.position, "commit_id": comment.commit_id,
                "original_commit_id": comment.commit_id, "user": self.render_user(comment.user), "body": comment.body,
                "created_at": iso(comment.created), "updated_at": iso(comment.updated), "html_url": html,
                "pull_request_url": pull_url, "author_association": self.association(repo, comment.user),
                "_links": {"self": {"href": url}, "html": {"href": html}, "pull_request": {"href": pull_url}},
                "start_line": None, "original_start_line": None, "start_side": None, "line": comment.line,
                "original_line": comment.line, "side": comment.side, "subject_type": "line",
                "reactions": self._reaction_summary(f"{url}/reactions", [])}

    def render_status(self, repo: Repo, status: CommitStatus) -> dict[str, Any]:
        creator = self.render_user(status.creator)
        return {"url": f"{self.base_url}/repos/{repo.full_name}/statuses/{status.sha}",
                "avatar_url": creator["avatar_url"], "id": status.id, "node_id": node_id("SC", status.id),
                "state": status.state, "description": status.description, "target_url": status.target_url,
                "context": status.context, "created_at": iso(status.created), "updated_at": iso(status.created),
                "creator": creator}

    def render_combined_status(self, repo: Repo, sha: str) -> dict[str, Any]:
        """The latest status of each context and their sum: failure beats pending beats success."""
        latest: dict[str, CommitStatus] = {}
        for status in repo.statuses:
            if status.sha == sha:
                latest[status.context] = status
        states = {st.state for st in latest.values()}
        state = ("failure" if states & {"failure", "error"} else "pending" if "pending" in states or not states
                 else "success")
        statuses = []
        for status in latest.values():
            full = self.render_status(repo, status)
            del full["creator"]
            statuses.append({**full, "required": False})
        api = f"{self.base_url}/repos/{repo.full_name}"
        return {"state": state, "statuses": statuses, "sha": sha, "total_count": len(statuses),
                "repository": self.render_repo(repo), "commit_url": f"{api}/commits/{sha}",
                "url": f"{api}/commits/{sha}/status"}

    def render_actions_app(self) -> dict[str, Any]:
        """GitHub Actions, the App that owns the simulated check suites."""
        return {"id": 15368, "slug": "github-actions", "node_id": "MDM6QXBwMTUzNjg=",
                "owner": self.render_user("github"), "name": "GitHub Actions",
                "description": "Automate your workflow from idea to production",
                "external_url": "https://help.github.com/en/actions", "html_url": f"{WEB}/apps/github-actions",
                "created_at": "2018-07-30T09:30:17Z", "updated_at": "2019-12-10T19:04:12Z",
                "permissions": {"actions": "write", "checks": "write", "contents": "write", "metadata": "read",
                                "pull_requests": "write", "statuses": "write"},
                "events": ["check_run", "check_suite", "pull_request", "push"]}

    def check_suite_pulls(self, repo: Repo, suite: CheckSuite) -> list[dict[str, Any]]:
        """The open pull requests whose head is the suite's commit on its branch."""
        return [self.pull_minimal(repo, i) for i in repo.issues.values()
                if i.pull and i.state == "open" and i.pull.head == suite.head_branch
                and self.pull_shas(repo, i)[1] == suite.head_sha]

    def render_check_suite(self, repo: Repo, suite: CheckSuite) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}"
        commit = repo.git.commits[suite.head_sha]
        return {"id": suite.id, "node_id": node_id("CS", suite.id), "head_branch": suite.head_branch,
                "head_sha": suite.head_sha, "status": suite.status, "conclusion": suite.conclusion,
                "url": f"{api}/check-suites/{suite.id}", "before": suite.before, "after": suite.head_sha,
                "pull_requests": self.check_suite_pulls(repo, suite), "app": self.render_actions_app(),
                "repository": self.render_repo(repo), "created_at": iso(suite.created),
                "updated_at": iso(suite.updated),
                "head_commit": {"id": suite.head_sha, "tree_id": commit["tree"], "message": commit["message"],
                                "timestamp": commit["committer"]["date"],
                                "author": {k: commit["author"][k] for k in ("name", "email")},
                                "committer": {k: commit["committer"][k] for k in ("name", "email")}},
                "latest_check_runs_count": len(suite.run_ids),
                "check_runs_url": f"{api}/check-suites/{suite.id}/check-runs",
                "rerequestable": True, "runs_rerequestable": True}

    def render_check_run(self, repo: Repo, run: CheckRun) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}"
        suite = repo.check_suites[run.suite_id]
        html = f"{WEB}/{repo.full_name}/actions/runs/{suite.id}/job/{run.id}"
        return {"id": run.id, "head_sha": run.head_sha, "node_id": node_id("CR", run.id), "external_id": str(run.id),
                "url": f"{api}/check-runs/{run.id}", "html_url": html, "details_url": html, "status": run.status,
                "conclusion": run.conclusion, "started_at": iso(run.started), "completed_at": iso(run.completed),
                "output": {"title": run.title, "summary": run.summary, "text": run.text, "annotations_count": 0,
                           "annotations_url": f"{api}/check-runs/{run.id}/annotations"},
                "name": run.name, "check_suite": {"id": suite.id}, "app": self.render_actions_app(),
                "pull_requests": self.check_suite_pulls(repo, suite)}

    def render_release(self, repo: Repo, release: Release) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}/releases/{release.id}"
        tag = release.tag_name if not release.draft else f"untagged-{node_id('RE', release.id)[-8:]}"
        return {"url": api, "html_url": f"{WEB}/{repo.full_name}/releases/tag/{quote(tag)}",
                "assets_url": f"{api}/assets", "id": release.id, "node_id": node_id("RE", release.id),
                "upload_url": (f"https://uploads.github.com/repos/{repo.full_name}/releases/{release.id}"
                               "/assets{?name,label}"),
                "tarball_url": f"{self.base_url}/repos/{repo.full_name}/tarball/{quote(release.tag_name)}",
                "zipball_url": f"{self.base_url}/repos/{repo.full_name}/zipball/{quote(release.tag_name)}",
                "tag_name": release.tag_name, "target_commitish": release.target_commitish, "name": release.name,
                "body": release.body, "draft": release.draft, "prerelease": release.prerelease,
                "created_at": iso(release.created), "published_at": iso(release.published),
                "author": self.render_user(release.author), "assets": []}

    def render_milestone(self, repo: Repo, milestone: Milestone) -> dict[str, Any]:
        api = f"{self.base_url}/repos/{repo.full_name}/milestones/{milestone.number}"
        issues = [i for i in repo.issues.values() if i.milestone == milestone.number]
        return {"url": api, "html_url": f"{WEB}/{repo.full_name}/milestone/{milestone.number}",
                "labels_url": f"{api}/labels", "id": milestone.id, "node_id": node_id("MI", milestone.id),
                "number": milestone.number, "state": milestone.state, "title": milestone.title,
                "description": milestone.description, "creator": self.render_user(repo.owner),
                "open_issues": sum(1 for i in issues if i.state == "open"),
                "closed_issues": sum(1 for i in issues if i.state == "closed"),
                "created_at": iso(milestone.created), "updated_at": iso(milestone.created),
                "closed_at": iso(milestone.closed), "due_on": None}
