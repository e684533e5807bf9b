"""Link faults through Toxiproxy: toxics on one link or a group of links, a link taken down.

``links`` is a pattern or a list of patterns (:mod:`chaos.faults.targets`): a glob over the link names
(``client-ingest``, ``ingest-kafka-1..3``, ``projector-kafka-1..3``, ``projector-postgres``, ...), such as
``"ingest-kafka-*"`` (every link from the ingest service to Kafka) or ``"*-kafka-*"`` (every client link
to Kafka); or ``"<from>-><to>"`` over services, roles and ``kafka``/``postgres``/``client``, such as
``"sink->postgres"`` or ``"entry->kafka"``. The toxic goes onto every matching link in one step.
``stream`` is the direction: ``downstream`` (server -> client, the default:
delays or cuts answers) or ``upstream`` (client -> server: delays or cuts requests). ``toxicity`` is
the probability that a *connection* is affected (Toxiproxy decides per connection).

Toxiproxy applies a new toxic to connections opened afterwards and, for most toxics, to open ones too;
connections opened between a proxy's creation and a toxic's addition can escape it (Toxiproxy issue
148), which is why the environment creates the proxies before any client starts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chaos.faults.base import Fault
from chaos.faults.targets import link_patterns, links_matching
from chaos.toxiproxy_client import STREAMS, validate_toxic

if TYPE_CHECKING:
    from chaos.env import Environment

_IDS = itertools.count(1)


class Toxic(Fault):
    """Any Toxiproxy toxic on every link matching ``links``, in one step."""

    name = "toxic"

    def __init__(self, links: str | Sequence[str], type_: str, attributes: dict[str, int], *,
                 stream: str = "downstream", toxicity: float = 1.0) -> None:
        super().__init__()
        self.links = link_patterns(links)
        validate_toxic(type_, attributes, stream, toxicity)
        self.type_, self.attributes = type_, dict(attributes)
        self.stream, self.toxicity = stream, toxicity
        # unique per fault object: two faults of one type on one link never heal each other's toxic
        self.toxic_name = f"chaos_{type_}_{stream}_{next(_IDS)}"

    def validate(self, env: Environment) -> None:
        links_matching(env, self.links)

    def _inject(self, env: Environment) -> None:
        names = links_matching(env, self.links)
        self.resolved = {"links": []}
        for link in names:
            env.toxiproxy.add_toxic(link, self.toxic_name, self.type_, self.attributes, self.stream,
                                    self.toxicity)
            self.resolved["links"].append(link)

    def _heal(self, env: Environment) -> None:
        errors = []
        for link in self.resolved.get("links", []):
            try:
                env.toxiproxy.remove_toxic(link, self.toxic_name)
            except Exception as exc:
                errors.append(f"{link}: {exc}")
        if errors:
            raise RuntimeError(f"could not remove toxic {self.toxic_name} from {'; '.join(errors)}")

    def params(self) -> dict[str, Any]:
        links: str | list[str] = self.links[0] if len(self.links) == 1 else self.links
        return {"links": links, "type": self.type_, "attributes": self.attributes, "stream": self.stream,
                "toxicity": self.toxicity}


def _stream(stream: str) -> str:
    if stream not in STREAMS:
        raise ValueError(f"stream {stream!r} is not one of {', '.join(STREAMS)}")
    return stream


class Latency(Toxic):
    """Every chunk of data waits ``latency_ms`` (+- ``jitter_ms``): a slow or distant network."""

    name = "latency"

    def __init__(self, links: str | Sequence[str], latency_ms: int, jitter_ms: int = 0, *,
                 stream: str = "downstream", toxicity: float = 1.0) -> None:
        super().__init__(links, "latency", {"latency": latency_ms, "jitter": jitter_ms}, stream=_stream(stream),
                         toxicity=toxicity)


class Bandwidth(Toxic):
    """At most ``rate_kbps`` kilobytes per second: a saturated or throttled link."""

    name = "bandwidth"

    def __init__(self, links: str | Sequence[str], rate_kbps: int, *, stream: str = "downstream",
                 toxicity: float = 1.0) -> None:
        super().__init__(links, "bandwidth", {"rate": rate_kbps}, stream=_stream(stream), toxicity=toxicity)


class BlackHole(Toxic):
    """Data is swallowed and nothing answers; after ``timeout_ms`` (0: never) the connection is closed.

    Models a network that silently drops packets (a dead switch port, a firewall dropping, a peer
    gone without a RST): clients learn of it only from their own timeouts."""

    name = "black_hole"

    def __init__(self, links: str | Sequence[str], timeout_ms: int = 0, *, stream: str = "downstream",
                 toxicity: float = 1.0) -> None:
        super().__init__(links, "timeout", {"timeout": timeout_ms}, stream=_stream(stream), toxicity=toxicity)


class ResetPeer(Toxic):
    """Connections are reset (TCP RST) after ``timeout_ms``: a crashing peer or a load balancer reset."""

    name = "reset_peer"

    def __init__(self, links: str | Sequence[str], timeout_ms: int = 0, *, stream: str = "downstream",
                 toxicity: float = 1.0) -> None:
        super().__init__(links, "reset_peer", {"timeout": timeout_ms}, stream=_stream(stream),
                         toxicity=toxicity)


class SlowClose(Toxic):
    """The close of a connection is delayed by ``delay_ms``: half-closed sockets, lingering peers."""

    name = "slow_close"

    def __init__(self, links: str | Sequence[str], delay_ms: int, *, stream: str = "downstream",
                 toxicity: float = 1.0) -> None:
        super().__init__(links, "slow_close", {"delay": delay_ms}, stream=_stream(stream), toxicity=toxicity)


class Slicer(Toxic):
    """Data is cut into pieces of ``average_size`` (+- ``size_variation``) bytes, ``delay_us`` apart:
    fragmented, trickling packets (tiny MTU, Nagle interplay) that expose framing bugs."""

    name = "slicer"

    def __init__(self, links: str | Sequence[str], average_size: int, size_variation: int = 0,
                 delay_us: int = 0, *, stream: str = "downstream", toxicity: float = 1.0) -> None:
        if size_variation > average_size:
            raise ValueError(f"size_variation={size_variation} must not exceed average_size={average_size}")
        super().__init__(links, "slicer", {"average_size": average_size, "size_variation": size_variation,
                                           "delay": delay_us}, stream=_stream(stream), toxicity=toxicity)


class LimitData(Toxic):
    """The connection is closed once ``bytes_`` bytes have passed: a peer or proxy dying mid-transfer."""

    name = "limit_data"

    def __init__(self, links: str | Sequence[str], bytes_: int, *, stream: str = "downstream",
                 toxicity: float = 1.0) -> None:
        super().__init__(links, "limit_data", {"bytes": bytes_}, stream=_stream(stream), toxicity=toxicity)


class LinkDown(Fault):
    """The matching links refuse connections and drop open ones (proxy disabled).

    Models a service losing its database or broker outright (a crashed load balancer, a revoked
    security group): fast failures, unlike ``BlackHole``."""

    name = "link_down"

    def __init__(self, links: str | Sequence[str]) -> None:
        super().__init__()
        self.links = link_patterns(links)

    def validate(self, env: Environment) -> None:
        links_matching(env, self.links)

    def _inject(self, env: Environment) -> None:
        names = links_matching(env, self.links)
        self.resolved = {"links": []}
        for link in names:
            env.toxiproxy.set_enabled(link, False)
            self.resolved["links"].append(link)

    def _heal(self, env: Environment) -> None:
        errors = []
        for link in self.resolved.get("links", []):
            try:
                env.toxiproxy.set_enabled(link, True)
            except Exception as exc:
                errors.append(f"{link}: {exc}")
        if errors:
            raise RuntimeError(f"could not enable {'; '.join(errors)}")

    def params(self) -> dict[str, Any]:
        return {"links": self.links[0] if len(self.links) == 1 else self.links}
