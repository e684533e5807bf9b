"""The operation log ("history") of a chaos experiment.

The load generator records every operation it issued and what the service told
it; the checkers (:mod:`chaos.checkers`) compare that record with ground truth
read from Postgres and Kafka after the run.

On-disk format (JSON Lines, ``"format": 2``)
============================================

UTF-8 text, one JSON object per line.  Every object has a ``"type"`` key.
All times are integer microseconds since the Unix epoch.

* The **first** line is the meta record::

      {"type": "meta", "format": 2, "run_id": "...", "experiment": "...", "seed": 7, ...}

  ``format`` is the version of this layout.  A reader rejects any format it does
  not know.  All other keys are free-form run metadata (``run_id``,
  ``experiment``, ``seed``, ``started_at_us``, ...), kept verbatim in
  :attr:`History.meta`.

* One line per operation::

      {"type": "op", "id": "e-17", "key": "k-3", "seq": 4, "amount": 25,
       "intended": 1700000000000000, "start": 1700000000000150, "end": 1700000000004150,
       "outcome": "ok", "phase": "during", "error": null, "partition": 2, "offset": 811}

  - ``id``: the event id (unique within a history), ``key``: the aggregate key,
    ``seq``: the generator's per-key sequence number, ``amount``: the payload
    value that the projector adds to the key's total.
  - ``intended``: when the open-loop generator scheduled the op to start;
    ``start``: when it was actually sent; ``end``: when it completed, ``null``
    only if it never completed.  Latency is measured from ``intended`` so that
    a stalled generator does not hide queueing delay (coordinated omission).
  - ``outcome``: ``"ok"`` = acknowledged, the service promised it is durable;
    ``"fail"`` = the service said it was definitely NOT applied;
    ``"unknown"`` = timed out / connection lost, it may or may not be applied.
  - ``phase``: the experiment phase the op belongs to (typically ``"before"``,
    ``"during"``, ``"after"``).
  - ``error``: error text for ``fail``/``unknown`` ops, else ``null``.
  - ``partition``/``offset``: the Kafka coordinates the service reported, if any.
    ``error``, ``partition`` and ``offset`` may be omitted (read as ``null``).

* A phase mark, from ``at`` on new ops belong to phase ``name``::

      {"type": "phase", "name": "during", "at": 1700000000000000}

* A fault window (``end`` is ``null`` if the fault was never healed)::

      {"type": "fault", "name": "partition-kafka", "start": 1700000000000000,
       "end": 1700000030000000, "detail": {"target": "kafka-1"}}

* One line per read of the pipeline's read API (format 2)::

      {"type": "read", "key": "k-3", "intended": 1700000000000000, "start": 1700000000000150,
       "end": 1700000000001150, "outcome": "ok", "phase": "during", "error": null,
       "found": true, "value": 410, "count": 9, "version": 9}

  ``intended``/``start``/``end``/``outcome``/``phase``/``error`` as for an op
  (a read's ``fail``/``unknown`` means the read itself failed); ``found``,
  ``value`` (the projection's figure), ``count`` (how many events the answer
  reflects) and ``version`` are what the read returned (``null`` where the read
  model gives no such figure). The reads the suite issues after quiescence to
  check convergence have phase ``"final"``.

Apart from the meta record coming first, readers must not depend on the order
of lines (the writer emits phases, then faults, then ops in issue order, then
reads). Blank lines are ignored.  Unknown keys inside a known record type are
ignored (so a format may gain optional keys); an unknown record ``type`` is an
error. Format 1 (no reads) is read as a history without reads.
"""

from __future__ import annotations

import gc
import json
import os
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from json.encoder import encode_basestring_ascii as _jstr  # type: ignore[attr-defined]
from typing import Any

__all__ = ["FORMAT_VERSION", "FaultWindow", "History", "Op", "Outcome", "PhaseMark", "Read"]

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)


class Outcome(StrEnum):
    """What the service told the client about an operation."""

    OK = "ok"  # acknowledged: the service promised it is durable
    FAIL = "fail"  # definitely not applied
    UNKNOWN = "unknown"  # timed out / connection lost: may or may not be applied


_OUTCOMES: dict[str, Outcome] = {o.value: o for o in Outcome}
_OUTCOME_JSON: dict[str, str] = {o.value: f'"{o.value}"' for o in Outcome}


@dataclass(slots=True, frozen=True)
class Op:
    """One operation issued by the load generator."""

    id: str
    key: str
    seq: int
    amount: int
    intended_us: int
    start_us: int
    end_us: int | None
    outcome: Outcome
    phase: str
    error: str | None = None
    partition: int | None = None
    offset: int | None = None

    @property
    def latency_us(self) -> int | None:
        """Completion time minus *intended* start (None if it never completed)."""
        if self.end_us is None:
            return None
        return self.end_us - self.intended_us


@dataclass(slots=True, frozen=True)
class Read:
    """One read of a key through the pipeline's read API, and what it returned."""

    key: str
    intended_us: int
    start_us: int
    end_us: int | None
    outcome: Outcome
    phase: str
    error: str | None = None
    found: bool = False
    value: int | None = None
    count: int | None = None
    version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": "read", "key": self.key, "intended": self.intended_us, "start": self.start_us,
                "end": self.end_us, "outcome": self.outcome.value, "phase": self.phase, "error": self.error,
                "found": self.found, "value": self.value, "count": self.count, "version": self.version}


@dataclass(slots=True, frozen=True)
class PhaseMark:
    """From ``at_us`` on, new ops belong to phase ``name``."""

    name: str
    at_us: int


@dataclass(slots=True, frozen=True)
class FaultWindow:
    """A fault that was active from ``start_us`` to ``end_us`` (None = never healed)."""

    name: str
    start_us: int
    end_us: int | None
    detail: dict[str, Any] = field(default_factory=dict)


# Building a frozen dataclass through its generated __init__ goes through
# object.__setattr__ once per field; setting the slot descriptors directly is
# about twice as fast, which matters when reading a million ops.
_new_op = object.__new__
(
    _set_id,
    _set_key,
    _set_seq,
    _set_amount,
    _set_intended,
    _set_start,
    _set_end,
    _set_outcome,
    _set_phase,
    _set_error,
    _set_partition,
    _set_offset,
) = (Op.__dict__[name].__set__ for name in Op.__slots__)  # type: ignore[attr-defined]
assert Op.__slots__ == (  # type: ignore[attr-defined]
    "id",
    "key",
    "seq",
    "amount",
    "intended_us",
    "start_us",
    "end_us",
    "outcome",
    "phase",
    "error",
    "partition",
    "offset",
)


def _make_op(
    id_: str,
    key: str,
    seq: int,
    amount: int,
    intended: int,
    start: int,
    end: int | None,
    outcome: Outcome,
    phase: str,
    error: str | None,
    partition: int | None,
    offset: int | None,
) -> Op:
    op: Op = _new_op(Op)
    _set_id(op, id_)
    _set_key(op, key)
    _set_seq(op, seq)
    _set_amount(op, amount)
    _set_intended(op, intended)
    _set_start(op, start)
    _set_end(op, end)
    _set_outcome(op, outcome)
    _set_phase(op, phase)
    _set_error(op, error)
    _set_partition(op, partition)
    _set_offset(op, offset)
    return op


def _is_int(v: object) -> bool:
    return type(v) is int


def _is_opt_int(v: object) -> bool:
    return v is None or type(v) is int


def _is_opt_str(v: object) -> bool:
    return v is None or type(v) is str


def _op_line(op: Op) -> str:
    # Hand-rolled encoder: ~4x faster than json.dumps on a dict.  The ":d" format
    # spec rejects floats/str/None in integer fields; _jstr rejects non-strings.
    end = op.end_us
    err = op.error
    part = op.partition
    off = op.offset
    return (
        f'{{"type":"op","id":{_jstr(op.id)},"key":{_jstr(op.key)},"seq":{op.seq:d},'
        f'"amount":{op.amount:d},"intended":{op.intended_us:d},"start":{op.start_us:d},'
        f'"end":{"null" if end is None else format(end, "d")},"outcome":{_OUTCOME_JSON[op.outcome]},'
        f'"phase":{_jstr(op.phase)},"error":{"null" if err is None else _jstr(err)},'
        f'"partition":{"null" if part is None else format(part, "d")},'
        f'"offset":{"null" if off is None else format(off, "d")}}}\n'
    )


class History:
    """Everything the load generator did and was told during one experiment."""

    __slots__ = ("faults", "meta", "ops", "phases", "reads")

    def __init__(
        self,
        meta: dict[str, Any] | None = None,
        ops: Iterable[Op] | None = None,
        phases: Iterable[PhaseMark] | None = None,
        faults: Iterable[FaultWindow] | None = None,
        reads: Iterable[Read] | None = None,
    ) -> None:
        self.meta: dict[str, Any] = dict(meta) if meta else {}
        self.ops: list[Op] = list(ops) if ops is not None else []
        self.phases: list[PhaseMark] = list(phases) if phases is not None else []
        self.faults: list[FaultWindow] = list(faults) if faults is not None else []
        self.reads: list[Read] = list(reads) if reads is not None else []

    # ------------------------------------------------------------------ building

    def add_op(self, op: Op) -> None:
        """Append one completed (or abandoned) operation."""
        self.ops.append(op)

    def add_read(self, read: Read) -> None:
        """Append one completed (or abandoned) read."""
        self.reads.append(read)

    def mark_phase(self, name: str, at_us: int) -> PhaseMark:
        """Start phase ``name`` at ``at_us``.

        Marks are kept in the order added; consumers that need time order sort
        them by ``at_us`` (a wall clock may step back, which must not abort a run).
        """
        mark = PhaseMark(name, at_us)
        self.phases.append(mark)
        return mark

    def add_fault(
        self, name: str, start_us: int, end_us: int | None = None, detail: dict[str, Any] | None = None
    ) -> FaultWindow:
        """Record a fault window (leave ``end_us`` None and call :meth:`end_fault` later)."""
        window = FaultWindow(name, start_us, end_us, dict(detail) if detail else {})
        self.faults.append(window)
        return window

    def end_fault(self, name: str, end_us: int) -> FaultWindow:
        """Close the most recent still-open fault window called ``name``."""
        for i in range(len(self.faults) - 1, -1, -1):
            w = self.faults[i]
            if w.name == name and w.end_us is None:
                closed = FaultWindow(w.name, w.start_us, end_us, w.detail)
                self.faults[i] = closed
                return closed
        raise ValueError(f"no open fault window named {name!r}")

    # ------------------------------------------------------------------ queries

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return (self.meta, self.ops, self.phases, self.faults, self.reads) == (
            other.meta,
            other.ops,
            other.phases,
            other.faults,
            other.reads,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"History(meta={self.meta!r}, ops=<{len(self.ops)} ops>, "
            f"phases={[p.name for p in self.phases]!r}, faults=<{len(self.faults)} faults>, "
            f"reads=<{len(self.reads)} reads>)"
        )

    def ops_by_outcome(self, outcome: Outcome | str) -> list[Op]:
        """All ops with the given outcome, in issue order."""
        return [op for op in self.ops if op.outcome == outcome]

    def acknowledged(self) -> list[Op]:
        """All ops the service acknowledged (outcome ``ok``)."""
        return self.ops_by_outcome(Outcome.OK)

    def ops_in_phase(self, name: str) -> list[Op]:
        """All ops recorded with phase ``name``, in issue order."""
        return [op for op in self.ops if op.phase == name]

    def phase_names(self) -> list[str]:
        """Phase names in order: marked phases first (by mark order), then any
        phase that only appears on ops (by first appearance)."""
        names = dict.fromkeys(p.name for p in self.phases)
        for phase in dict.fromkeys(op.phase for op in self.ops):
            if phase not in names:
                names[phase] = None
        return list(names)

    @property
    def current_phase(self) -> str | None:
        """The name of the most recently marked phase (None before any mark)."""
        return self.phases[-1].name if self.phases else None

    def phase_at(self, t_us: int) -> str | None:
        """The phase in force at ``t_us`` according to the marks (None before the first)."""
        marks = sorted(self.phases, key=lambda p: p.at_us)
        i = bisect_right([p.at_us for p in marks], t_us)
        return marks[i - 1].name if i else None

    # ------------------------------------------------------------------ files

    def write_jsonl(self, path: str | os.PathLike[str]) -> None:
        """Write the history in the JSONL format described in the module docstring."""
        reserved = {"type", "format"} & self.meta.keys()
        if reserved:
            raise ValueError(f"meta may not use the reserved keys {sorted(reserved)}")
        head = json.dumps({"type": "meta", "format": FORMAT_VERSION, **self.meta}, separators=(",", ":"))
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(head + "\n")
            for p in self.phases:
                f.write(json.dumps({"type": "phase", "name": p.name, "at": p.at_us}, separators=(",", ":")))
                f.write("\n")
            for w in self.faults:
                rec = {
                    "type": "fault",
                    "name": w.name,
                    "start": w.start_us,
                    "end": w.end_us,
                    "detail": w.detail,
                }
                f.write(json.dumps(rec, separators=(",", ":")))
                f.write("\n")
            line = _op_line
            chunk: list[str] = []
            for i, op in enumerate(self.ops):
                try:
                    chunk.append(line(op))
                except (TypeError, ValueError, KeyError) as e:
                    raise ValueError(f"op #{i} ({op!r}) cannot be written: {e!r}") from e
                if len(chunk) >= 8192:
                    f.write("".join(chunk))
                    chunk.clear()
            f.write("".join(chunk))
            for r in self.reads:
                f.write(json.dumps(r.to_json(), separators=(",", ":")))
                f.write("\n")

    @classmethod
    def read_jsonl(cls, path: str | os.PathLike[str]) -> History:
        """Read a history written by :meth:`write_jsonl`.

        Raises ValueError naming the (1-based) line number on malformed input or
        an unsupported format version.
        """
        gc_was_enabled = gc.isenabled()
        gc.disable()  # a million new tracked objects would trigger many useless GC passes
        try:
            with open(path, encoding="utf-8") as f:
                return cls._read(f, os.fspath(path))
        finally:
            if gc_was_enabled:
                gc.enable()

    @classmethod
    def _read(cls, lines: Iterable[str], where: str) -> History:
        scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
        outcomes = _OUTCOMES
        make = _make_op
        hist = cls()
        ops = hist.ops
        append = ops.append
        lineno = 0
        seen_meta = False
        line = ""
        try:
            for lineno, raw in enumerate(lines, 1):  # noqa: B007 - lineno is used in the handler
                line = raw.rstrip("\r\n")
                if not line or line.isspace():
                    continue
                try:
                    try:
                        rec, end = scan(line, 0)
                    except StopIteration:  # the raw scanner's way of saying "no JSON value here"
                        json.loads(line)  # raises JSONDecodeError with a precise message
                        raise ValueError("invalid JSON") from None
                except json.JSONDecodeError as e:
                    raise ValueError(f"invalid JSON ({e.msg} at column {e.colno})") from None
                if end != len(line) and not line[end:].isspace():
                    raise ValueError(f"unexpected data after the JSON object at column {end + 1}")
                if type(rec) is not dict:
                    raise ValueError(f"expected a JSON object, got {type(rec).__name__}")
                kind = rec.get("type")
                if kind == "op":
                    id_ = rec["id"]
                    key = rec["key"]
                    seq = rec["seq"]
                    amount = rec["amount"]
                    intended = rec["intended"]
                    start = rec["start"]
                    end_ = rec.get("end")
                    phase = rec["phase"]
                    error = rec.get("error")
                    partition = rec.get("partition")
                    offset = rec.get("offset")
                    outcome = outcomes.get(rec["outcome"])  # type: ignore[call-overload]
                    if not (
                        type(id_) is str
                        and type(key) is str
                        and type(seq) is int
                        and type(amount) is int
                        and type(intended) is int
                        and type(start) is int
                        and (end_ is None or type(end_) is int)
                        and type(phase) is str
                        and (error is None or type(error) is str)
                        and (partition is None or type(partition) is int)
                        and (offset is None or type(offset) is int)
                        and outcome is not None
                    ):
                        raise ValueError(_describe_bad_op(rec))
                    if not seen_meta:
                        raise ValueError("the first record must be the meta record")
                    append(
                        make(
                            id_,
                            key,
                            seq,
                            amount,
                            intended,
                            start,
                            end_,
                            outcome,
                            phase,
                            error,
                            partition,
                            offset,
                        )
                    )
                elif kind == "meta":
                    if seen_meta:
                        raise ValueError("a second meta record")
                    fmt = rec.get("format")
                    if fmt not in READABLE_FORMATS or type(fmt) is not int:
                        raise ValueError(
                            f"unsupported history format {fmt!r} (this reader understands formats "
                            f"{', '.join(map(str, READABLE_FORMATS))})"
                        )
                    seen_meta = True
                    hist.meta = {k: v for k, v in rec.items() if k not in ("type", "format")}
                elif not seen_meta:
                    raise ValueError("the first record must be the meta record")
                elif kind == "phase":
                    name, at = rec["name"], rec["at"]
                    if type(name) is not str or type(at) is not int:
                        raise ValueError("phase record needs a string 'name' and an integer 'at'")
                    hist.phases.append(PhaseMark(name, at))
                elif kind == "fault":
                    name, start, end_ = rec["name"], rec["start"], rec.get("end")
                    detail = rec.get("detail") or {}
                    if not (type(name) is str and _is_int(start) and _is_opt_int(end_) and isinstance(detail, dict)):
                        raise ValueError(
                            "fault record needs a string 'name', integer 'start', integer-or-null 'end' "
                            "and an object 'detail'"
                        )
                    hist.faults.append(FaultWindow(name, start, end_, detail))
                elif kind == "read":
                    hist.reads.append(_read_record(rec))
                else:
                    raise ValueError(f"unknown record type {kind!r}")
        except KeyError as e:
            raise ValueError(f"{where}: line {lineno}: missing field {e.args[0]!r}: {_clip(line)}") from e
        except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
            raise ValueError(f"{where}: line {lineno}: {e}: {_clip(line)}") from e
        if not seen_meta:
            raise ValueError(f"{where}: line 1: empty history file (no meta record)")
        return hist


def _describe_bad_op(rec: dict[str, Any]) -> str:
    wanted: list[tuple[str, str, Any]] = [
        ("id", "a string", lambda v: type(v) is str),
        ("key", "a string", lambda v: type(v) is str),
        ("seq", "an integer", _is_int),
        ("amount", "an integer", _is_int),
        ("intended", "an integer", _is_int),
        ("start", "an integer", _is_int),
        ("end", "an integer or null", _is_opt_int),
        ("phase", "a string", lambda v: type(v) is str),
        ("error", "a string or null", _is_opt_str),
        ("partition", "an integer or null", _is_opt_int),
        ("offset", "an integer or null", _is_opt_int),
    ]
    for name, what, ok in wanted:
        if not ok(rec.get(name)):
            return f"op field {name!r} must be {what}, got {rec.get(name)!r}"
    return f"op field 'outcome' must be one of {sorted(_OUTCOMES)}, got {rec.get('outcome')!r}"


def _read_record(rec: dict[str, Any]) -> Read:
    outcome = _OUTCOMES.get(rec["outcome"])
    key, intended, start, end_, phase, error = (rec["key"], rec["intended"], rec["start"], rec.get("end"),
                                                rec["phase"], rec.get("error"))
    found, value, count, version = rec.get("found", False), rec.get("value"), rec.get("count"), rec.get("version")
    if not (type(key) is str and _is_int(intended) and _is_int(start) and _is_opt_int(end_) and type(phase) is str
            and _is_opt_str(error) and type(found) is bool and _is_opt_int(value) and _is_opt_int(count)
            and _is_opt_int(version) and outcome is not None):
        raise ValueError("read record needs a string 'key' and 'phase', integer 'intended' and 'start', "
                         "integer-or-null 'end', 'value', 'count' and 'version', a boolean 'found' and an "
                         f"'outcome' of {sorted(_OUTCOMES)}")
    return Read(key, intended, start, end_, outcome, phase, error, found, value, count, version)


def _clip(line: str, limit: int = 200) -> str:
    return line if len(line) <= limit else line[:limit] + "..."
