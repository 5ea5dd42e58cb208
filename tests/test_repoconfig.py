"""`.github/chantbot.yml`: defaults, overrides, and exact messages for what is wrong."""

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
