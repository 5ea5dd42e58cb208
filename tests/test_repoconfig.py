"""`.github/chantbot.yml`: defaults, overrides, and exact messages for what is wrong."""

import time

from bot.repoconfig import RepoConfig, parse


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


def test_invalid_yaml_reports_line_and_falls_back():
    config, problems = parse("labels: [unclosed\n")
    assert config == RepoConfig()
    assert len(problems) == 1 and "not valid YAML" in problems[0] and "line" in problems[0]


def test_schema_errors_say_where_and_what():
    config, problems = parse("stages: {research: maybe}\ncommands: {approve: boss}\ncolour: red\n")
    assert config == RepoConfig()
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
    assert config == RepoConfig()
    assert "`stages.implement`: `max_turns`: 0 is less than the minimum of 1" in problems[0]
    assert "`stages.research`" in problems[1] and "'max_turnz' was unexpected" in problems[1]


def billion_laughs(levels: int) -> str:
    """A few hundred bytes of YAML aliases that expand to 9**levels strings."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nlabels: *l{levels}\n"


def assert_refused_briefly(text: str, words: str) -> None:
    started = time.perf_counter()
    config, problems = parse(text)
    assert time.perf_counter() - started < 1.0
    assert config == RepoConfig()
    assert len(problems) == 1 and words in problems[0] and len(problems[0]) <= 300


def test_alias_expansion_beyond_the_budget_is_refused_with_one_short_problem():
    assert len(billion_laughs(9)) < 1000
    assert_refused_briefly(billion_laughs(9), "aliases expand to more than")


def test_aliases_within_the_budget_still_work():
    config, problems = parse("labels:\n  priority: {high: &urgent P1}\n  severity: {blocking: *urgent}\n")
    assert problems == [] and config.label("priority", "high") == config.label("severity", "blocking") == "P1"
    config, problems = parse("x: &p {high: P1}\n")
    assert problems and "x" in problems[0]  # an alias is fine; an unknown key is still a problem


def test_recursive_aliases_deep_nesting_and_long_alias_chains_are_refused():
    assert_refused_briefly("labels: &a [*a]\n", "refers to the value that contains it")
    assert_refused_briefly("labels: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than")
    chain = "a0: &a0 1\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 1000))
    assert len(chain.encode()) < 64 * 1024
    assert_refused_briefly(chain, "nest deeper than")


def test_a_file_over_the_size_limit_is_not_read():
    assert_refused_briefly("# padding\n" * 7000, "larger than 64 KiB")


def test_problems_are_few_and_short_however_wrong_the_file_is():
    text = "\n".join(f"unknown_{i}: {'x' * 2000}" for i in range(25)) + "\nlabels: {priority: {high: '" + "y" * 3000 + "'}}\n"
    config, problems = parse(text)
    assert config == RepoConfig()
    assert 1 < len(problems) <= 11 and all(len(p) <= 300 for p in problems)


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


def test_the_reporters_answers_wait_a_quiet_period_and_a_daily_count():
    config, problems = parse("needs_info: {debounce: 0, max_retriage: 2}\n")
    assert problems == [] and (config.retriage_debounce, config.max_retriage) == (0.0, 2)
    assert (RepoConfig().retriage_debounce, RepoConfig().max_retriage) == (60.0, 6)
    _, problems = parse("needs_info: {debounce: 3601, max_retriage: 0}\n")
    text = "\n".join(problems)
    assert "`needs_info.debounce`" in text and "`needs_info.max_retriage`" in text
