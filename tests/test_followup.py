"""When a reporter's answers are re-triaged: a burst joins one waiting re-triage, and a day holds a few (pure)."""

from bot import followup

DAY = followup.DAY


def test_a_burst_joins_the_waiting_retriage_and_moves_it_to_after_the_last_answer():
    record, waits = followup.answered(None, 100.0, limit=6)
    assert waits and followup.due(record, 60) == 160.0
    for at in (110.0, 120.0, 130.0):
        record, waits = followup.answered(record, at, limit=6)
        assert waits
    assert followup.due(record, 60) == 190.0
    record = followup.ran(record, 190.0)
    assert record["runs"] == [190.0] and followup.due(record, 60) is None


def test_the_days_count_is_spent_then_renewed_a_day_later():
    record: dict = {}
    for at in (0.0, 1000.0):
        record, waits = followup.answered(record, at, limit=2)
        record = followup.ran(record, at + 60)
    record, waits = followup.answered(record, 2000.0, limit=2)
    assert not waits and followup.due(record, 60) is None
    record, waits = followup.answered(record, 1060.0 + DAY, limit=2)
    assert waits  # the first run is more than a day old


def test_a_triage_after_the_answer_has_read_it():
    record, _ = followup.answered(None, 100.0, limit=6)
    assert followup.read_since(record, 101.0) and not followup.read_since(record, 100.0)
    assert followup.ran(record, 101.0, counted=False)["runs"] == []
    assert followup.recent(["x", 5.0, 20.0, 10.0 - DAY], 10.0) == [5.0]  # unreadable, future and old runs dropped
