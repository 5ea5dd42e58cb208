"""The CI gate: whether a run's commits wait for a maintainer's `/ok-to-test`, and the batches held until then.

Code an agent wrote is untrusted until a person has read it: pushed to the repository, it would run in its CI
with its secrets. With `gate: outsiders` (the default) commits are held when anyone whose words reached the
agent (the issue's author, the answers a re-triage took in, a rejection's reason) lacks write access; with
`always` every run's commits are held; with `never` none. Held commits exist only in chantbot's store: no
branch, no pull request, no CI.
"""

from __future__ import annotations

from typing import Any, Mapping

from gidgethub.abc import GitHubAPI

from bot.commands import permissions
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.services.roles import role_of
from bot.stages import heldiff

WRITERS = "write"  # the role whose words may reach CI without a maintainer's reading


async def must_hold(ctx: Context, gh: GitHubAPI, repo: str, config: RepoConfig, shapers: list[str]) -> bool:
    """Whether a run shaped by `shapers` has its commits held (a broken `gate` setting holds: fail closed)."""
    gate = getattr(config, "gate", "outsiders")
    if gate == "never":
        return False
    if gate != "outsiders" or not shapers:
        return True
    for person in shapers:
        if not permissions.allowed(WRITERS, await role_of(ctx, gh, repo, person)):
            return True
    return False


async def hold(ctx: Context, repo: str, number: int, run_id: int, stage: str, base: Mapping[str, str],
               changes: Mapping[str, str], verdict: dict[str, Any] | None) -> dict[str, Any]:
    """Record a batch of held commits (idempotent per run): its files, its verdict and the diff a maintainer
    reads. Files an earlier held batch already holds with the same text are not repeated."""
    state = await ctx.store.issue_state(repo, number)
    batches: list[dict[str, Any]] = state.setdefault("held", [])
    mine = next((b for b in batches if b["run_id"] == run_id), None)
    if mine is not None:
        return mine
    earlier = {p: t for b in batches for p, t in b["files"].items()}
    files = {p: t for p, t in changes.items() if earlier.get(p) != t}
    shown = {**base, **earlier}
    batch = {"batch": int(state.get("held_batches", 0)) + 1, "run_id": run_id, "stage": stage, "files": files,
             "verdict": verdict, "diff": heldiff.render(shown, files)}
    state["held_batches"] = batch["batch"]
    batches.append(batch)
    await ctx.store.save_issue_state(repo, number, state)
    return batch


async def held_files(ctx: Context, repo: str, number: int) -> dict[str, str]:
    """Every file the issue's held batches hold (later stages read them as part of the branch)."""
    state = await ctx.store.issue_state(repo, number)
    return {p: t for b in state.get("held") or [] for p, t in b["files"].items()}


async def batches(ctx: Context, repo: str, number: int) -> list[dict[str, Any]]:
    return list((await ctx.store.issue_state(repo, number)).get("held") or [])


async def released(ctx: Context, repo: str, number: int, batch: int, actor: str) -> None:
    """A batch is on the branch now: it leaves the held list (the record of who released it stays)."""
    state = await ctx.store.issue_state(repo, number)
    state["held"] = [b for b in state.get("held") or [] if b["batch"] != batch]
    state.setdefault("released", []).append({"batch": batch, "by": actor})
    await ctx.store.save_issue_state(repo, number, state)


async def implementation_held(ctx: Context, repo: str, number: int) -> bool:
    """Whether an implementation waits for `/ok-to-test` (its `/approve` is refused until then)."""
    return any(b["stage"] == "implement" for b in await batches(ctx, repo, number))
