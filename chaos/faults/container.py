"""Container faults through the engine: kill, stop, pause, restart, rolling restart.

Each acts on every node its target resolves to (``Kill("majority")`` kills two brokers) and only on
containers that carry this run's label (``Environment.container`` refuses the others). Heal brings
every touched container back to running; it does not wait for the service to be ready again (that is
``Environment.wait_recovered``), except ``RollingRestart``, whose whole point is the wait between steps.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from chaos.env.wait import wait_until
from chaos.faults.base import Fault
from chaos.faults.targets import Brokers, Target, deployment_name, target

if TYPE_CHECKING:
    from docker.models.containers import Container

    from chaos.env import Environment

log = logging.getLogger("chaos.faults")


class ContainerHost(Protocol):
    """What bringing a node back needs of an environment: this suite's, or a game day's external one."""

    def container(self, name: str) -> Any: ...


def ensure_running(env: ContainerHost, node: str) -> None:
    """Bring ``node`` back to running: unpause it, or start it when it is stopped or killed."""
    c = env.container(node)
    if c.status == "paused":
        c.unpause()
    elif c.status != "running":
        c.start()


class ContainerFault(Fault):
    """A fault acting on the containers its target resolves to (through ``env.container``)."""

    def __init__(self, target_: Target | str) -> None:
        super().__init__()
        self.target = target(target_)

    def validate(self, env: Environment) -> None:
        self.target.validate(env)

    def _nodes(self, env: Environment) -> list[str]:
        nodes = self.target.nodes(env)
        for n in nodes:
            env.container(n)  # unknown or foreign containers fail here, before anything is done
        self.resolved = {"nodes": nodes}
        return nodes

    def _heal(self, env: Environment) -> None:
        errors = []
        for node in self.resolved.get("nodes", []):
            try:
                ensure_running(env, node)
            except KeyError:
                continue  # removed meanwhile (the pipeline was undeployed): nothing to bring back
            except Exception as exc:
                errors.append(f"{node}: {exc}")
        if errors:
            raise RuntimeError(f"{self.name}: could not bring back {'; '.join(errors)}")

    def params(self) -> dict[str, Any]:
        return {"target": str(self.target)}


class Kill(ContainerFault):
    """SIGKILL the target(s); heal starts them again (same container, same data, same ports).

    Models a crash: a process killed by the OOM killer, a kernel panic, a pulled plug."""

    name = "kill"

    def __init__(self, target_: Target | str, signal: str = "SIGKILL") -> None:
        super().__init__(target_)
        if signal not in ("SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT"):
            raise ValueError(f"signal {signal!r} not accepted; accepted: SIGKILL, SIGTERM, SIGINT, SIGQUIT")
        self.signal = signal

    def _inject(self, env: Environment) -> None:
        for node in self._nodes(env):
            env.container(node).kill(signal=self.signal)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "signal": self.signal}


KillAndRestart = Kill  # the name the first experiments used


class KillInTransaction(Kill):
    """SIGKILL the target(s) while a Kafka transaction of theirs is open; heal starts them again.

    Models a consume-transform-produce stage that crashes between writing a transaction's records and
    committing it: the records are in the log, and only the transaction's abort (when the restarted
    instance takes over its transactional id, or the transaction times out) tells readers to skip them.
    A kill at a random moment lands there only sometimes (a transaction lasts milliseconds on a fast link),
    so this one waits, bounded by ``transaction_open_timeout_s``, until the brokers report a transaction
    ``Ongoing`` whose transactional id matches ``transactional_id`` (a glob; ``{deployment}`` is the
    deployment's tag), then kills. When none opens in time (a stage that does not use transactions) it
    kills anyway; ``resolved["open_transactions"]`` says which transactions were open, empty then."""

    name = "kill_in_transaction"

    def __init__(self, target_: Target | str, transactional_id: str = "*{deployment}*",
                 signal: str = "SIGKILL") -> None:
        super().__init__(target_, signal)
        if not isinstance(transactional_id, str) or not transactional_id:
            raise ValueError(f"transactional_id must be a glob such as '*{{deployment}}*', not {transactional_id!r}")
        self.transactional_id = transactional_id

    def validate(self, env: Environment) -> None:
        super().validate(env)
        self._pattern(env)

    def _pattern(self, env: Environment) -> str:
        return deployment_name(env, self.transactional_id, "KillInTransaction transactional_id")

    def _inject(self, env: Environment) -> None:
        pattern = self._pattern(env)
        bound = env.settings.transaction_open_timeout_s
        try:
            open_now = wait_until(lambda: env.open_transactions(pattern), bound,
                                  f"an open transaction matching {pattern!r}", interval_s=0.02)
        except TimeoutError:
            log.warning("kill_in_transaction: no transaction matching %r opened within %.0f s; killing anyway",
                        pattern, bound)
            open_now = []
        super()._inject(env)
        self.resolved["open_transactions"] = open_now

    def params(self) -> dict[str, Any]:
        return {**super().params(), "transactional_id": self.transactional_id}


class Stop(ContainerFault):
    """Graceful stop (SIGTERM, SIGKILL after ``timeout_s``); heal starts the target(s) again.

    Models a deployment or a node drained by an orchestrator: Kafka's controlled shutdown moves
    leadership away first, the projector finishes its batch and leaves the group."""

    name = "stop"

    def __init__(self, target_: Target | str, timeout_s: int | None = None) -> None:
        super().__init__(target_)
        if timeout_s is not None and timeout_s < 0:
            raise ValueError(f"timeout_s={timeout_s} must be >= 0")
        self.timeout_s = timeout_s

    def _inject(self, env: Environment) -> None:
        grace = env.settings.container_stop_timeout_s if self.timeout_s is None else self.timeout_s
        for node in self._nodes(env):
            env.container(node).stop(timeout=grace)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "timeout_s": self.timeout_s}


class Pause(ContainerFault):
    """Freeze every process of the target(s) (cgroup freezer, ``docker pause``); heal unpauses.

    Models a stop-the-world GC pause, a VM descheduled or live-migrated, a process stopped by SIGSTOP:
    connections stay open, nothing answers."""

    name = "pause"

    def _inject(self, env: Environment) -> None:
        for node in self._nodes(env):
            env.container(node).pause()


class Restart(ContainerFault):
    """Restart the target(s) once, now: graceful (SIGTERM then start) or ``hard`` (SIGKILL then start).

    An event rather than a state: the container is running again when ``inject`` returns; heal only
    makes sure of it. Models a crash-looping or redeployed service, a database failover-in-place."""

    name = "restart"

    def __init__(self, target_: Target | str, hard: bool = False, timeout_s: int | None = None) -> None:
        super().__init__(target_)
        self.hard = hard
        self.timeout_s = timeout_s

    def _inject(self, env: Environment) -> None:
        grace = env.settings.container_stop_timeout_s if self.timeout_s is None else self.timeout_s
        for node in self._nodes(env):
            _restart(env, node, self.hard, grace)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "hard": self.hard, "timeout_s": self.timeout_s}


def _restart(env: Environment, node: str, hard: bool, grace: int) -> None:
    c: Container = env.container(node)
    if hard:
        if c.status in ("running", "paused"):
            c.kill(signal="SIGKILL")
        c.start()
    else:
        c.restart(timeout=grace)


class RollingRestart(ContainerFault):
    """Restart the target(s) one at a time (default: every broker), waiting between steps until the
    restarted broker is registered again and, with a deployed pipeline, every partition of its topic
    has a full ISR (each wait bounded by ``fault_step_timeout_s``). ``inject`` returns when the roll is
    done. Models a rolling upgrade or configuration change of the Kafka cluster."""

    name = "rolling_restart"

    def __init__(self, target_: Target | str | None = None, hard: bool = False) -> None:
        super().__init__(target_ if target_ is not None else Brokers())
        self.hard = hard
        self.steps: list[dict[str, Any]] = []

    def _inject(self, env: Environment) -> None:
        nodes = self._nodes(env)
        grace = env.settings.container_stop_timeout_s
        for node in nodes:
            started = time.monotonic()
            _restart(env, node, self.hard, grace)
            _wait_rejoined(env, node)
            self.steps.append({"node": node, "s": round(time.monotonic() - started, 2)})
            log.info("rolling restart: %s back after %.1f s", node, time.monotonic() - started)
        self.resolved["steps"] = self.steps

    def params(self) -> dict[str, Any]:
        return {**super().params(), "hard": self.hard}


def _wait_rejoined(env: Environment, node: str) -> None:
    from chaos.env import wait_until

    s = env.settings
    if not node.startswith("kafka-"):
        wait_until(lambda: env.container(node).status == "running", s.fault_step_timeout_s,
                   f"{node} to run again", s.poll_interval_s)
        return
    broker = int(node.split("-")[1])

    def answering() -> bool:
        # Asked on its own listener: the answer comes from the restarted process itself (the cluster's
        # cached view may still list the old incarnation), and it must count itself among the live.
        return broker in env.broker_metadata(broker).brokers

    wait_until(answering, s.fault_step_timeout_s, f"{node} to answer and register again", s.poll_interval_s)
    if env.deployment is not None:
        for topic in env.deployment.topics.values():
            wait_until(lambda topic=topic: env.fully_replicated(topic), s.fault_step_timeout_s,  # type: ignore[misc]
                       f"every partition of {topic} back to a full ISR after restarting {node}", s.poll_interval_s)


class SecondFleet(Fault):
    """A second fleet of a consuming service (``service``: a name or a role, default ``sink``) on the same
    topics and tables: ``replicas`` more replicas in their own consumer group, reading from the earliest
    offset, writing into the deployed pipeline's schema; heal stops and removes them.

    Models a blue/green deployment whose new fleet overlaps the old one, or a reprocessing (backfill)
    job replaying the topic into the live tables: two writers apply the same events, and near the head
    of the log different events of the same key, at the same time. Idempotent, transactional writes
    make that harmless; a read-modify-write outside the transaction loses updates."""

    name = "second_fleet"

    def __init__(self, replicas: int = 1, fleet: str = "b", service: str = "sink") -> None:
        super().__init__()
        self.service = service
        if not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"replicas={replicas!r} must be an integer >= 1")
        if not fleet.isidentifier():
            raise ValueError(f"fleet={fleet!r} must be a plain identifier (letters, digits, _)")
        self.replicas, self.fleet = replicas, fleet

    def _service(self, env: Environment) -> str:
        consuming = [s.name for s in env.topology.services(self.service) if s.consumes]
        if not consuming:
            raise ValueError(f"SecondFleet: no consuming service is named or has the role {self.service!r}")
        return consuming[0]

    def validate(self, env: Environment) -> None:
        if env.deployment is None:
            raise ValueError("SecondFleet needs a deployed pipeline; call env.deploy(name) first")
        self._service(env)

    def _inject(self, env: Environment) -> None:
        svc = self._service(env)
        self.resolved = {"nodes": [f"{svc}-{self.fleet}-{j}" for j in range(1, self.replicas + 1)]}
        self.resolved["nodes"] = env.start_fleet(svc, self.fleet, self.replicas)

    def _heal(self, env: Environment) -> None:
        env.stop_nodes(list(self.resolved.get("nodes", [])))

    def params(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "fleet": self.fleet, "service": self.service}
