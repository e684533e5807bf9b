"""A record the adapter cannot decode gives a verdict, never a crash (truth.decode_topic, checkers.check_decoding)."""

from __future__ import annotations

from collections.abc import Sequence

from chaos.adapter import RecordRef
from chaos.checkers import check_decoding
from chaos.env.kafka import RawRecord
from chaos.truth import decode_topic
from examples.orders.adapter import OrdersTruth, _pb2
from system_under_test.adapter import RefpipeTruth


def raw(offset: int, value: bytes | None) -> RawRecord:
    return RawRecord(partition=0, offset=offset, key=b"k", value=value, headers=[])


def test_json_records_that_do_not_decode_are_listed_with_where_and_why() -> None:
    good = b'{"event_id":"e1","key":"k1","seq":1,"amount":5}'
    protobuf = _pb2().OrderPlaced(order_id="o1", customer="c1").SerializeToString()
    records, bad = decode_topic(RefpipeTruth(), "events", [raw(0, good), raw(1, protobuf), raw(2, b"{}"), raw(3, None)])
    assert [(r.event_id, r.key, r.offset) for r in records] == [("e1", "k1", 0)]
    assert [b["offset"] for b in bad] == [1, 2, 3] and all(b["why"].startswith("not a refpipe event") for b in bad)
    v = check_decoding({"events": bad}, {"events": len(records)})
    assert not v.ok and v.counts["undecodable"] == 3 and v.counts["events.undecodable"] == 3
    assert "3 records the adapter cannot decode, in events (3)" in v.message
    assert v.examples[0] == {"topic": "events", "partition": 0, "offset": 1, "why": bad[0]["why"]}


def test_protobuf_records_of_the_wrong_kind_or_garbage() -> None:
    pb2 = _pb2()
    placed = pb2.OrderPlaced(order_id="o1", customer="c1").SerializeToString()
    records, bad = decode_topic(OrdersTruth(), "orders.placed", [raw(0, placed), raw(1, b"\xff\xff\xff"),
                                                                 raw(2, b'{"event_id":"e1"}')])
    assert [r.event_id for r in records] == ["o1"] and [b["offset"] for b in bad] == [1, 2]
    assert check_decoding({"orders.placed": []}, {"orders.placed": 1}).ok


class Broken:
    """An adapter whose decode has a bug: it raises something other than UndecodableRecord."""

    def decode(self, topic: str, key: bytes | None, value: bytes | None,
               headers: Sequence[tuple[str, bytes | None]]) -> RecordRef:
        raise KeyError("event_id")


def test_an_adapter_bug_in_decode_is_reported_not_raised() -> None:
    records, bad = decode_topic(Broken(), "events", [raw(7, b"x")])  # type: ignore[arg-type]
    assert records == [] and bad == [{"partition": 0, "offset": 7, "why": "decode raised KeyError: 'event_id'"}]
