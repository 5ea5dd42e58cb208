"""Label decisions: vocabulary only, one label per family, a person's labels are never removed."""

from bot.assessment import Assessment
from bot.labels import desired, plan
from bot.repoconfig import RepoConfig, parse

CONFIG = RepoConfig()


def assessment(**kw) -> Assessment:
    base = dict(category="bug", recommendation="needs-reproduction", summary="s", priority="high",
                severity="degraded")
    return Assessment(**{**base, **kw})


def test_desired_maps_assessment_to_vocabulary():
    want = desired(assessment(category="feature", recommendation="needs-info", priority=None), CONFIG)
    assert want == {"category": "enhancement", "stage": "needs-info", "severity": "severity: degraded"}


def test_first_triage_adds_everything():
    p = plan(["help wanted"], [], desired(assessment(), CONFIG), CONFIG)
    assert sorted(p.add) == ["bug", "needs-reproduction", "priority: high", "severity: degraded"]
    assert p.remove == () and "help wanted" not in p.owned


def test_retriage_replaces_chantbots_own_labels():
    current = ["bug", "priority: high", "needs-reproduction", "severity: degraded"]
    p = plan(current, current, desired(assessment(category="question", priority="low",
                                                  recommendation="needs-info"), CONFIG), CONFIG)
    assert sorted(p.add) == ["needs-info", "priority: low", "question"]
    assert sorted(p.remove) == ["bug", "needs-reproduction", "priority: high"]


def test_a_persons_label_keeps_triage_out_of_that_family():
    p = plan(["priority: critical"], [], desired(assessment(), CONFIG), CONFIG)
    assert "priority: high" not in p.add and "priority: critical" not in p.remove


def test_a_maintainers_command_replaces_the_family():
    p = plan(["priority: critical", "help wanted"], [], {"priority": "priority: low"}, CONFIG, override_people=True)
    assert p.add == ("priority: low",) and p.remove == ("priority: critical",)


def test_labels_outside_the_vocabulary_are_never_planned():
    p = plan([], [], {"category": "security-approved", "stage": "needs-info"}, CONFIG)
    assert p.add == ("needs-info",)


def test_needs_triage_set_by_chantbot_goes_once_triaged_but_a_persons_stays():
    assert "needs-triage" in plan(["needs-triage"], ["needs-triage"], desired(assessment(), CONFIG), CONFIG).remove
    assert "needs-triage" not in plan(["needs-triage"], [], desired(assessment(), CONFIG), CONFIG).remove


def test_renamed_labels_from_config():
    config, _ = parse("labels:\n  category: {bug: 'type: bug'}\n")
    assert desired(assessment(), config)["category"] == "type: bug"
