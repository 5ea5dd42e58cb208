"""Labels on an issue as chantbot changes them: decided on the issue's current labels, people's labels kept."""

from __future__ import annotations

from typing import Any, Iterable

from gidgethub.abc import GitHubAPI

from bot import issueops, labels
from bot.context import Context
from bot.repoconfig import RepoConfig


async def current(gh: GitHubAPI, repo: str, number: int) -> list[str]:
    return [label["name"] async for label in gh.getiter(f"/repos/{repo}/issues/{number}/labels")]


async def relabel(ctx: Context, gh: GitHubAPI, repo: str, number: int, config: RepoConfig, want: dict[str, str], *,
                  by_person: bool, release: Iterable[str] = ()) -> list[str]:
    """Move the issue to `want` (family → label); returns its labels afterwards.

    `by_person`: a maintainer's command, whose labels become the maintainer's (re-triage leaves them
    alone); otherwise chantbot's own decision, which never replaces a person's label.
    """
    state = await ctx.store.issue_state(repo, number)
    now = await current(gh, repo, number)
    owned = state.get("owned_labels", [])
    plan = labels.plan(now, owned, want, config, override_people=by_person, release=tuple(release))
    await ctx.repos.ensure_labels(gh, repo, list(plan.add), config)
    await issueops.apply_labels(gh, repo, number, plan)
    if by_person:  # every label the person named is theirs now, even one chantbot had set before
        state["owned_labels"] = sorted(set(owned) - set(plan.remove) - set(plan.add) - set(want.values()))
    else:
        state["owned_labels"] = sorted(plan.owned)
    await ctx.store.save_issue_state(repo, number, state)
    return sorted((set(now) | set(plan.add)) - set(plan.remove))


def names(issue: dict[str, Any]) -> set[str]:
    return {label.get("name", "") for label in issue.get("labels") or [] if isinstance(label, dict)}
