"""The simulated GitHub's records: repositories, issues and pull requests, reviews, statuses, checks, releases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chantbot_sim.github.git import GitStore


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
    milestone: int | None = None  # the milestone's number
    pull: Pull | None = None  # set when the issue is a pull request
    assignees: list[str] = field(default_factory=list)


@dataclass
class Review:
    id: int
    user: str
    body: str
    state: str  # PENDING, COMMENTED, CHANGES_REQUESTED or APPROVED
    commit_id: str
    submitted: float | None


@dataclass
class ReviewComment:
    id: int
    number: int  # the pull request's
    review_id: int | None
    user: str
    body: str
    path: str
    line: int
    side: str  # LEFT (the base's lines) or RIGHT (the head's)
    commit_id: str
    diff_hunk: str
    position: int  # lines below the file's first `@@` in the diff
    created: float
    updated: float


@dataclass
class Pull:
    """What makes an issue a pull request. The shas are the last known ones (kept once it is closed)."""
    id: int
    head: str
    base: str
    head_sha: str
    base_sha: str
    draft: bool = False
    merged_at: float | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    reviews: list[Review] = field(default_factory=list)


@dataclass
class CommitStatus:
    id: int
    sha: str
    state: str  # error, failure, pending or success
    context: str
    description: str | None
    target_url: str | None
    creator: str
    created: float


@dataclass
class CheckRun:
    id: int
    suite_id: int
    head_sha: str
    name: str
    status: str = "queued"  # queued, in_progress, completed
    conclusion: str | None = None  # success, failure, timed_out, cancelled
    started: float | None = None
    completed: float | None = None
    title: str | None = None
    summary: str | None = None
    text: str | None = None


@dataclass
class CheckSuite:
    id: int
    head_sha: str
    head_branch: str
    before: str | None
    pusher: str
    created: float
    updated: float
    status: str = "queued"
    conclusion: str | None = None
    run_ids: list[int] = field(default_factory=list)


@dataclass
class Release:
    id: int
    tag_name: str
    target_commitish: str
    name: str | None
    body: str | None
    draft: bool
    prerelease: bool
    author: str
    created: float
    published: float | None = None


@dataclass
class Milestone:
    id: int
    number: int
    title: str
    description: str | None
    state: str
    created: float
    closed: float | None = None


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
    review_comments: dict[int, ReviewComment] = field(default_factory=dict)
    statuses: list[CommitStatus] = field(default_factory=list)
    check_suites: dict[int, CheckSuite] = field(default_factory=dict)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    releases: dict[int, Release] = field(default_factory=dict)
    milestones: dict[int, Milestone] = field(default_factory=dict)
    # every ref change: {ref, old, new, via, actor, forced}
    ref_log: list[dict[str, Any]] = field(default_factory=list)
    has_discussions: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def role(self, login: str) -> str:
        """A collaborator's role; anyone else can read a public repository and nothing of a private one."""
        return self.collaborators.get(login, "none" if self.private else "read")

    def assignable(self, login: str) -> bool:
        """Who may be assigned an issue here: people with triage access or more."""
        return self.role(login) in ("triage", "write", "maintain", "admin")
