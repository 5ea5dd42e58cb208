"""`.github/chantbot.yml`: defaults, overrides, exact messages for what is wrong, and the most restrictive
setting for each wrong part (valid parts kept)."""

import logging

from bot.commands import registry
from bot.repoconfig import CONFIG_PATH, RepoConfig, parse, restrictive
from tests.conftest import REPO


def test_no_file_means_defaults():
    config, problems = parse(None)
    assert problems == [] and config == RepoConfig()
    assert config.label("category", "feature") == "enhancement"
    assert config.specs_branch == "chant-specs"


def test_overrides_apply():
    config, problems = parse("labels:\n  priority: {high: P1}\nstages: {document: false}\n"
                             "commands: {approve: admin}\nspecs_branch: false\nmodel: claude-haiku-5-5\n")
    assert problems == []
    assert config.label("priority", "high") == "P1" and config.label("priority", "low") == "priority: low"
    assert config.stage("document").enabled is False and config.stage("research").enabled is True
    assert config.commands == {"approve": "admin"}
    assert config.specs_branch is None and config.model == "claude-haiku-5-5"
    assert "P1" in config.vocabulary() and config.family_of("P1") == "priority"


def test_invalid_yaml_reports_line_and_makes_every_part_restrictive():
    config, problems = parse("labels: [unclosed\n")
    assert config == restrictive()
    assert len(problems) == 2 and "not valid YAML" in problems[0] and "line" in problems[0]
    assert "most restrictive setting" in problems[1] and "`gate: always`" in problems[1]


def test_schema_errors_say_where_and_what():
    config, problems = parse("stages: {research: maybe}\ncommands: {approve: boss}\ncolour: red\n")
    assert config.stage("research").enabled and not config.stage("research").auto
    text = "\n".join(problems)
    assert "`stages.research`" in text and "'maybe' is not of type 'boolean' or 'object'" in text
    assert "`commands.approve`" in text and "boss" in text
    assert "colour" in text


def test_stage_settings_override_the_workflow_defaults():
    config, problems = parse("stages:\n  research: {auto: false, max_turns: 5, max_usd: 0.5}\n"
                             "  implement: {ci_rounds: 1, timeout: 10}\n  reproduce: {paths: ['qa/**']}\n"
                             "budget: {daily_usd: 3}\n")
    assert problems == []
    research = config.stage("research")
    assert (research.enabled, research.auto, research.caps.max_turns, research.caps.max_usd) == (True, False, 5, 0.5)
    implement = config.stage("implement")
    assert implement.caps.ci_rounds == 1 and implement.caps.timeout == 600 and implement.caps.max_usd == 5.0
    assert config.stage("reproduce").writes == ("qa/**",)
    assert config.stage("review").auto is True and config.daily_usd == 3


def test_a_stage_setting_that_is_wrong_is_named():
    config, problems = parse("stages: {research: {max_turnz: 5}, implement: {max_turns: 0}}\n")
    assert config.stage("implement").caps.max_turns == 40 and config.stage("research").caps.max_turns == 40
    assert "`stages.implement`: `max_turns`: 0 is less than the minimum of 1" in problems[0]
    assert "`stages.research`" in problems[1] and "'max_turnz' was unexpected" in problems[1]


def billion_laughs(levels: int) -> str:
    """A few hundred bytes of YAML aliases that expand to 9**levels strings."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nlabels: *l{levels}\n"


def assert_refused(text: str, words: str) -> None:
    """The file is refused with one short problem (how fast: bench/hostile_config.py)."""
    config, problems = parse(text)
    assert config == restrictive()
    assert len(problems) == 2 and words in problems[0] and len(problems[0]) <= 300


def test_alias_expansion_beyond_the_budget_is_refused_with_one_short_problem():
    assert len(billion_laughs(9)) < 1000
    assert_refused(billion_laughs(9), "aliases expand to more than")


def test_aliases_within_the_budget_still_work():
    config, problems = parse("labels:\n  priority: {high: &urgent P1}\n  severity: {blocking: *urgent}\n")
    assert problems == [] and config.label("priority", "high") == config.label("severity", "blocking") == "P1"
    config, problems = parse("x: &p {high: P1}\n")
    assert problems and "x" in problems[0]  # an alias is fine; an unknown key is still a problem


def test_recursive_aliases_deep_nesting_and_long_alias_chains_are_refused():
    assert_refused("labels: &a [*a]\n", "refers to the value that contains it")
    assert_refused("labels: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than")
    chain = "a0: &a0 1\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 1000))
    assert len(chain.encode()) < 64 * 1024
    assert_refused(chain, "nest deeper than")


def test_a_file_over_the_size_limit_is_not_read():
    assert_refused("# padding\n" * 7000, "larger than 64 KiB")


def test_problems_are_few_and_short_however_wrong_the_file_is():
    text = "\n".join(f"unknown_{i}: {'x' * 2000}" for i in range(25)) + "\nlabels: {priority: {high: '" + "y" * 3000 + "'}}\n"
    config, problems = parse(text)
    assert config.label("priority", "high") == "priority: high"  # the wrong name is not used
    assert 1 < len(problems) <= 12 and all(len(p) <= 300 for p in problems[:-1])


def test_needs_info_and_additional_labels():
    config, problems = parse("needs_info: {remind_after: 3, close_after: false}\n"
                             "labels: {additional: [good first issue, help wanted]}\n")
    assert problems == []
    assert (config.remind_after, config.close_after) == (3, None)
    assert config.additional("Good First Issue") == "good first issue" and config.additional("wontfix") is None
    assert config.family_of("good first issue") is None  # not chantbot's vocabulary: nothing applies it but /label
    defaults = RepoConfig()
    assert (defaults.remind_after, defaults.close_after, defaults.additional_labels) == (7, 14, ())
    assert defaults.label("flags", "security") == "security" and "security" in defaults.vocabulary()
    _, problems = parse("needs_info: {close_after: 0, remind_after: never}\n")
    text = "\n".join(problems)
    assert "`needs_info.close_after`: 0 is less than the minimum of 1" in text and "`needs_info.remind_after`" in text


# A repository that turned automatic reproduction off, raised `/approve` to admin and lowered the budget.
STRICT = ("stages:\n  reproduce: {auto: false}\n  research: {max_turns: 10}\ncommands: {approve: admin}\n"
          "budget: {daily_usd: 5}\ngate: never\n")


def test_one_wrong_value_keeps_the_other_sections_and_makes_its_own_restrictive():
    config, problems = parse(STRICT.replace("{max_turns: 10}", "{max_turns: 10, max_usd: -1}"))
    assert "`stages.research`: `max_usd`: -1 is less than or equal to the minimum of 0" in problems[0]
    assert "`stages`: no stage starts on its own" in problems[-1]
    assert not any(config.stage(name).auto for name in ("reproduce", "research", "review", "document"))
    assert config.stage("research").caps.max_usd == 2.0  # the wrong entry: the stage's defaults, without auto
    assert registry.levels(config.commands)["approve"] == "admin"  # valid sections are kept
    assert config.daily_usd == 5 and config.gate == "never"


def test_each_wrong_section_takes_its_most_restrictive_setting():
    config, problems = parse("commands: {approve: admin, reproduce: triage, close: boss}\ngate: sometimes\n"
                             "budget: {daily_usd: 5, auto_per_author: -2}\nsandbox: {timeout: 99999, runs: 0}\n")
    levels = registry.levels(config.commands)
    assert (levels["approve"], levels["reproduce"], levels["close"]) == ("admin", "write", "triage")
    assert not registry.author_may(registry.spec_for("close"), config.commands)  # no author's exception
    assert config.gate == "always"
    assert (config.daily_usd, config.auto_per_author) == (5, 0)
    assert (config.sandbox_timeout, config.sandbox_runs) == (300, 1)  # the smaller of the default and the value
    assert [p.split("`")[1] for p in problems[:-1]] == ["budget.auto_per_author", "commands.close", "gate",
                                                        "sandbox.runs", "sandbox.timeout"]
    _, problems = parse("commands: {aprove: admin}\n")  # a command's name mistyped: every command at its default
    assert problems[0].endswith("`commands.aprove`: there is no command /aprove")


def test_a_file_that_is_not_yaml_at_all_makes_every_part_restrictive():
    for text in ("This is not a configuration file.\n", "- a list\n", "{{{\n"):
        config, problems = parse(text)
        assert config == restrictive() and problems
    config = restrictive()
    assert not any(config.stage(name).auto for name in ("reproduce", "research", "review", "document"))
    assert config.gate == "always" and config.daily_usd == 0 and config.auto_per_author == 0
    assert config.close_after is None and config.additional_labels == () and config.specs_branch == "chant-specs"
    assert all(registry.levels(config.commands)[spec.name] == spec.min_role for spec in registry.COMMANDS)
    assert not any(registry.author_may(spec, config.commands) for spec in registry.COMMANDS)


def test_the_gate_the_sandbox_and_the_authors_budget():
    defaults = RepoConfig()
    assert (defaults.gate, defaults.sandbox_setup, defaults.sandbox_test) == ("outsiders", None, None)
    assert (defaults.sandbox_timeout, defaults.sandbox_runs, defaults.auto_per_author) == (300.0, 20, 3)
    config, problems = parse("gate: always\nsandbox: {setup: pip install -e ., test: pytest -q, timeout: 60, "
                             "runs: 5}\nbudget: {auto_per_author: 0}\n")
    assert problems == []
    assert (config.gate, config.sandbox_setup, config.sandbox_test) == ("always", "pip install -e .", "pytest -q")
    assert (config.sandbox_timeout, config.sandbox_runs, config.auto_per_author) == (60.0, 5, 0)
    config, problems = parse(f"sandbox: {{setup: {'x' * 2001}}}\n")
    assert config.sandbox_setup is None and "`sandbox.setup`" in problems[0]


async def test_a_wrong_value_keeps_approve_at_admin_logs_each_problem_and_tells_the_maintainers(start_bot, caplog):
    caplog.set_level(logging.WARNING, logger="bot.services.config")
    bot = await start_bot()
    bot.sim.set_file(REPO, CONFIG_PATH, STRICT.replace("{max_turns: 10}", "{max_turns: 10, max_usd: -1}"))
    n = await bot.open_issue("Crash on start", "It crashes.")
    await bot.triaged(n)
    await bot.comment(n, "/approve", user="maint")
    await bot.idle()
    [reply] = [c["body"] for c in bot.bot_comments(n) if "chantbot:reply" in c["body"]]
    assert "Not run: only people with admin access may run `/approve`" in reply
    assert "For maintainers: a configuration problem" in reply and "`stages.research`" in reply
    logged = [r.getMessage() for r in caplog.records if r.name == "bot.services.config"]
    assert logged and all(line.startswith(f"{REPO}: configuration problem: ") for line in logged)
    assert any("max_usd" in line for line in logged) and any("no stage starts on its own" in line for line in logged)
def test_the_reporters_answers_wait_a_quiet_period_and_a_daily_count():
    config, problems = parse("needs_info: {debounce: 0, max_retriage: 2}\n")
    assert problems == [] and (config.retriage_debounce, config.max_retriage) == (0.0, 2)
    assert (RepoConfig().retriage_debounce, RepoConfig().max_retriage) == (60.0, 6)
    _, problems = parse("needs_info: {debounce: 3601, max_retriage: 0}\n")
    text = "\n".join(problems)
    assert "`needs_info.debounce`" in text and "`needs_info.max_retriage`" in text
