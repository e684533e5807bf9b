"""The Fault protocol and the per-environment registry of active faults."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaos.env import Environment

log = logging.getLogger("chaos.faults")
_REGISTRY: dict[str, list[Fault]] = {}
_LOCK = threading.Lock()


class Fault(ABC):
    """Base class. Subclasses implement ``_inject`` / ``_heal`` and may override ``validate``."""

    name: str = "fault"

    def __init__(self) -> None:
        self.injected_at: float | None = None
        self.healed_at: float | None = None
        self.resolved: dict[str, Any] = {}

    def validate(self, env: Environment) -> None:
        """Raise ValueError before anything is injected if the fault cannot apply to ``env``."""
        return None

    @abstractmethod
    def _inject(self, env: Environment) -> None: ...

    @abstractmethod
    def _heal(self, env: Environment) -> None: ...

    def inject(self, env: Environment) -> None:
        self.validate(env)
        with _LOCK:
            _REGISTRY.setdefault(env.run_id, []).append(self)
        self.healed_at = None
        self.injected_at = time.time()
        try:
            self._inject(env)
        except BaseException:
            self.heal(env)
            raise
        log.info("injected %s %s", self.name, self.resolved)

    def heal(self, env: Environment) -> None:
        """Idempotent: healing a healed (or never injected) fault does nothing."""
        if self.injected_at is None or self.healed_at is not None:
            return
        try:
            self._heal(env)
        finally:
            self.healed_at = time.time()
            with _LOCK, contextlib.suppress(ValueError):
                _REGISTRY.get(env.run_id, []).remove(self)
            log.info("healed %s %s", self.name, self.resolved)

    @contextlib.contextmanager
    def active(self, env: Environment) -> Iterator[Fault]:
        self.inject(env)
        try:
            yield self
        finally:
            self.heal(env)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.params(), "resolved": self.resolved}

    def params(self) -> dict[str, Any]:
        return {}


def active_faults(env: Environment) -> list[Fault]:
    with _LOCK:
        return list(_REGISTRY.get(env.run_id, []))


def heal_all(env: Environment) -> list[str]:
    """The safety net: heal every fault still active on ``env``; returns what it healed."""
    healed = []
    for fault in reversed(active_faults(env)):
        try:
            fault.heal(env)
            healed.append(fault.name)
        except Exception:
            log.exception("healing %s failed", fault.name)
    return healed
