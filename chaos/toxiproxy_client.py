"""A small typed adapter over toxiproxy-python.

toxiproxy-python keeps the server's address in class attributes of ``APIConsumer`` (one server per
process) and calls the HTTP API through ``requests`` with no timeout. This adapter hides both: each
client holds its own address, every call runs under a process-wide lock with that address swapped in,
and the library's ``requests`` is replaced by a shim that always passes a timeout. Only this module
imports ``toxiproxy``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import toxiproxy.api as _tp_api
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.proxy import Proxy as _TpProxy

_LOCK = threading.RLock()

TOXIC_TYPES: dict[str, tuple[str, ...]] = {
    # type -> accepted attributes (Toxiproxy 2.x)
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
}
STREAMS = ("upstream", "downstream")


class ToxiproxyError(RuntimeError):
    pass


class _TimeoutRequests:
    """Stands in for the ``requests`` module inside toxiproxy.api, adding a timeout to each call."""

    def __init__(self) -> None:
        self.timeout = 5.0

    def get(self, **kw: Any) -> requests.Response:
        return requests.get(timeout=self.timeout, **kw)

    def post(self, **kw: Any) -> requests.Response:
        return requests.post(timeout=self.timeout, **kw)

    def delete(self, **kw: Any) -> requests.Response:
        return requests.delete(timeout=self.timeout, **kw)


_SHIM = _TimeoutRequests()
_tp_api.requests = _SHIM  # type: ignore[assignment]


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str
    upstream: str
    enabled: bool


@dataclass(frozen=True)
class ToxicInfo:
    proxy: str
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]


def validate_toxic(type_: str, attributes: dict[str, Any], stream: str, toxicity: float) -> None:
    """Reject a bad toxic before anything is sent, naming the accepted values."""
    if type_ not in TOXIC_TYPES:
        raise ValueError(f"unknown toxic type {type_!r}; accepted: {', '.join(TOXIC_TYPES)}")
    unknown = set(attributes) - set(TOXIC_TYPES[type_])
    if unknown:
        raise ValueError(
            f"toxic {type_!r} has no attribute(s) {', '.join(sorted(unknown))}; "
            f"accepted: {', '.join(TOXIC_TYPES[type_])}"
        )
    for k, v in attributes.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"toxic attribute {k}={v!r} must be a non-negative integer")
    if stream not in STREAMS:
        raise ValueError(f"stream {stream!r} is not one of {', '.join(STREAMS)}")
    if not 0.0 <= toxicity <= 1.0:
        raise ValueError(f"toxicity {toxicity!r} must be between 0 and 1")


class ToxiproxyClient:
    """One Toxiproxy server, addressed by host and port, every call bounded by ``timeout_s``."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s

    @contextmanager
    def _bound(self) -> Iterator[None]:
        with _LOCK:
            saved = (APIConsumer.host, APIConsumer.port, _SHIM.timeout)
            APIConsumer.host, APIConsumer.port, _SHIM.timeout = self.host, self.port, self.timeout_s
            try:
                yield
            except requests.RequestException as exc:
                raise ToxiproxyError(f"Toxiproxy API at {self.host}:{self.port} failed: {exc}") from exc
            except (NotFound, InvalidToxic, ProxyExists) as exc:
                raise ToxiproxyError(f"Toxiproxy refused the call: {exc}") from exc
            finally:
                APIConsumer.host, APIConsumer.port, _SHIM.timeout = saved

    def version(self) -> str:
        with self._bound():
            content = APIConsumer.get("/version").content
        return content.decode() if isinstance(content, bytes) else str(content)

    def proxies(self) -> dict[str, ProxyInfo]:
        with self._bound():
            raw = APIConsumer.get("/proxies").json()
        return {
            name: ProxyInfo(name=name, listen=v["listen"], upstream=v["upstream"], enabled=v["enabled"])
            for name, v in raw.items()
        }

    def create_proxy(self, name: str, listen: str, upstream: str) -> None:
        with self._bound():
            APIConsumer.post("/proxies", json={"name": name, "listen": listen, "upstream": upstream,
                                               "enabled": True})

    def _proxy(self, name: str) -> _TpProxy:
        return _TpProxy(name=name, upstream="", enabled=True, listen="")

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self._bound():
            proxy = self._proxy(name)
            if enabled:
                proxy.enable()
            else:
                proxy.disable()

    def add_toxic(self, proxy: str, name: str, type_: str, attributes: dict[str, int],
                  stream: str = "downstream", toxicity: float = 1.0) -> None:
        validate_toxic(type_, attributes, stream, toxicity)
        with self._bound():
            self._proxy(proxy).add_toxic(name=name, type=type_, stream=stream, toxicity=toxicity,
                                         attributes=attributes)

    def remove_toxic(self, proxy: str, name: str) -> bool:
        """Remove a toxic; False when it was not there (healing is idempotent)."""
        try:
            with self._bound():
                self._proxy(proxy).destroy_toxic(name)
        except ToxiproxyError as exc:
            if "not found" in str(exc).lower():
                return False
            raise
        return True

    def toxics(self, proxy: str) -> list[ToxicInfo]:
        with self._bound():
            raw = APIConsumer.get(f"/proxies/{proxy}/toxics").json()
        return [ToxicInfo(proxy=proxy, name=t["name"], type=t["type"], stream=t["stream"],
                          toxicity=float(t["toxicity"]), attributes=dict(t["attributes"])) for t in raw]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        with self._bound():
            APIConsumer.post("/reset")
