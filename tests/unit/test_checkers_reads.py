"""The read checkers (monotonic reads, bounded staleness, reads converge) on hand-built histories: each
must pass a correct read model's history and fail the broken ones, with counts and examples."""

from __future__ import annotations

from chaos.adapter import ReadResult
from chaos.checkers import check_reads_converge, check_reads_monotonic, check_reads_staleness
from chaos.history import History, Op, Outcome, Read

S = 1_000_000  # one second in microseconds
T0 = 1_700_000_000 * S


def write(i: int, key: str, acked_at_s: float, outcome: Outcome = Outcome.OK) -> Op:
    end = T0 + int(acked_at_s * S)
    return Op(f"e{i}", key, i, 1, end - 1000, end - 900, end, outcome, "before")


def read(key: str, start_s: float, count: int | None, *, end_s: float | None = None, found: bool = True,
         version: int | None = None, phase: str = "before", outcome: Outcome = Outcome.OK) -> Read:
    start = T0 + int(start_s * S)
    end = start + 1000 if end_s is None else T0 + int(end_s * S)
    return Read(key, start, start, end, outcome, phase, None, found, None if count is None else count * 10,
                count, count if version is None else version)


# ---------------------------------------------------------------------------------------------- monotonic


def test_reads_that_only_grow_are_monotonic() -> None:
    h = History(reads=[read("a", 1, 1), read("a", 2, 1), read("a", 3, 4), read("b", 1, 0, found=False),
                       read("b", 2, 2)])
    v = check_reads_monotonic(h)
    assert v.ok, v.format()
    assert v.counts["compared"] == 3 and v.counts["went_backwards"] == 0


def test_a_read_lower_than_an_earlier_completed_read_fails() -> None:
    h = History(reads=[read("a", 1, 5), read("a", 2, 3), read("a", 3, 6)])
    v = check_reads_monotonic(h)
    assert not v.ok
    assert v.counts["went_backwards"] == 1
    ex = v.examples[0]
    assert ex["kind"] == "went_backwards" and ex["count"] == 3 and ex["earlier_count"] == 5


def test_version_going_back_or_a_key_vanishing_fails() -> None:
    assert not check_reads_monotonic(History(reads=[read("a", 1, 5, version=9), read("a", 2, 5, version=8)])).ok
    assert not check_reads_monotonic(History(reads=[read("a", 1, 5), read("a", 2, None, found=False)])).ok


def test_overlapping_reads_are_not_compared_and_failed_reads_are_ignored() -> None:
    # the second read started before the first completed: either order is a correct answer
    h = History(reads=[read("a", 1, 5, end_s=3), read("a", 2, 3),
                       read("a", 4, 0, found=False, outcome=Outcome.UNKNOWN)])
    v = check_reads_monotonic(h)
    assert v.ok, v.format()
    assert v.counts["compared"] == 0


# ---------------------------------------------------------------------------------------------- staleness


def healthy_history(*reads: Read) -> History:
    return History(ops=[write(1, "a", 1.0), write(2, "a", 2.0), write(3, "a", 3.0), write(4, "b", 1.0)],
                   reads=list(reads))


APPLIED = {"e1", "e2", "e3", "e4"}


def test_reads_within_the_bound_are_fresh_enough() -> None:
    # 5 s bound: at 7.5 s, writes acked before 2.5 s (e1, e2) must show; e3 (3.0 s) need not yet
    h = healthy_history(read("a", 7.5, 2), read("a", 9, 3), read("b", 3, 0, found=False))
    v = check_reads_staleness(h, 5.0, APPLIED)
    assert v.ok, v.format()
    assert v.counts["checked"] == 3


def test_a_read_missing_a_write_acknowledged_long_before_fails() -> None:
    h = healthy_history(read("a", 20, 1))  # a cache that stopped at the first write
    v = check_reads_staleness(h, 5.0, APPLIED)
    assert not v.ok
    assert v.counts["stale"] == 1
    ex = v.examples[0]
    assert ex["kind"] == "stale" and ex["reflects"] == 1 and ex["acknowledged_before_bound"] == 3
    assert ex["oldest_missing_acked_s_before"] == 18.0
    assert "missed a write acknowledged more than 5 s earlier" in v.message


def test_a_read_that_does_not_find_a_written_key_is_stale() -> None:
    assert not check_reads_staleness(healthy_history(read("b", 10, None, found=False)), 5.0, APPLIED).ok


def test_a_read_without_a_count_cannot_show_it_is_fresh() -> None:
    v = check_reads_staleness(healthy_history(read("a", 4, None)), 5.0, APPLIED)
    assert not v.ok and v.counts["no_count"] == 1


def test_lost_writes_and_reads_after_the_first_fault_are_not_staleness() -> None:
    h = healthy_history(read("a", 20, 2), read("a", 40, 0, found=False, phase="after"))
    h.add_fault("broker-kill", T0 + 30 * S, T0 + 35 * S)
    v = check_reads_staleness(h, 5.0, APPLIED - {"e3"})  # e3 was lost: that is lost's to report
    assert v.ok, v.format()
    assert v.counts["checked"] == 1


def test_unacknowledged_writes_are_not_required() -> None:
    h = History(ops=[write(1, "a", 1.0, Outcome.UNKNOWN), write(2, "a", 1.0, Outcome.FAIL)],
                reads=[read("a", 20, 0, found=False)])
    assert check_reads_staleness(h, 5.0, {"e1"}).ok


# ---------------------------------------------------------------------------------------------- converge


def expect(count: int, found: bool = True) -> ReadResult:
    return ReadResult(Outcome.OK, found=found, value=count * 10, count=count, version=count)


def test_final_reads_equal_to_the_state_converge() -> None:
    final = [read("a", 1, 2, phase="final"), read("a", 2, 3, phase="final"), read("b", 1, 0, found=False,
                                                                                   phase="final")]
    v = check_reads_converge(final, {"a": expect(3), "b": ReadResult(Outcome.OK, found=False)})
    assert v.ok, v.format()
    assert v.counts == {"keys": 2, "diverged": 0, "unanswered": 0}


def test_a_final_read_that_differs_from_the_state_fails() -> None:
    v = check_reads_converge([read("a", 1, 1, phase="final")], {"a": expect(3)})
    assert not v.ok and v.counts["diverged"] == 1
    assert v.examples[0]["count"] == "read 1, state 3"


def test_a_key_never_answered_after_quiescence_fails() -> None:
    v = check_reads_converge([read("a", 1, 3, phase="final", outcome=Outcome.UNKNOWN)],
                             {"a": expect(3), "b": expect(1)})
    assert not v.ok and v.counts["unanswered"] == 2
