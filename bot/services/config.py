"""A repository's configuration as chantbot uses it: `.github/chantbot.yml` read, validated and checked
against the command registry, and its prompt overrides; each parsed once per blob SHA."""

from __future__ import annotations

import logging

from gidgethub.abc import GitHubAPI

from bot import prompts, repoconfig
from bot.context import Context
from bot.issueops import MAX_FILE, RepoFile
from bot.repoconfig import RepoConfig

log = logging.getLogger(__name__)


async def load(ctx: Context, gh: GitHubAPI, repo: str) -> tuple[RepoConfig, list[str]]:
    """The repository's configuration (the most restrictive setting where it is wrong) and what is wrong with
    its file.

    An unchanged file (same blob SHA) is never parsed or validated again; its problems are logged once, when
    it is parsed, one line per problem.
    """
    found = await ctx.repos.file(gh, repo, repoconfig.CONFIG_PATH)
    if found is None:
        return RepoConfig(), []
    config, problems = ctx.repos.parsed(f"config:{repo}", found, lambda f: _config(repo, f))
    return config, list(problems)


def _config(repo: str, found: RepoFile) -> tuple[RepoConfig, tuple[str, ...]]:
    if found.text is None:
        config, problems = repoconfig.unreadable(f"{repoconfig.CONFIG_PATH} is larger than {MAX_FILE // 1024} KiB, "
                                                 "so chantbot did not read it")
    else:
        config, problems = repoconfig.parse(found.text)
    for problem in problems:
        log.warning("%s: configuration problem: %s", repo, problem)
    return config, tuple(problems)


async def prompt(ctx: Context, gh: GitHubAPI, repo: str, name: str) -> tuple[prompts.Prompt, str | None]:
    """The prompt `name`: the repository's override when it is usable, else the packaged one and why not.

    An override chantbot cannot use (bad front matter, no instructions, too large) is a configuration
    problem to show the maintainers, never a failed job.
    """
    found = await ctx.repos.file(gh, repo, prompts.override_path(name))
    if found is None:
        return prompts.packaged(name), None
    return ctx.repos.parsed(f"prompt:{name}", found, lambda f: _prompt(f, name))


def _prompt(found: RepoFile, name: str) -> tuple[prompts.Prompt, str | None]:
    if found.text is None:
        problem = f"it is larger than {MAX_FILE // 1024} KiB"
    else:
        try:
            override = prompts.parse(found.text, name=name)
        except ValueError as exc:
            problem = str(exc)[:200]
        else:
            if override.body.strip():
                return override, None
            problem = "it has no instructions after its front matter"
    return prompts.packaged(name), (f"{prompts.override_path(name)} cannot be used ({problem}), so chantbot "
                                    f"used its own {name} prompt")
