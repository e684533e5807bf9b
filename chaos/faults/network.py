"""Link faults through Toxiproxy: toxics on one link or a group of links, a link taken down."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from chaos.faults.base import Fault
from chaos.toxiproxy_client import validate_toxic

if TYPE_CHECKING:
    from chaos.env import Environment


def links_matching(env: Environment, pattern: str) -> list[str]:
    """Link names matching a glob (``ingest-kafka-*``); ValueError naming the links when none match."""
    names = sorted(n for n in env.links if fnmatch.fnmatchcase(n, pattern))
    if not names:
        raise ValueError(f"no link matches {pattern!r}; links: {', '.join(sorted(env.links))}")
    return names


class Toxic(Fault):
    """Any Toxiproxy toxic on every link matching ``links`` (a glob), in one step."""

    name = "toxic"

    def __init__(self, links: str, type_: str, attributes: dict[str, int], *, stream: str = "downstream",
                 toxicity: float = 1.0) -> None:
        super().__init__()
        validate_toxic(type_, attributes, stream, toxicity)
        self.links, self.type_, self.attributes = links, type_, attributes
        self.stream, self.toxicity = stream, toxicity
        self.toxic_name = f"chaos_{type_}_{stream}"

    def validate(self, env: Environment) -> None:
        links_matching(env, self.links)

    def _inject(self, env: Environment) -> None:
        names = links_matching(env, self.links)
        self.resolved = {"links": names}
        for link in names:
            env.toxiproxy.add_toxic(link, self.toxic_name, self.type_, self.attributes, self.stream,
                                    self.toxicity)

    def _heal(self, env: Environment) -> None:
        for link in self.resolved.get("links", []):
            env.toxiproxy.remove_toxic(link, self.toxic_name)

    def params(self) -> dict[str, Any]:
        return {"links": self.links, "type": self.type_, "attributes": self.attributes, "stream": self.stream,
                "toxicity": self.toxicity}


class Latency(Toxic):
    """Added latency (with jitter) on the matching links; ``downstream`` delays every answer."""

    name = "latency"

    def __init__(self, links: str, latency_ms: int, jitter_ms: int = 0, *, stream: str = "downstream",
                 toxicity: float = 1.0) -> None:
        super().__init__(links, "latency", {"latency": latency_ms, "jitter": jitter_ms}, stream=stream,
                         toxicity=toxicity)


class LinkDown(Fault):
    """The matching links refuse connections and drop open ones (proxy disabled)."""

    name = "link_down"

    def __init__(self, links: str) -> None:
        super().__init__()
        self.links = links

    def validate(self, env: Environment) -> None:
        links_matching(env, self.links)

    def _inject(self, env: Environment) -> None:
        names = links_matching(env, self.links)
        self.resolved = {"links": names}
        for link in names:
            env.toxiproxy.set_enabled(link, False)

    def _heal(self, env: Environment) -> None:
        for link in self.resolved.get("links", []):
            env.toxiproxy.set_enabled(link, True)

    def params(self) -> dict[str, Any]:
        return {"links": self.links}
