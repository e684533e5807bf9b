"""The KRaft cluster id never begins with '-' (``kafka-storage format -t <id>`` would read it as an option)."""

from __future__ import annotations

import uuid

import pytest

from chaos import env
from chaos.env import environment


def test_an_id_that_would_begin_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xF8 as the first byte encodes to '-' in base64url: the old code returned such ids 1 time in 64.
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))
    plain = uuid.UUID(bytes=b"\x10" + bytes(15))
    draws = iter([dashed, dashed, plain])
    monkeypatch.setattr(environment.uuid, "uuid4", lambda: next(draws))
    cid = env.kraft_cluster_id()
    assert not cid.startswith("-")
    assert len(cid) == 22 and cid == "EAAAAAAAAAAAAAAAAAAAAA"


def test_ids_are_22_base64url_characters() -> None:
    for _ in range(2000):  # P(no dashed draw among 2000) is negligible: the loop really is exercised
        cid = env.kraft_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert set(cid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
