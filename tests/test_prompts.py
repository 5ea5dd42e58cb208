"""Packaged chant prompts and variable rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import prompts
from bot.specs import STAGES


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_has_a_packaged_prompt_with_name_and_purpose(name):
    prompt = prompts.packaged(name)
    assert prompt.name == name
    assert prompt.purpose
    assert not prompt.body.startswith("---")


@pytest.mark.parametrize("name", [stage for stage in STAGES if stage != "triage"])
def test_agent_prompts_use_spec_variables(name):
    body = prompts.packaged(name).body
    for variable in ("{{spec.title}}", "{{spec.description}}", "{{spec.path}}", "{{spec.id}}"):
        assert variable in body


def test_triage_prompt_is_long_enough_to_cache_and_covers_the_rules():
    body = prompts.packaged("triage").body
    assert len(body) >= 5000
    assert "{{" not in body  # a cached system block must not change per issue
    for term in ("record_triage", "untrusted", "needs-info", "ready-for-research", "at most five",
                 "duplicate_of", "critical", "cosmetic"):
        assert term in body


def test_parse_reads_optional_front_matter():
    prompt = prompts.parse("---\nname: custom\npurpose: Do it\n---\n# Hi {{spec.title}}\n", name="triage")
    assert prompt == prompts.Prompt(name="custom", purpose="Do it", body="# Hi {{spec.title}}\n")
    plain = prompts.parse("# No front matter\n", name="review")
    assert plain == prompts.Prompt(name="review", purpose="", body="# No front matter\n")


def test_parse_refuses_broken_front_matter():
    with pytest.raises(ValueError, match="research"):
        prompts.parse("---\nname: [oops\n---\nbody\n", name="research")


def test_render_replaces_known_variables_and_leaves_unknown_ones():
    prompt = prompts.Prompt(name="x", purpose="", body="{{spec.title}} in {{spec.path}} for {{project.name}}; "
                                                        "{{spec.model}} stays")
    out = prompts.render(prompt, {"spec.title": "Fix it", "spec.path": ".chant/specs/a.md",
                                  "project.name": "widgets"})
    assert out == "Fix it in .chant/specs/a.md for widgets; {{spec.model}} stays"


def test_render_does_not_expand_variables_inside_values():
    prompt = prompts.Prompt(name="x", purpose="", body="{{spec.description}} / {{spec.id}}")
    out = prompts.render(prompt, {"spec.description": "title {{spec.id}}", "spec.id": "2026-11-24-001-abc"})
    assert out == "title {{spec.id}} / 2026-11-24-001-abc"


def test_override_path_and_name_checks():
    assert prompts.override_path("triage") == ".chant/prompts/triage.md"
    for bad in ("../secrets", "Triage", ""):
        with pytest.raises(ValueError):
            prompts.override_path(bad)
    with pytest.raises(ValueError):
        prompts.packaged("no-such-prompt")


def test_a_checkout_reads_its_top_level_prompts_folder():
    assert prompts.prompts_dir() == Path(__file__).resolve().parent.parent / "prompts"
