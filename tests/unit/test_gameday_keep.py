"""The start-up sweep leaves a kept (``gameday up``) environment alone and still removes every other orphan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chaos.env import LABEL_KEEP, LABEL_OWNER, LABEL_RUN, sweep


@dataclass
class Thing:
    name: str
    labels: dict[str, str]
    removed: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attrs = {"Labels": self.labels}

    def remove(self, **_: Any) -> None:
        self.removed = True


class Listing:
    def __init__(self, items: list[Thing]) -> None:
        self.items = items

    def list(self, **kw: Any) -> list[Thing]:
        want = kw["filters"]["label"]
        key, _, value = want.partition("=")
        return [t for t in self.items if key in t.labels and (not value or t.labels[key] == value)]


class Client:
    def __init__(self, containers: list[Thing], networks: list[Thing], volumes: list[Thing]) -> None:
        self.containers, self.networks, self.volumes = Listing(containers), Listing(networks), Listing(volumes)


def dead_owner() -> str:
    import socket

    return f"{socket.gethostname()}:999999999"  # this host, a pid that cannot exist


def test_sweep_keeps_kept_environments_and_removes_other_orphans() -> None:
    kept = {LABEL_RUN: "kept1", LABEL_OWNER: dead_owner(), LABEL_KEEP: "gameday"}
    orphan = {LABEL_RUN: "orph1", LABEL_OWNER: dead_owner()}
    c = [Thing("kept-kafka-1", kept), Thing("orph-kafka-1", orphan)]
    n = [Thing("pc-kept1", kept), Thing("pc-orph1", orphan)]
    v = [Thing("kept-vol", kept), Thing("orph-vol", orphan)]
    assert sweep(Client(c, n, v)) == 3  # type: ignore[arg-type]
    assert [t.removed for t in c + n + v] == [False, True, False, True, False, True]
    # gameday down: by run id, kept or not
    assert sweep(Client(c, n, v), run_id="kept1", only_orphans=False) == 3  # type: ignore[arg-type]
    assert all(t.removed for t in c + n + v)
