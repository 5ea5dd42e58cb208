"""The guide's worked example made from a demo run: what changes between runs is replaced the same way every
time, and only the marked sections of a page are rewritten."""

from __future__ import annotations

import re

import pytest

from bot import example
from bot.example import Section

SHA = "47e7d640701ad81955e55432d95245da0d67677a"
OTHER = "044430b3cbc73a0e9c26081ccca6be1e6086df7a"


def test_spec_ids_keep_their_sequence_on_the_examples_day_and_the_same_id_reads_the_same():
    out = example.normalise({"a": Section("`.chant/specs/2026-12-01-008-6d2.md` and 2026-12-01-008-6d2, "
                                          "then 2026-11-30-00a-zz9")}, [])
    first, second, third = re.findall(r"\d{4}-\d\d-\d\d-\w{3}-\w{3}", out["a"].text)
    assert first == second and first.startswith(f"{example.DAY}-008-") and first != "2026-12-01-008-6d2"
    assert third.startswith(f"{example.DAY}-00a-")
    again = example.normalise({"b": Section("2026-01-05-008-q1w", caption="`.chant/specs/2026-01-05-008-q1w.md`:")}, [])
    assert again["b"].text == first  # another run, another day and suffix: the same stand-in
    assert again["b"].caption == f"`.chant/specs/{first}.md`:"


def test_a_commit_and_its_prefixes_become_one_stand_in_numbered_by_first_appearance():
    sections = {"one": Section(f"approved on {OTHER[:7]}"),
                "two": Section(f"commits:\n- {SHA}\n- {OTHER}\nCI failed on {SHA[:7]}; `{SHA[:12]}`")}
    out = example.normalise(sections, [SHA, OTHER])
    short_other = out["one"].text.split()[-1]
    lines = out["two"].text.splitlines()
    assert OTHER not in out["two"].text and SHA not in out["two"].text and SHA[:7] not in out["two"].text
    new_sha, new_other = lines[1][2:], lines[2][2:]
    assert len(new_sha) == len(new_other) == 40 and new_other.startswith(short_other) and new_sha != new_other
    assert lines[3] == f"CI failed on {new_sha[:7]}; `{new_sha[:12]}`"
    assert out == example.normalise(sections, [OTHER, SHA])  # order of the list does not matter


def test_hex_that_is_no_known_commit_and_short_ids_stay_as_they_are():
    text = "marker reply-1078-69ef3914, word defaced, cafe123"
    assert example.normalise({"a": Section(text)}, [SHA])["a"].text == text


def test_times_become_the_examples_moment():
    text = "completed_at: '2026-12-01T23:55:08Z'\n**maria** - 2026-12-01 23:55 - APPROVED"
    out = example.normalise({"a": Section(text)}, [])["a"].text
    assert out == f"completed_at: '{example.MOMENT}'\n**maria** - {example.DAY} 09:30 - APPROVED"


def test_fill_rewrites_only_between_the_markers_with_a_fence_longer_than_any_inside():
    page = ("# Page\n\nbefore\n\n<!-- demo:spec -->\n```text\nold\n```\n<!-- /demo:spec -->\n\nafter "
            "<!-- demo:other --> is prose\n")
    text = "---\ntype: task\n---\n\n```\nagent output\n```\n"
    filled = example.fill(page, {"spec": Section(text, "markdown")})
    assert filled == ("# Page\n\nbefore\n\n<!-- demo:spec -->\n````markdown\n" + text.rstrip()
                      + "\n````\n<!-- /demo:spec -->\n\nafter <!-- demo:other --> is prose\n")
    assert example.fill(filled, {"spec": Section(text, "markdown")}) == filled
    assert example.marked(filled) == ["spec"]


def test_a_section_the_run_did_not_make_is_an_error():
    with pytest.raises(KeyError, match="gone"):
        example.fill("<!-- demo:gone -->\n```\n```\n<!-- /demo:gone -->\n", {"spec": Section("x")})


async def test_the_demo_refuses_an_example_it_could_not_reproduce_or_a_page_without_sections(tmp_path, capsys):
    from bot import demo

    page = tmp_path / "notes.md"
    page.write_text("# Notes\n\nno generated sections here\n", encoding="utf-8")
    assert await demo.run(quiet=True, example_out=str(tmp_path / "new.md"), api_key="sk-real") == 2
    assert "unset ANTHROPIC_API_KEY" in capsys.readouterr().err
    assert await demo.run(quiet=True, example_out=str(page)) == 2
    assert "has no sections marked" in capsys.readouterr().err
    assert await demo.run(quiet=True, example_out=str(tmp_path / "missing" / "new.md")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert page.read_text(encoding="utf-8") == "# Notes\n\nno generated sections here\n"
