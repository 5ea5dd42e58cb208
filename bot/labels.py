"""Label decisions (pure): which labels triage and commands add or remove, and how labels look."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from bot import workflow
from bot.assessment import Assessment
from bot.repoconfig import RepoConfig

# Colour and description for every label chantbot may create, by (family, key).
LOOKS: dict[tuple[str, str], tuple[str, str]] = {
    ("category", "bug"): ("d73a4a", "Something isn't working"),
    ("category", "feature"): ("a2eeef", "New feature or request"),
    ("category", "documentation"): ("0075ca", "Improvements or additions to documentation"),
    ("category", "question"): ("d876e3", "Further information is requested"),
    ("category", "duplicate"): ("cfd3d7", "This issue or pull request already exists"),
    ("priority", "critical"): ("b60205", "Needs attention now"),
    ("priority", "high"): ("d93f0b", "Important; schedule soon"),
    ("priority", "medium"): ("fbca04", "Normal priority"),
    ("priority", "low"): ("0e8a16", "Nice to have"),
    ("severity", "blocking"): ("b60205", "Blocks users; no workaround"),
    ("severity", "degraded"): ("e99695", "Works, but worse than it should"),
    ("severity", "cosmetic"): ("c5def5", "Looks wrong; works fine"),
    ("stage", "needs-triage"): ("ededed", "chantbot has not triaged this yet"),
    ("stage", "needs-info"): ("fef2c0", "Waiting for the reporter to answer questions"),
    ("stage", "needs-reproduction"): ("f9d0c4", "Next: a failing test that reproduces it"),
    ("stage", "ready-for-research"): ("c2e0c6", "Next: root cause and approaches"),
    ("stage", "deferred"): ("e4e669", "Not now; kept for later"),
    ("stage", "researched"): ("bfdadc", "Root cause and approaches are written up"),
    ("stage", "ready-for-implementation"): ("0e8a16", "Next: the fix, following the research"),
    ("stage", "in-review"): ("5319e7", "Waiting for an independent review"),
    ("stage", "approved"): ("0e8a16", "The review approved the change"),
    ("flags", "security"): ("ee0701", "A vulnerability reported in public: handle it privately"),
}

RECOMMENDATION_STAGE = {"close": "deferred", "defer": "deferred", "needs-info": "needs-info",
                        "needs-reproduction": "needs-reproduction", "ready-for-research": "ready-for-research"}


@dataclass(frozen=True)
class LabelPlan:
    """Labels to add and remove, and the labels chantbot owns afterwards."""

    add: tuple[str, ...]
    remove: tuple[str, ...]
    owned: frozenset[str]


def look(config: RepoConfig, name: str) -> tuple[str, str]:
    """(colour, description) for a vocabulary label."""
    for (family, key), value in LOOKS.items():
        if config.labels.get(family, {}).get(key) == name:
            return value
    return "ededed", "chantbot workflow label"


def gate_label(config: RepoConfig, name: str) -> str | None:
    """The gate (its stage-family key) that the label `name` records, when `name` is one only chantbot sets."""
    return next((key for key in workflow.GATE_LABELS if config.labels["stage"].get(key) == name), None)


def desired(assessment: Assessment, config: RepoConfig) -> dict[str, str]:
    """family -> label that triage wants on the issue."""
    stage, _ = workflow.after_triage(assessment.category, RECOMMENDATION_STAGE[assessment.recommendation],
                                     lambda name: config.stage(name).enabled)
    want = {"category": config.label("category", assessment.category), "stage": config.label("stage", stage)}
    if assessment.security:
        want["flags"] = config.label("flags", "security")
    if assessment.priority:
        want["priority"] = config.label("priority", assessment.priority)
    if assessment.severity:
        want["severity"] = config.label("severity", assessment.severity)
    return want


def plan(current: Iterable[str], owned: Iterable[str], want: Mapping[str, str], config: RepoConfig, *,
         override_people: bool = False, release: Iterable[str] = ()) -> LabelPlan:
    """Move the issue to `want` (one label per family) without touching a person's labels.

    `owned` are the labels chantbot set earlier. In a family where a person has set a label,
    triage leaves the family alone. A maintainer's command that names a family (`override_people`,
    e.g. `/priority high`) replaces whatever label the family has; other people's labels are removed
    only when named in `release`.
    """
    current_set, owned_set = set(current), set(owned) & set(current)
    vocabulary = config.vocabulary()
    releasable = set(release)
    add: list[str] = []
    remove: list[str] = []
    for family, label in want.items():
        if label not in vocabulary:
            continue  # never apply a label outside the vocabulary
        names = set(config.labels[family].values()) - {config.label("stage", "needs-triage")}
        in_family = (current_set & names) - {label}
        people = set() if override_people else in_family - owned_set - releasable
        if people:
            continue
        remove.extend(sorted(in_family - people))
        if label not in current_set:
            add.append(label)
    needs_triage = config.label("stage", "needs-triage")
    if "stage" in want and needs_triage in owned_set:
        remove.append(needs_triage)
    now = (current_set | set(add)) - set(remove)
    return LabelPlan(tuple(add), tuple(dict.fromkeys(remove)), frozenset(((owned_set | set(add)) - set(remove)) & now))
