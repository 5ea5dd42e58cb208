"""A repository's configuration as chantbot uses it: `.github/chantbot.yml` read, validated and checked
against the command registry."""

from __future__ import annotations

from gidgethub.abc import GitHubAPI

from bot import repoconfig
from bot.commands import registry
from bot.context import Context
from bot.repoconfig import RepoConfig


async def load(ctx: Context, gh: GitHubAPI, repo: str) -> tuple[RepoConfig, list[str]]:
    """The repository's configuration (defaults where invalid) and what is wrong with its file."""
    text = await ctx.repos.file(gh, repo, repoconfig.CONFIG_PATH)
    config, problems = repoconfig.parse(text)
    return config, problems + registry_problems(config)


def registry_problems(config: RepoConfig) -> list[str]:
    unknown = sorted(name for name in config.commands if registry.spec_for(name) is None)
    return [f"{repoconfig.CONFIG_PATH}: `commands.{name}`: there is no command /{name}" for name in unknown]
