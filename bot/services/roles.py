"""People's roles on a repository, from GitHub's collaborator-permission endpoint (cached a few minutes)."""

from __future__ import annotations

from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI

from bot.commands import permissions
from bot.context import Context


async def role_of(ctx: Context, gh: GitHubAPI, repo: str, login: str) -> str:
    """The user's role on the repository ("none" when GitHub knows no access)."""
    cached = ctx.repos.role(repo, login)
    if cached is not None:
        return cached
    try:
        data = await gh.getitem(f"/repos/{repo}/collaborators/{login}/permission")
        role = permissions.normalize(data.get("role_name"), data.get("permission"))
    except BadRequest as exc:
        if int(exc.status_code) not in (403, 404):
            raise
        role = "none"
    ctx.repos.remember_role(repo, login, role)
    return role
