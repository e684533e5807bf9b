"""Pure checkers: compare a :class:`~chaos.history.History` with ground truth.

Ground truth is read (elsewhere) from the system under test after the run:

* :class:`AppliedRow` -- one row per *application* of an event's side effect,
  from the projector's append-only effects table.  ``position`` is the table's
  serial id: a global, strictly increasing application order.  An event that
  was applied twice appears twice.
* :class:`KafkaRecord` -- every record in the topic.
* :class:`KeyState` -- the projector's aggregate per key.

Every checker is a pure function returning a :class:`Verdict` whose ``counts``
are populated whether it passes or not, with at most :data:`MAX_EXAMPLES`
concrete examples of what went wrong.  The semantics of the outcomes:

* ``ok``: acknowledged, must be applied exactly once;
* ``fail``: definitely not applied, must never be applied;
* ``unknown``: may be applied once or not at all, never twice.

All checkers run in (amortised) O(n log n); :func:`check_all` shares its
indexes between the checkers, so it costs little more than one of them.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from typing import Any, Protocol, TypeVar

from chaos.history import History, Op, Outcome, Read
from chaos.stats import nearest_rank

__all__ = [
    "MAX_EXAMPLES",
    "AppliedRow",
    "Budget",
    "KafkaRecord",
    "KeyState",
    "PhaseStats",
    "Verdict",
    "assert_verdicts",
    "check_all",
    "check_availability",
    "check_conservation",
    "check_convergence",
    "check_decoding",
    "check_duplicates",
    "check_lost",
    "check_order",
    "check_phantoms",
    "check_positions",
    "check_reads_converge",
    "check_reads_monotonic",
    "check_reads_staleness",
    "check_unknowns",
    "format_verdicts",
    "per_key_sums",
    "phase_stats",
]

MAX_EXAMPLES = 5
_MAX_POSITIONS = 10  # positions listed per example

_OK = Outcome.OK
_FAIL = Outcome.FAIL
_UNKNOWN = Outcome.UNKNOWN

T = TypeVar("T")


# --------------------------------------------------------------------------- ground truth


@dataclass(slots=True, frozen=True)
class AppliedRow:
    """One application of an event's side effect (a row of the effects table).

    ``seq`` and ``amount`` are compared with what the history sent (``seq`` only where the pipeline
    keeps it); ``source`` is the record it was applied from, ``(topic, partition, offset)`` with the
    topic's logical name, where the pipeline records it: the phantoms checker then requires it to be a
    committed record of that topic (an aborted transaction's record is not)."""

    event_id: str
    key: str
    seq: int | None
    amount: int
    position: int
    source: tuple[str, int, int] | None = None


@dataclass(slots=True, frozen=True)
class KafkaRecord:
    """One record in the topic."""

    event_id: str
    key: str
    partition: int
    offset: int


@dataclass(slots=True, frozen=True)
class KeyState:
    """The projector's aggregate for one key."""

    key: str
    total: int
    event_count: int
    version: int
    last_seq: int


# --------------------------------------------------------------------------- verdicts


@dataclass
class Verdict:
    """The result of one checker."""

    name: str
    ok: bool
    counts: dict[str, int | float] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "message": self.message,
            "counts": dict(self.counts),
            "examples": [dict(e) for e in self.examples],
        }

    def format(self) -> str:
        lines = [f"[{'PASS' if self.ok else 'FAIL'}] {self.name}: {self.message}"]
        if self.counts:
            lines.append("    counts: " + "  ".join(f"{k}={_fmt(v)}" for k, v in self.counts.items()))
        for ex in self.examples:
            lines.append("    e.g. " + " ".join(f"{k}={_fmt(v)}" for k, v in ex.items()))
        return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return "(" + " ".join(f"{k}={_fmt(x)}" for k, x in v.items()) + ")"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_fmt(x) for x in v) + "]"
    if isinstance(v, str) and (not v or any(c.isspace() for c in v)):
        return json.dumps(v)
    return str(v)


def format_verdicts(verdicts: Iterable[Verdict]) -> str:
    """A readable multi-line report of several verdicts."""
    vs = list(verdicts)
    failed = sum(1 for v in vs if not v.ok)
    head = f"{len(vs)} checks: {len(vs) - failed} passed, {failed} failed"
    return "\n".join([head, *(v.format() for v in vs)])


def assert_verdicts(verdicts: Iterable[Verdict]) -> None:
    """Raise AssertionError listing the failed verdicts, if any (for pytest)."""
    failed = [v for v in verdicts if not v.ok]
    if failed:
        raise AssertionError(format_verdicts(failed))


def _pick(*groups: Sequence[T]) -> list[T]:
    """Up to MAX_EXAMPLES items, taken round-robin so every group is represented."""
    out: list[T] = []
    i = 0
    while len(out) < MAX_EXAMPLES and any(i < len(g) for g in groups):
        for g in groups:
            if i < len(g) and len(out) < MAX_EXAMPLES:
                out.append(g[i])
        i += 1
    return out


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


# --------------------------------------------------------------------------- shared indexes

_INF = 1 << 62  # later than any microsecond timestamp


@dataclass(slots=True)
class _Joined:
    """What one pass over the distinct applications, joined with the history, yields."""

    ops_checked: int  # distinct applied events the history issued
    acked_applied: int  # of those, how many were acknowledged
    order_keys: int  # keys with at least one applied op
    order_bad: list[tuple[Op, int]]  # (op, its first position) applied too early, see check_order
    total: dict[str, int]  # row key -> sum of amounts over distinct applied events
    count: dict[str, int]  # row key -> number of distinct applied events
    payload_bad: list[tuple[AppliedRow, Op]]  # rows whose key/seq/amount differ from the op
    phantom_rows: list[AppliedRow]  # first applications of ids the history never issued


def _join(
    rows_desc: Iterable[AppliedRow],
    issued: dict[str, Op],
    first: dict[str, AppliedRow] | None,
    check_sorted: bool,
) -> _Joined | None:
    """The single hot loop behind order, conservation (and, in check_all, lost and phantoms).

    ``rows_desc`` must be in strictly decreasing position order; with
    ``check_sorted`` the function returns None as soon as it is not.  ``first`` is
    passed only when some event was applied more than once, to skip the repeats.

    Order: walking applications from the last to the first, keep per key the
    earliest completion time of the acknowledged ops seen so far (all applied
    later).  An op sent after that time was applied before an op acknowledged
    before it was sent: a real-time order violation.  O(n) once sorted.
    """
    ok = _OK
    get = issued.get
    min_end: dict[str, int] = {}
    setdefault = min_end.setdefault
    total: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    bad: list[tuple[Op, int]] = []
    payload_bad: list[tuple[AppliedRow, Op]] = []
    phantoms: list[AppliedRow] = []
    acked_applied = 0
    prev = _INF
    for r in rows_desc:
        pos = r.position
        if check_sorted:
            if pos >= prev:
                return None
            prev = pos
        eid = r.event_id
        if first is not None and first[eid] is not r:
            continue  # a repeated application: only the first one counts here
        rkey = r.key
        amount = r.amount
        total[rkey] += amount
        count[rkey] += 1
        op = get(eid)
        if op is None:
            phantoms.append(r)
            continue
        key = op.key
        if key != rkey or op.amount != amount or (r.seq is not None and op.seq != r.seq):
            payload_bad.append((r, op))
        m = setdefault(key, _INF)
        if m < op.start_us:
            bad.append((op, pos))
        if op.outcome == ok:
            acked_applied += 1
            end = op.end_us
            if end is not None and end < m:
                min_end[key] = end
    n_distinct = sum(count.values())
    return _Joined(
        ops_checked=n_distinct - len(phantoms),
        acked_applied=acked_applied,
        order_keys=len(min_end),
        order_bad=bad,
        total=total,
        count=count,
        payload_bad=payload_bad,
        phantom_rows=phantoms,
    )


class _Ctx:
    """Indexes over the inputs, built lazily and shared by the checkers in check_all."""

    def __init__(
        self,
        history: History,
        applied: Iterable[AppliedRow] = (),
        kafka: Iterable[KafkaRecord] = (),
        committed: Mapping[str, Iterable[KafkaRecord]] | None = None,
    ) -> None:
        self.history = history
        self.ops = history.ops
        self.rows: Sequence[AppliedRow] = applied if isinstance(applied, list | tuple) else list(applied)
        self.kafka: Sequence[KafkaRecord] = kafka if isinstance(kafka, list | tuple) else list(kafka)
        self.committed = committed

    def cached(self, name: str) -> bool:
        """Whether the cached property ``name`` has been computed already."""
        return name in self.__dict__

    @cached_property
    def first(self) -> dict[str, AppliedRow]:
        """event id -> its first application (lowest position)."""
        rows = self.rows
        first = {r.event_id: r for r in rows}
        if len(first) != len(rows):
            for eid, lst in self.multi.items():
                first[eid] = lst[0]
        return first

    @cached_property
    def multi(self) -> dict[str, list[AppliedRow]]:
        """event id -> all its applications by position, only for ids applied more than once.

        Costs a pass over the rows: use :meth:`repeats` unless some id was applied twice."""
        seen: set[str] = set()
        dup: set[str] = set()
        for r in self.rows:
            eid = r.event_id
            if eid in seen:
                dup.add(eid)
            else:
                seen.add(eid)
        multi: dict[str, list[AppliedRow]] = {eid: [] for eid in dup}
        for r in self.rows:
            lst = multi.get(r.event_id)
            if lst is not None:
                lst.append(r)
        for lst in multi.values():
            lst.sort(key=attrgetter("position"))
        return multi

    @property
    def has_repeats(self) -> bool:
        return len(self.first) != len(self.rows)

    def repeats(self) -> dict[str, list[AppliedRow]]:
        """Like ``multi`` but free when no event was applied twice (the usual case)."""
        return self.multi if self.has_repeats else {}

    def times_applied(self, eid: str) -> int:
        if eid not in self.first:
            return 0
        lst = self.repeats().get(eid)
        return len(lst) if lst is not None else 1

    def positions(self, eid: str) -> list[int]:
        lst = self.repeats().get(eid)
        if lst is not None:
            return [r.position for r in lst[:_MAX_POSITIONS]]
        row = self.first.get(eid)
        return [] if row is None else [row.position]

    def kafka_hits(self, ids: Iterable[str]) -> dict[str, KafkaRecord]:
        """event id -> the first Kafka record carrying it, for the given ids only."""
        wanted = set(ids)
        if not wanted:
            return {}
        return {r.event_id: r for r in reversed(self.kafka) if r.event_id in wanted}

    @cached_property
    def issued(self) -> dict[str, Op]:
        """event id -> the op that issued it."""
        return {op.id: op for op in self.ops}

    @cached_property
    def reissued(self) -> dict[str, int]:
        """ids the history issued more than once -> how often."""
        if len(self.issued) == len(self.ops):
            return {}
        counts: dict[str, int] = defaultdict(int)
        for op in self.ops:
            counts[op.id] += 1
        return {eid: n for eid, n in counts.items() if n > 1}

    @cached_property
    def joined(self) -> _Joined:
        first = self.first if self.has_repeats else None
        j = _join(reversed(self.rows), self.issued, first, check_sorted=True)
        if j is None:  # rows not given in position order
            rows_desc = sorted(self.rows, key=attrgetter("position"), reverse=True)
            j = _join(rows_desc, self.issued, first, check_sorted=False)
        assert j is not None
        return j


# --------------------------------------------------------------------------- 1. lost


def check_lost(history: History, applied: Iterable[AppliedRow], kafka: Iterable[KafkaRecord]) -> Verdict:
    """Acknowledged ops that were never applied, split by whether they reached Kafka.

    Ops with an unknown outcome are never counted as lost.
    """
    return _check_lost(_Ctx(history, applied, kafka))


def _check_lost(ctx: _Ctx) -> Verdict:
    ok = _OK
    acked = [op for op in ctx.ops if op.outcome == ok]
    if ctx.cached("joined") and not ctx.reissued and ctx.joined.acked_applied == len(acked):
        lost: list[Op] = []  # every acknowledged op was met while joining the applications
    else:
        first = ctx.first
        lost = [op for op in acked if op.id not in first]
    kafka = ctx.kafka_hits(op.id for op in lost)
    never = [op for op in lost if op.id not in kafka]
    in_kafka = [op for op in lost if op.id in kafka]

    def ex(op: Op, kind: str) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": kind, "id": op.id, "key": op.key, "seq": op.seq, "phase": op.phase}
        rec = kafka.get(op.id)
        if rec is not None:
            d["partition"], d["offset"] = rec.partition, rec.offset
        elif op.partition is not None:
            d["acked_partition"], d["acked_offset"] = op.partition, op.offset
        return d

    examples = _pick(
        [ex(op, "never_in_kafka") for op in never[:MAX_EXAMPLES]],
        [ex(op, "in_kafka_not_in_db") for op in in_kafka[:MAX_EXAMPLES]],
    )
    counts: dict[str, int | float] = {
        "acknowledged": len(acked),
        "lost": len(lost),
        "never_in_kafka": len(never),
        "in_kafka_not_in_db": len(in_kafka),
    }
    if lost:
        msg = (
            f"{_plural(len(lost), 'acknowledged event')} lost: {len(never)} never reached Kafka, "
            f"{len(in_kafka)} in Kafka but not in Postgres"
        )
    else:
        msg = f"all {_plural(len(acked), 'acknowledged event')} applied"
    return Verdict("lost", not lost, counts, examples, msg)


# --------------------------------------------------------------------------- 2. duplicates


def check_duplicates(history: History, applied: Iterable[AppliedRow]) -> Verdict:
    """Events whose side effect was applied more than once (whatever their outcome)."""
    return _check_duplicates(_Ctx(history, applied))


def _check_duplicates(ctx: _Ctx) -> Verdict:
    multi = ctx.repeats()
    extra = sum(len(v) - 1 for v in multi.values())
    examples: list[dict[str, Any]] = []
    for eid, rows in list(multi.items())[:MAX_EXAMPLES]:
        op = ctx.issued.get(eid)
        examples.append(
            {
                "id": eid,
                "key": rows[0].key,
                "seq": rows[0].seq,
                "times": len(rows),
                "positions": [r.position for r in rows[:_MAX_POSITIONS]],
                "outcome": str(op.outcome) if op is not None else "never issued",
            }
        )
    counts: dict[str, int | float] = {
        "applications": len(ctx.rows),
        "distinct_events": len(ctx.first),
        "duplicated_events": len(multi),
        "extra_applications": extra,
    }
    if multi:
        msg = f"{_plural(len(multi), 'event')} applied more than once ({_plural(extra, 'extra application')})"
    else:
        msg = f"no event applied more than once ({len(ctx.rows)} applications)"
    return Verdict("duplicates", not multi, counts, examples, msg)


def check_kafka_duplicates(history: History, kafka: Iterable[KafkaRecord]) -> Verdict:
    """Each event id at most once in the topic (what an idempotent producer promises).

    The generator never resends an event, so a second record for one id means the producer retried a
    write whose first attempt had landed. The projector's dedup may hide it downstream; this checker
    does not let it hide.
    """
    return _check_kafka_duplicates(_Ctx(history, (), kafka))


def _check_kafka_duplicates(ctx: _Ctx) -> Verdict:
    records = ctx.kafka
    distinct = len({r.event_id for r in records})  # the usual case, no duplicate, costs one set
    multi: dict[str, list[KafkaRecord]] = {}
    if distinct != len(records):
        seen: set[str] = set()
        for r in records:
            if r.event_id in seen:
                multi.setdefault(r.event_id, [])
            else:
                seen.add(r.event_id)
        for r in records:  # every record of a duplicated id, in topic-read order
            lst = multi.get(r.event_id)
            if lst is not None:
                lst.append(r)
    extra = sum(len(v) - 1 for v in multi.values())
    examples = [
        {"id": eid, "key": recs[0].key, "times": len(recs),
         "records": [f"{r.partition}@{r.offset}" for r in recs[:_MAX_POSITIONS]]}
        for eid, recs in list(multi.items())[:MAX_EXAMPLES]
    ]
    counts: dict[str, int | float] = {"records": len(records), "distinct_events": distinct,
                                      "duplicated_events": len(multi), "extra_records": extra}
    if multi:
        msg = f"{_plural(len(multi), 'event')} written to Kafka more than once ({_plural(extra, 'extra record')})"
    else:
        msg = f"every event written to Kafka at most once ({len(records)} records)"
    return Verdict("kafka_duplicates", not multi, counts, examples, msg)


# --------------------------------------------------------------------------- 3. phantoms


def check_phantoms(history: History, applied: Iterable[AppliedRow], kafka: Iterable[KafkaRecord],
                   committed: Mapping[str, Iterable[KafkaRecord]] | None = None) -> Verdict:
    """Events in Postgres or Kafka that the history never issued, failed ops that were applied, and
    applications from records that are not in the committed log.

    Also flags ids the history issued more than once: every other checker assumes
    ids are unique, so such a history cannot be judged reliably.  Failed ops that
    reached Kafka but were not applied are counted (``failed_in_kafka_not_applied``)
    but are not a violation by themselves.  With ``committed`` (the committed records of
    each topic, read ``read_committed``), an application whose ``source`` names a record
    that is not among them was applied from something nobody committed: the record of an
    aborted transaction (``applied_uncommitted``).
    """
    return _check_phantoms(_Ctx(history, applied, kafka, committed))


def _check_phantoms(ctx: _Ctx) -> Verdict:
    issued = ctx.issued
    first = ctx.first
    if ctx.cached("joined"):
        phantom_db = [r.event_id for r in ctx.joined.phantom_rows]
    else:
        phantom_db = [eid for eid in first if eid not in issued]
    fail = _FAIL
    failed = [op for op in ctx.ops if op.outcome == fail]
    failed_ids = {op.id for op in failed}
    odd = [r for r in ctx.kafka if r.event_id not in issued or r.event_id in failed_ids]
    kafka = {r.event_id: r for r in reversed(odd)}  # first record per id
    phantom_kafka = [eid for eid in kafka if eid not in issued]
    phantom_ids = dict.fromkeys(phantom_db)
    phantom_ids.update(dict.fromkeys(phantom_kafka))
    failed_applied = [op for op in failed if op.id in first]
    failed_in_kafka = [op for op in failed if op.id in kafka and op.id not in first]
    reissued = ctx.reissued
    uncommitted: list[AppliedRow] = []
    if ctx.committed is not None:
        known = {t: {(r.partition, r.offset) for r in recs} for t, recs in ctx.committed.items()}
        uncommitted = [r for r in ctx.rows if r.source is not None and r.source[0] in known
                       and (r.source[1], r.source[2]) not in known[r.source[0]]]

    def phantom_ex(eid: str) -> dict[str, Any]:
        row = first.get(eid)
        rec = kafka.get(eid)
        key = row.key if row is not None else rec.key if rec is not None else None
        d: dict[str, Any] = {"kind": "phantom", "id": eid, "key": key}
        if row is not None:
            d["seq"] = row.seq
            d["positions"] = ctx.positions(eid)
        if rec is not None:
            d["partition"], d["offset"] = rec.partition, rec.offset
        return d

    def failed_ex(op: Op) -> dict[str, Any]:
        return {
            "kind": "failed_but_applied",
            "id": op.id,
            "key": op.key,
            "seq": op.seq,
            "error": op.error,
            "positions": ctx.positions(op.id),
        }

    examples = _pick(
        [phantom_ex(eid) for eid in list(phantom_ids)[:MAX_EXAMPLES]],
        [failed_ex(op) for op in failed_applied[:MAX_EXAMPLES]],
        [{"kind": "issued_twice", "id": eid, "times": n} for eid, n in list(reissued.items())[:MAX_EXAMPLES]],
        [{"kind": "applied_uncommitted", "id": r.event_id, "key": r.key, "position": r.position,
          "record": f"{r.source[0]} {r.source[1]}@{r.source[2]}"} for r in uncommitted[:MAX_EXAMPLES] if r.source],
    )
    counts: dict[str, int | float] = {
        "issued": len(issued),
        "phantom_events": len(phantom_ids),
        "phantom_applied": len(phantom_db),
        "phantom_in_kafka": len(phantom_kafka),
        "failed": len(failed),
        "failed_but_applied": len(failed_applied),
        "failed_in_kafka_not_applied": len(failed_in_kafka),
        "issued_twice": len(reissued),
        "applied_uncommitted": len(uncommitted),
    }
    problems = []
    if phantom_ids:
        problems.append(
            f"{_plural(len(phantom_ids), 'phantom event')} never issued by the generator "
            f"({len(phantom_db)} applied in Postgres, {len(phantom_kafka)} in Kafka)"
        )
    if failed_applied:
        problems.append(
            f"{_plural(len(failed_applied), 'op')} reported as failed but applied anyway (of {len(failed)} failed)"
        )
    if reissued:
        problems.append(f"{_plural(len(reissued), 'event id')} issued more than once by the generator")
    if uncommitted:
        problems.append(f"{_plural(len(uncommitted), 'application')} from records that are not in the committed "
                        "log (records of aborted transactions, read uncommitted)")
    ok = not problems
    msg = "; ".join(problems) if problems else f"no phantom events; none of {len(failed)} failed ops applied"
    return Verdict("phantoms", ok, counts, examples, msg)


# --------------------------------------------------------------------------- 4. unknowns


def check_unknowns(history: History, applied: Iterable[AppliedRow]) -> Verdict:
    """How many indeterminate (unknown-outcome) ops took effect; fails only if one took effect twice.

    ``unknown_applied`` counts unknown ops applied at least once (including those
    applied twice), ``unknown_applied_twice`` those applied more than once.
    """
    return _check_unknowns(_Ctx(history, applied))


def _check_unknowns(ctx: _Ctx) -> Verdict:
    unknown = _UNKNOWN
    first = ctx.first
    unknowns = [op for op in ctx.ops if op.outcome == unknown]
    applied_n = sum(1 for op in unknowns if op.id in first)
    multi = ctx.repeats()
    twice = [op for op in unknowns if op.id in multi] if multi else []
    examples = [
        {
            "id": op.id,
            "key": op.key,
            "seq": op.seq,
            "times": ctx.times_applied(op.id),
            "positions": ctx.positions(op.id),
            "error": op.error,
        }
        for op in twice[:MAX_EXAMPLES]
    ]
    counts: dict[str, int | float] = {
        "unknown": len(unknowns),
        "unknown_applied": applied_n,
        "unknown_not_applied": len(unknowns) - applied_n,
        "unknown_applied_twice": len(twice),
    }
    msg = f"{_plural(len(unknowns), 'unknown op')}: {applied_n} applied, {len(unknowns) - applied_n} not applied"
    if twice:
        msg += f", {len(twice)} applied more than once"
    return Verdict("unknowns", not twice, counts, examples, msg)


# --------------------------------------------------------------------------- 5. order


def check_order(history: History, applied: Iterable[AppliedRow]) -> Verdict:
    """Per-key real-time order of applications (Jepsen-style, not naive seq order).

    For ops ``a`` and ``b`` on the same key, if ``a`` was acknowledged and
    completed before ``b`` was sent (``a.end_us < b.start_us``) and both were
    applied, then ``a``'s first application must come before ``b``'s.
    Concurrent ops may be applied in either order.

    Walks the applications from last to first keeping, per key, the earliest
    completion time of the acknowledged ops applied later; an op sent after it
    violates the order.  O(n) when the rows come in position order, O(n log n)
    otherwise.  ``violations`` counts the ops applied too early; each example
    shows one such pair: ``earlier`` (acknowledged before ``later`` was sent)
    and ``later`` (applied before ``earlier`` nonetheless).
    """
    return _check_order(_Ctx(history, applied))


def _check_order(ctx: _Ctx) -> Verdict:
    j = ctx.joined
    bad = j.order_bad
    examples: list[dict[str, Any]] = []
    if bad:
        shown = sorted(bad, key=lambda t: t[1])[:MAX_EXAMPLES]
        first = ctx.first
        ok = _OK
        keys = {op.key for op, _ in shown}
        witnesses = [
            (op, first[op.id].position)
            for op in ctx.ops
            if op.key in keys and op.outcome == ok and op.end_us is not None and op.id in first
        ]
        for later, later_pos in shown:
            # among the acknowledged ops on this key that completed before `later` was sent
            # yet were applied after it, the one that completed first
            earlier, earlier_pos = min(
                (
                    (a, p)
                    for a, p in witnesses
                    if a.key == later.key and a.end_us < later.start_us and p > later_pos  # type: ignore[operator]
                ),
                key=lambda t: t[0].end_us or 0,
            )
            examples.append(
                {
                    "key": later.key,
                    "earlier": {
                        "id": earlier.id,
                        "seq": earlier.seq,
                        "position": earlier_pos,
                        "end_us": earlier.end_us,
                    },
                    "later": {
                        "id": later.id,
                        "seq": later.seq,
                        "position": later_pos,
                        "start_us": later.start_us,
                    },
                }
            )
    violating_keys = len({op.key for op, _ in bad})
    counts: dict[str, int | float] = {
        "keys": j.order_keys,
        "ops_checked": j.ops_checked,
        "violations": len(bad),
        "violating_keys": violating_keys,
    }
    if bad:
        msg = (
            f"{_plural(len(bad), 'op')} on {_plural(violating_keys, 'key')} applied before an op "
            f"on the same key that was acknowledged before {'it was' if len(bad) == 1 else 'they were'} sent"
        )
    else:
        msg = f"real-time order respected ({j.ops_checked} applied ops on {_plural(j.order_keys, 'key')})"
    return Verdict("order", not bad, counts, examples, msg)


# --------------------------------------------------------------------------- 6. conservation


def check_conservation(
    history: History,
    applied: Iterable[AppliedRow],
    key_state: Iterable[KeyState] | Mapping[str, KeyState],
    adjustments: Mapping[str, int] | None = None,
) -> Verdict:
    """The aggregate per key must equal the sum over the *distinct* events applied to it (plus, for
    ``total``, what a competing writer journalled adding: ``adjustments``).

    Expected values come from the effects rows, one per distinct event id:
    ``total`` = sum of their amounts, ``event_count`` = their number.  Catches
    double-applied effects (aggregate too high) and lost updates (effects rows
    present, aggregate too low).  A key with applied events but no KeyState is a
    violation; a KeyState for a key with nothing applied is one unless it is
    all zero.  Also flags effects rows whose key/seq/amount differ from the op
    the history sent (``payload_mismatch``).  ``version`` and ``last_seq`` are
    not checked.
    """
    return _check_conservation(_Ctx(history, applied), key_state, adjustments)


def _check_conservation(ctx: _Ctx, key_state: Iterable[KeyState] | Mapping[str, KeyState],
                        adjustments: Mapping[str, int] | None = None) -> Verdict:
    j = ctx.joined
    tot, cnt = j.total, j.count
    if adjustments:
        tot = dict(tot)
        for k, a in adjustments.items():
            tot[k] = tot.get(k, 0) + a
    states = key_state.values() if isinstance(key_state, Mapping) else key_state
    state = {s.key: s for s in states}

    mismatched: list[dict[str, Any]] = []
    missing = 0
    unexpected = 0
    for k in dict.fromkeys([*tot, *state]):
        s = state.get(k)
        exp_t, exp_n = tot.get(k, 0), cnt.get(k, 0)
        if s is None:
            missing += 1
            mismatched.append({"key": k, "problem": "no key state", "expected_total": exp_t, "expected_events": exp_n})
        elif s.total != exp_t or s.event_count != exp_n:
            if exp_n == 0:
                unexpected += 1
            mismatched.append(
                {
                    "key": k,
                    "problem": "key state for a key with nothing applied" if exp_n == 0 else "mismatch",
                    "expected_total": exp_t,
                    "observed_total": s.total,
                    "expected_events": exp_n,
                    "observed_events": s.event_count,
                    "delta_total": s.total - exp_t,
                }
            )
    total_expected = sum(tot.values())
    total_observed = sum(s.total for s in state.values())
    events_expected = sum(cnt.values())
    events_observed = sum(s.event_count for s in state.values())
    n_keys = len(tot.keys() | state.keys())
    counts: dict[str, int | float] = {
        "keys": n_keys,
        "mismatched_keys": len(mismatched),
        "missing_key_state": missing,
        "unexpected_key_state": unexpected,
        "total_expected": total_expected,
        "total_observed": total_observed,
        "events_expected": events_expected,
        "events_observed": events_observed,
        "payload_mismatch": len(j.payload_bad),
        "adjustments_total": sum(adjustments.values()) if adjustments else 0,
    }
    payload_ex = [
        {
            "problem": "payload differs from history",
            "id": r.event_id,
            "key": r.key,
            "seq": r.seq,
            "amount": r.amount,
            "sent": {"key": op.key, "seq": op.seq, "amount": op.amount},
        }
        for r, op in j.payload_bad[:MAX_EXAMPLES]
    ]
    examples = _pick(mismatched[:MAX_EXAMPLES], payload_ex)
    problems = []
    if mismatched:
        problems.append(
            f"{len(mismatched)} of {_plural(n_keys, 'key')} disagree with the effects table "
            f"(expected total {total_expected}, observed {total_observed}; "
            f"expected {events_expected} events, observed {events_observed})"
        )
    if j.payload_bad:
        n_bad = len(j.payload_bad)
        problems.append(
            f"{_plural(n_bad, 'effects row')} {'differs' if n_bad == 1 else 'differ'} from the event the history sent"
        )
    msg = "; ".join(problems) or (
        f"all {_plural(len(tot), 'key')} match the effects table (total {total_expected}, {events_expected} events)"
    )
    return Verdict("conservation", not problems, counts, examples, msg)


# --------------------------------------------------------------------------- 7. convergence


def check_convergence(heal_at_us: int, converged_at_us: int | None, bound_s: float) -> Verdict:
    """The system must converge within ``bound_s`` seconds of the heal.

    ``convergence_s`` is -1 when it never converged, and 0 when it was already
    consistent before the heal.
    """
    bound_us = bound_s * 1e6
    if converged_at_us is None:
        conv_s: float = -1.0
        ok = False
        msg = f"never converged after the heal (bound {bound_s:g} s)"
    else:
        delta = converged_at_us - heal_at_us
        conv_s = max(0.0, delta / 1e6)
        ok = delta <= bound_us
        msg = f"converged {conv_s:.3f} s after the heal " + (
            f"(bound {bound_s:g} s)" if ok else f"exceeding the {bound_s:g} s bound"
        )
    counts: dict[str, int | float] = {"convergence_s": conv_s, "bound_s": bound_s}
    examples = [] if ok else [{"heal_at_us": heal_at_us, "converged_at_us": converged_at_us}]
    return Verdict("convergence", ok, counts, examples, msg)


# --------------------------------------------------------------------------- 8. phase statistics


@dataclass(slots=True, frozen=True)
class PhaseStats:
    """Client-side statistics of one phase.

    ``error_rate`` = (fail + unknown) / ops.  ``throughput_ok_per_s`` = ok ops
    divided by the phase duration (its mark to the next mark; for the last
    marked phase, to the last completion of its ops; for a phase with no mark,
    from its first intended start to its last completion).  Latencies are in
    milliseconds over ok ops, measured from the *intended* start, using exact
    nearest-rank percentiles; None when the phase has no ok ops.
    """

    name: str
    ops: int
    ok: int
    fail: int
    unknown: int
    error_rate: float
    duration_s: float
    throughput_ok_per_s: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


def phase_stats(history: History) -> dict[str, PhaseStats]:
    """Per-phase statistics, in :meth:`History.phase_names` order."""
    names = history.phase_names()
    groups: dict[str, list[Op]] = {n: [] for n in names}
    for op in history.ops:
        groups[op.phase].append(op)

    # phase durations from the marks
    marks = sorted(history.phases, key=attrgetter("at_us"))
    duration_us: dict[str, int] = defaultdict(int)
    for i, m in enumerate(marks):
        if i + 1 < len(marks):
            end = marks[i + 1].at_us
        else:
            end = max((_last_time(o) for o in groups.get(m.name, ())), default=m.at_us)
        duration_us[m.name] += max(0, end - m.at_us)
    marked = {m.name for m in marks}

    ok, fail, unknown = _OK, _FAIL, _UNKNOWN
    out: dict[str, PhaseStats] = {}
    for name in names:
        ops = groups[name]
        lat = [o.end_us - o.intended_us for o in ops if o.outcome == ok and o.end_us is not None]
        n_fail = sum(1 for o in ops if o.outcome == fail)
        n_unknown = sum(1 for o in ops if o.outcome == unknown)
        n_ok = sum(1 for o in ops if o.outcome == ok)
        if name in marked:
            dur = duration_us[name]
        elif ops:
            dur = max(_last_time(o) for o in ops) - min(o.intended_us for o in ops)
        else:
            dur = 0
        dur_s = dur / 1e6
        pct: list[float | None]
        if lat:
            lat.sort()
            pct = [nearest_rank(lat, q) / 1000 for q in (0.5, 0.9, 0.99, 0.999, 1.0)]
        else:
            pct = [None] * 5
        out[name] = PhaseStats(
            name=name,
            ops=len(ops),
            ok=n_ok,
            fail=n_fail,
            unknown=n_unknown,
            error_rate=(n_fail + n_unknown) / len(ops) if ops else 0.0,
            duration_s=dur_s,
            throughput_ok_per_s=n_ok / dur_s if dur_s > 0 else 0.0,
            p50_ms=pct[0],
            p90_ms=pct[1],
            p99_ms=pct[2],
            p999_ms=pct[3],
            max_ms=pct[4],
        )
    return out


def _last_time(op: Op) -> int:
    return op.end_us if op.end_us is not None else op.start_us


# --------------------------------------------------------------------------- 9. availability


@dataclass(frozen=True)
class Budget:
    """Availability budget of one phase (None = not checked)."""

    max_error_rate: float | None = None
    max_p99_ms: float | None = None


def check_availability(
    history: History,
    budgets: Mapping[str, Budget],
    stats: Mapping[str, PhaseStats] | None = None,
) -> Verdict:
    """Compare each budgeted phase's error rate and p99 latency with its budget.

    A budgeted phase with no operations is a violation, as is a p99 budget on a
    phase without any ok op.  Counts are flattened per phase
    (``"during.error_rate"``, ``"during.p99_ms"`` (-1 if no ok op), ``"during.ops"``).
    Pass ``stats`` to reuse an earlier :func:`phase_stats` result.
    """
    if stats is None:
        stats = phase_stats(history)
    counts: dict[str, int | float] = {}
    examples: list[dict[str, Any]] = []
    problems: list[str] = []
    for phase, budget in budgets.items():
        st = stats.get(phase)
        n = st.ops if st is not None else 0
        counts[f"{phase}.ops"] = n
        if st is None or n == 0:
            problems.append(f"no operations in phase {phase}")
            examples.append({"phase": phase, "metric": "ops", "observed": 0})
            continue
        counts[f"{phase}.error_rate"] = st.error_rate
        counts[f"{phase}.p99_ms"] = st.p99_ms if st.p99_ms is not None else -1.0
        if budget.max_error_rate is not None:
            counts[f"{phase}.max_error_rate"] = budget.max_error_rate
            if st.error_rate > budget.max_error_rate:
                problems.append(f"{phase}: error rate {st.error_rate:.2%} > budget {budget.max_error_rate:.2%}")
                examples.append(
                    {
                        "phase": phase,
                        "metric": "error_rate",
                        "observed": st.error_rate,
                        "budget": budget.max_error_rate,
                        "fail": st.fail,
                        "unknown": st.unknown,
                        "ops": st.ops,
                    }
                )
        if budget.max_p99_ms is not None:
            counts[f"{phase}.max_p99_ms"] = budget.max_p99_ms
            if st.p99_ms is None:
                problems.append(f"{phase}: no acknowledged operations to measure p99 against its budget")
                examples.append({"phase": phase, "metric": "p99_ms", "observed": None, "ok": 0})
            elif st.p99_ms > budget.max_p99_ms:
                problems.append(f"{phase}: p99 {st.p99_ms:g} ms > budget {budget.max_p99_ms:g} ms")
                examples.append(
                    {"phase": phase, "metric": "p99_ms", "observed": st.p99_ms, "budget": budget.max_p99_ms}
                )
    ok = not problems
    msg = "; ".join(problems) if problems else f"{_plural(len(budgets), 'phase')} within budget"
    return Verdict("availability", ok, counts, examples[:MAX_EXAMPLES], msg)


# --------------------------------------------------------------------------- 10. all


def check_all(
    history: History,
    applied: Iterable[AppliedRow],
    kafka: Iterable[KafkaRecord],
    key_state: Iterable[KeyState] | Mapping[str, KeyState] | None = None,
    *,
    order: bool = True,
    committed: Mapping[str, Iterable[KafkaRecord]] | None = None,
    kafka_at_most_once: bool = True,
) -> list[Verdict]:
    """The generic checkers over event ids and keys, sharing their indexes: lost, duplicates, phantoms,
    unknowns, order (when the pipeline promises per-key order), the Kafka duplicate check on ``kafka``
    (the entry topic's records), and conservation when ``key_state`` is given (a per-key-sums model;
    adapters with another model check it themselves)."""
    ctx = _Ctx(history, applied, kafka, committed)
    _ = ctx.joined  # one pass serves order, conservation, lost and phantoms
    out = [_check_lost(ctx), _check_duplicates(ctx), _check_phantoms(ctx), _check_unknowns(ctx)]
    if order:
        out.append(_check_order(ctx))
    if key_state is not None:
        out.append(_check_conservation(ctx, key_state))
    if kafka_at_most_once:
        out.append(_check_kafka_duplicates(ctx))
    return out


def check_positions(history: History, kafka: Iterable[KafkaRecord], *, required: bool = True) -> Verdict:
    """What the service acknowledged must match the log (Jepsen's Kafka workload checks the same).

    Where the pipeline's contract returns a position with the acknowledgement (``required``), every
    acknowledged op must report one, and the entry topic's committed record at that (partition, offset)
    must be that op's event. A different event there, or nothing there while the event sits elsewhere in
    the topic, is a violation. An acknowledged event that is nowhere in the topic is left to ``lost``.

    A partition without an offset (offset negative) is not a missing position: Kafka's producers (the Java
    client and librdkafka alike) report no offset for a batch the broker answered as a duplicate of an
    earlier send (``DUPLICATE_SEQUENCE_NUMBER``: written before, offset unknown), which happens to a correct
    idempotent producer retrying across a leader change. Such an event must then be in that partition.
    """
    at: dict[tuple[int, int], str] = {}
    where: dict[str, tuple[int, int]] = {}
    for r in kafka:
        at[(r.partition, r.offset)] = r.event_id
        where.setdefault(r.event_id, (r.partition, r.offset))
    acked = [op for op in history.ops if op.outcome == _OK]
    missing: list[Op] = []
    wrong: list[tuple[Op, str | None]] = []
    checked = offset_unknown = 0
    for op in acked:
        if op.partition is None or op.partition < 0:
            if required:
                missing.append(op)
            continue
        if op.offset is None or op.offset < 0:
            offset_unknown += 1
            if op.id in where and where[op.id][0] != op.partition:
                wrong.append((op, None))
            continue
        checked += 1
        there = at.get((op.partition, op.offset))
        if there == op.id:
            continue
        if there is not None or op.id in where:
            wrong.append((op, there))
    no_position: list[dict[str, Any]] = [
        {"kind": "no_position", "id": op.id, "key": op.key, "reported": f"{op.partition}@{op.offset}"}
        for op in missing[:MAX_EXAMPLES]]
    examples = _pick(
        no_position,
        [{"kind": "wrong_position", "id": op.id, "key": op.key, "reported": f"{op.partition}@{op.offset}",
          "found_there": there, "actually_at": "{}@{}".format(*where[op.id]) if op.id in where else None}
         for op, there in wrong[:MAX_EXAMPLES]],
    )
    counts: dict[str, int | float] = {"acknowledged": len(acked), "positions_checked": checked,
                                      "offset_unknown": offset_unknown, "wrong_position": len(wrong),
                                      "without_position": len(missing)}
    problems = []
    if wrong:
        problems.append(f"{_plural(len(wrong), 'acknowledgement')} reported a position that does not hold the event")
    if missing:
        problems.append(f"{_plural(len(missing), 'acknowledgement')} without a position, which the contract promises")
    msg = "; ".join(problems) or (
        f"all {_plural(checked, 'acknowledged position')} hold their events"
        + (f" ({offset_unknown} more in the partition reported, offset unknown to the producer)"
           if offset_unknown else ""))
    return Verdict("positions", not problems, counts, examples, msg)


def per_key_sums(history: History, applied: Iterable[AppliedRow],
                 state: Iterable[KeyState] | Mapping[str, KeyState],
                 adjustments: Mapping[str, int] | None = None) -> Verdict:
    """The model of a projection of per-key sums (``conservation``): each key's aggregate equals the sum
    over the distinct events applied to it, plus what a competing writer added (``adjustments``). For
    adapters: ``model=lambda m: [per_key_sums(m.history, m.applied, m.state, m.adjustments)]``."""
    return check_conservation(history, applied, state, adjustments)


def check_decoding(undecodable: Mapping[str, Sequence[Mapping[str, Any]]], records: Mapping[str, int]) -> Verdict:
    """Every record of every topic decodes (the adapter's ``decode``). ``undecodable``: per topic, one entry
    per record that did not (partition, offset, why); ``records``: per topic, how many were read."""
    bad = {t: list(v) for t, v in undecodable.items() if v}
    n_bad = sum(len(v) for v in bad.values())
    counts: dict[str, int | float] = {"records": sum(records.values()), "undecodable": n_bad,
                                      **{f"{t}.undecodable": len(v) for t, v in bad.items()}}
    examples = _pick(*[[{"topic": t, **e} for e in v[:MAX_EXAMPLES]] for t, v in bad.items()])
    if n_bad:
        msg = (f"{_plural(n_bad, 'record')} the adapter cannot decode, in "
               + ", ".join(f"{t} ({len(v)})" for t, v in bad.items()))
    else:
        msg = f"all {_plural(sum(records.values()), 'record')} decoded"
    return Verdict("decoding", not n_bad, counts, examples, msg)


# --------------------------------------------------------------------------- 11. reads


class ReadFigures(Protocol):
    """What a read returned (a :class:`~chaos.history.Read` or the adapter's expected answer)."""

    @property
    def found(self) -> bool: ...

    @property
    def value(self) -> int | None: ...

    @property
    def count(self) -> int | None: ...

    @property
    def version(self) -> int | None: ...


_FIGURES = ("found", "value", "count", "version")


def _read_example(kind: str, r: Read, **more: Any) -> dict[str, Any]:
    return {"kind": kind, "key": r.key, "phase": r.phase, "start_us": r.start_us, "found": r.found,
            "count": r.count, "version": r.version, **more}


def check_reads_monotonic(history: History) -> Verdict:
    """Monotonic reads: a read of a key that starts after another read of that key completed never returns
    less than it did: a lower ``count`` or ``version``, or "not found" after "found". Reads that overlap in
    time may be answered in either order and are not compared; failed reads are ignored."""
    by_key: dict[str, list[Read]] = defaultdict(list)
    for r in history.reads:
        if r.outcome == _OK and r.end_us is not None:
            by_key[r.key].append(r)
    backwards: list[dict[str, Any]] = []
    n_back = compared = 0
    for key_reads in by_key.values():
        by_end = sorted(key_reads, key=attrgetter("end_us"))
        i = 0
        best: Read | None = None  # the completed read with the highest figures so far
        hi_count = hi_version = -1
        hi_found = False
        for r in sorted(key_reads, key=attrgetter("start_us")):
            while i < len(by_end) and (by_end[i].end_us or 0) < r.start_us:
                done = by_end[i]
                i += 1
                c = done.count if done.count is not None else -1
                v = done.version if done.version is not None else -1
                if c > hi_count or v > hi_version or (done.found and not hi_found):
                    best = done
                hi_count, hi_version, hi_found = max(hi_count, c), max(hi_version, v), hi_found or done.found
            if best is None:
                continue
            compared += 1
            lower = ((r.count is not None and r.count < hi_count) or (r.version is not None and r.version < hi_version)
                     or (hi_found and not r.found))
            if lower:
                n_back += 1
                if len(backwards) < MAX_EXAMPLES:
                    backwards.append(_read_example("went_backwards", r, earlier_count=best.count,
                                                   earlier_version=best.version, earlier_found=best.found,
                                                   earlier_end_us=best.end_us))
    return Verdict(
        "reads_monotonic", n_back == 0,
        {"reads": sum(len(v) for v in by_key.values()), "compared": compared, "went_backwards": n_back},
        backwards,
        "no read returned less than an earlier completed read of its key" if n_back == 0 else
        f"{_plural(n_back, 'read')} returned less than a read of the same key that had already completed",
    )


def check_reads_staleness(history: History, staleness_s: float, applied_ids: Iterable[str]) -> Verdict:
    """Bounded staleness: a read that starts more than ``staleness_s`` after a write to its key was
    acknowledged reflects it, so its ``count`` is at least the number of such writes (those the pipeline
    applied at all: a lost write is ``lost``'s to report). Checked on reads while the pipeline is healthy:
    before the first fault window of the history (all reads of a run without faults); the ``final`` reads
    are ``reads_converge``'s. A read that returns no ``count`` cannot show it is fresh and is a violation."""
    applied = set(applied_ids)
    healthy_until = min((f.start_us for f in history.faults), default=None)
    acked: dict[str, list[int]] = defaultdict(list)  # key -> ack times of applied, acknowledged events
    seen: set[str] = set()
    for op in history.ops:
        if op.outcome == _OK and op.end_us is not None and op.id in applied and op.id not in seen:
            seen.add(op.id)
            acked[op.key].append(op.end_us)
    for times in acked.values():
        times.sort()
    bound_us = int(staleness_s * 1_000_000)
    checked = stale = no_count = 0
    worst_us = 0
    examples: list[dict[str, Any]] = []
    for r in history.reads:
        if r.outcome != _OK or r.phase == "final" or (healthy_until is not None and r.start_us >= healthy_until):
            continue
        checked += 1
        times = acked.get(r.key, [])
        need = bisect_right(times, r.start_us - bound_us)
        if r.count is None:
            no_count += 1
            if len(examples) < MAX_EXAMPLES:
                examples.append(_read_example("no_count", r))
            continue
        have = r.count if r.found else 0
        if have < need:
            stale += 1
            missed_ack = times[max(have, 0)]  # the oldest acknowledged write it does not reflect
            age = r.start_us - missed_ack
            worst_us = max(worst_us, age)
            if len(examples) < MAX_EXAMPLES:
                examples.append(_read_example("stale", r, reflects=have, acknowledged_before_bound=need,
                                              oldest_missing_acked_s_before=round(age / 1e6, 3)))
    ok = stale == 0 and no_count == 0
    if ok:
        msg = (f"every read reflected the writes to its key acknowledged more than {staleness_s:g} s before it"
               if checked else "no read was issued while the pipeline was healthy: nothing to check")
    else:
        parts = []
        if stale:
            parts.append(f"{_plural(stale, 'read')} missed a write acknowledged more than {staleness_s:g} s "
                         f"earlier (the oldest missed by {worst_us / 1e6:.1f} s)")
        if no_count:
            parts.append(f"{_plural(no_count, 'read')} returned no count, so freshness cannot be shown")
        msg = "; ".join(parts)
    return Verdict("reads_bounded_staleness", ok,
                   {"checked": checked, "stale": stale, "no_count": no_count,
                    "worst_staleness_s": round(worst_us / 1e6, 3), "bound_s": staleness_s},
                   examples, msg)


def check_reads_converge(final: Iterable[Read], expected: Mapping[str, ReadFigures]) -> Verdict:
    """Reads converge: after quiescence, the last read of every key returns what the pipeline's state holds
    (``expected``, from ground truth; figures that are None there are not compared). A key with no
    successful final read is a violation: the read model never answered."""
    last: dict[str, Read] = {}
    for r in final:
        last[r.key] = r
    wrong: list[dict[str, Any]] = []
    n_wrong = n_failed = 0
    for key in sorted(expected):
        want = expected[key]
        got = last.get(key)
        if got is None or got.outcome != _OK:
            n_failed += 1
            if len(wrong) < MAX_EXAMPLES:
                wrong.append({"kind": "no_answer", "key": key,
                              "error": got.error if got is not None else "never read"})
            continue
        diff = {f: (getattr(want, f), getattr(got, f)) for f in _FIGURES
                if getattr(want, f) is not None and getattr(want, f) != getattr(got, f)}
        if diff:
            n_wrong += 1
            if len(wrong) < MAX_EXAMPLES:
                wrong.append({"kind": "diverged", "key": key,
                              **{f"{f}": f"read {g!r}, state {w!r}" for f, (w, g) in diff.items()}})
    ok = n_wrong == 0 and n_failed == 0
    msg = (f"the final read of each of {_plural(len(expected), 'key')} returned the converged state" if ok else
           "; ".join(p for p in (
               f"{_plural(n_wrong, 'key')} read differently from the converged state" if n_wrong else "",
               f"{_plural(n_failed, 'key')} could not be read after quiescence" if n_failed else "") if p))
    return Verdict("reads_converge", ok, {"keys": len(expected), "diverged": n_wrong, "unanswered": n_failed},
                   wrong, msg)
