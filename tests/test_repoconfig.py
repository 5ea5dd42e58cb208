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
    assert config.stages["document"] is False and config.stages["research"] is True
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
    assert "`stages.research`" in text and "'maybe' is not of type 'boolean'" in text
    assert "`commands.approve`" in text and "boss" in text
    assert "colour" in text
