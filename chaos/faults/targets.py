"""Targets resolved by role at injection time."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.env import Environment

BROKER_NODES = ("kafka-1", "kafka-2", "kafka-3")


class Target:
    def validate(self, env: Environment) -> None:
        pass

    def resolve(self, env: Environment) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Node(Target):
    """A node by name: kafka-1..3, postgres, toxiproxy, ingest, projector-N."""

    name: str

    def validate(self, env: Environment) -> None:
        known = env.node_names()
        if self.name not in known:
            raise ValueError(f"unknown node {self.name!r}; accepted: {', '.join(sorted(known))}")

    def resolve(self, env: Environment) -> str:
        return self.name


@dataclass(frozen=True)
class LeaderOf(Target):
    """The broker leading a partition of the current deployment's topic."""

    partition: int = 0

    def validate(self, env: Environment) -> None:
        if env.deployment is None:
            raise ValueError("LeaderOf needs a deployed pipeline (its topic)")
        if not 0 <= self.partition < env.settings.topic_partitions:
            raise ValueError(f"partition {self.partition} out of range 0..{env.settings.topic_partitions - 1}")

    def resolve(self, env: Environment) -> str:
        assert env.deployment is not None
        return f"kafka-{env.partition_leader(env.deployment.topic, self.partition)}"


@dataclass(frozen=True)
class AnyBroker(Target):
    seed: int = 0

    def resolve(self, env: Environment) -> str:
        return random.Random(self.seed).choice(BROKER_NODES)
