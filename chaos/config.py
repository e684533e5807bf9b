"""One settings object for the whole suite.

Every bound the suite waits on is a named field here, so a reader can find and change it in one place.
Values come from environment variables (``CHAOS_<FIELD NAME IN UPPER CASE>``) and, under pytest, from
command-line options and ini keys of the same name (see ``chaos.pytest_plugin``). Precedence: command
line > environment > ini > default.

A project can also keep its settings in its ``pyproject.toml``, in a ``[tool.pipeline-chaos]`` table with
the same names (found from the working directory upwards); they rank below the environment (and below
pytest's ini keys), above the defaults. That is where a repository names its pipeline for every entry
point at once (pytest, ``gameday``, ``python -m chaos.images``)::

    [tool.pipeline-chaos]
    pipeline = "myteam_chaos.adapter:PIPELINE"

The Kafka timings are the ones the test cluster runs with. They set every recovery budget:
a killed broker is fenced after ``kafka_broker_session_timeout_ms``; a lagging follower leaves the ISR
after ``kafka_replica_lag_time_max_ms``; a killed consumer's partitions move after
``consumer_session_timeout_ms``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

if TYPE_CHECKING:
    from chaos.adapter import Pipeline

ENV_PREFIX = "CHAOS_"
IMAGE_SOURCES = ("auto", "local", "official")
TIERS = ("gate", "nightly", "matrix")
HYPOTHESIS_PROFILES = ("dev", "ci", "nightly")  # chaos.schedules.PROFILES


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipeline-chaos"


@dataclass(frozen=True)
class Settings:
    # --- the pipeline -------------------------------------------------------------------------
    pipeline: str = field(default="", metadata={
        "help": "the pipeline's adapter: module:attr of a chaos.adapter.Pipeline, or an installed entry point name"})

    # --- images -------------------------------------------------------------------------------
    image_source: str = field(default="auto", metadata={"help": "auto | local | official"})
    image_kafka: str = field(default="", metadata={"help": "override the Kafka image reference"})
    image_postgres: str = field(default="", metadata={"help": "override the Postgres image reference"})
    image_toxiproxy: str = field(default="", metadata={"help": "override the Toxiproxy image reference"})
    image_nethelper: str = field(default="", metadata={
        "help": "override the fault helper image (iptables, tc, chaos-netem; see chaos.images)"})
    cache_dir: Path = field(default_factory=_default_cache_dir, metadata={"help": "build cache"})
    build_timeout_s: float = field(default=1800.0, metadata={
        "help": "bound on one step of building an image (a download, a Maven build, a docker build)"})
    registry_probe_timeout_s: float = field(default=20.0, metadata={"help": "bound on a registry probe"})

    # --- engine and environment -----------------------------------------------------------------
    docker_timeout_s: float = field(default=60.0, metadata={"help": "bound on one engine API call"})
    env_start_timeout_s: float = field(default=120.0, metadata={"help": "bound on starting the topology"})
    pipeline_ready_timeout_s: float = field(default=60.0, metadata={
        "help": "bound on a deployment's services passing their readiness checks"})
    container_stop_timeout_s: int = field(default=5, metadata={"help": "grace before SIGKILL on stop"})
    poll_interval_s: float = field(default=0.2, metadata={"help": "interval between readiness probes"})
    toxiproxy_api_timeout_s: float = field(default=5.0, metadata={"help": "bound on one Toxiproxy API call"})
    replicas: str = field(default="", metadata={
        "help": "replicas per service, overriding the adapter's (e.g. projector=3,sink=2)"})
    topic_partitions: int = field(default=6, metadata={
        "help": "partitions of each topic whose adapter leaves the number open"})
    kafka_log_disk_mb: int = field(default=256, metadata={
        "help": "size of each broker's own log filesystem (a tmpfs volume; DiskFull fills it); 0: no own disk"})

    # --- faults ---------------------------------------------------------------------------------
    helper_timeout_s: float = field(default=30.0, metadata={
        "help": "bound on one fault helper container (iptables/tc/exec) run and on its start"})
    transaction_open_timeout_s: float = field(default=8.0, metadata={
        "help": "bound on KillInTransaction's wait for an open transaction of its target (then it kills anyway)"})
    fault_step_timeout_s: float = field(default=60.0, metadata={
        "help": "bound on one step of a fault: a broker rejoining in a rolling restart, a row lock taken"})

    # --- Kafka tuning for a test cluster -------------------------------------------------------
    kafka_heap: str = field(default="400m", metadata={"help": "JVM heap of each broker"})
    kafka_broker_session_timeout_ms: int = field(default=3000, metadata={"help": "broker fenced after"})
    kafka_broker_heartbeat_ms: int = field(default=500, metadata={"help": "broker heartbeat interval"})
    kafka_replica_lag_time_max_ms: int = field(default=5000, metadata={"help": "follower leaves ISR after"})
    producer_delivery_timeout_ms: int = field(default=15000, metadata={
        "help": "the entry service's producer gives up after ({settings.producer_delivery_timeout_ms})"})
    producer_request_timeout_ms: int = field(default=5000, metadata={"help": "one produce request"})
    consumer_session_timeout_ms: int = field(default=6000, metadata={
        "help": "session timeout the pipeline's consumers are given ({settings.consumer_session_timeout_ms})"})

    # --- experiments ----------------------------------------------------------------------------
    report_dir: Path = field(default=Path("reports"), metadata={"help": "where artefacts are written"})
    seed: int = field(default=0, metadata={"help": "seed for keys, amounts and random targets (0: random)"})
    rpc_timeout_s: float = field(default=10.0, metadata={"help": "client deadline of one gRPC call"})
    quiesce_timeout_s: float = field(default=90.0, metadata={"help": "bound on waiting for the pipeline to drain"})
    convergence_bound_s: float = field(default=60.0, metadata={"help": "budget: heal -> all acked applied"})
    warmup_timeout_s: float = field(default=60.0, metadata={
        "help": "bound on warming up beyond a run's warm-up phase while the pipeline's latency is still falling"})
    read_share: float = field(default=0.1, metadata={
        "help": "share of the load's calls that read a key back through the pipeline's read API (pipelines "
                "whose adapter declares Pipeline.reads; 0: writes only)"})
    read_converge_timeout_s: float = field(default=30.0, metadata={
        "help": "bound on the final reads after quiescence returning the converged state"})
    tier: str = field(default="gate", metadata={"help": "gate (every change) | nightly (longer, repeated) | matrix"})
    repeat: int = field(default=1, metadata={"help": "run every experiment this many times"})
    defects: str = field(default="", metadata={
        "help": "comma-separated defect switches of the pipeline to turn on in every experiment "
                "(e.g. acks1): what would this bug cost under each fault?"})

    # --- randomised fault schedules (experiments/test_random_schedules.py, chaos.schedules) -----------
    hypothesis_profile: str = field(default="", metadata={
        "help": "randomised schedules: dev | ci | nightly (empty: ci when CI is set, else dev)"})
    hypothesis_seed: int = field(default=0, metadata={
        "help": "randomised schedules: Hypothesis seed (0: the ci profile's fixed seed, else a fresh one; recorded)"})
    hypothesis_shrink_time_s: float = field(default=300.0, metadata={
        "help": "randomised schedules: bound on shrinking a failing schedule (may overshoot by one example)"})
    replay: str = field(default="", metadata={
        "help": "randomised schedules: a replay.json to run exactly once instead of generating schedules"})
    schedule_max_brokers_impaired: int = field(default=1, metadata={
        "help": "randomised schedules: most brokers impaired at once (1 = a minority of 3; 2-3 may lose quorum)"})
    schedule_timeout_s: float = field(default=5400.0, metadata={
        "help": "randomised schedules: bound on the whole test (generation, shrinking, final replay)"})

    # --- game days (chaos.gameday) -----------------------------------------------------------------
    gameday_steady_timeout_s: float = field(default=60.0, metadata={
        "help": "game day: bound on waiting for the steady state before the method and for its return after heal"})
    gameday_probe_interval_s: float = field(default=1.0, metadata={
        "help": "interval between samples of the pipeline (probes, lag, rows applied) in every run"})
    gameday_refresh_s: float = field(default=0.5, metadata={"help": "game day: live view refresh (terminal)"})
    gameday_line_interval_s: float = field(default=2.0, metadata={
        "help": "game day: seconds between status lines when the output is not a terminal"})
    gameday_command_timeout_s: float = field(default=30.0, metadata={
        "help": "game day: bound on one command of an external target (kill/stop/start/pause templates)"})
    gameday_stop_timeout_s: float = field(default=90.0, metadata={
        "help": "game day: bound on a running scenario healing and exiting after heal/down interrupts it"})

    # The settings given explicitly (environment, pyproject, overrides): a pipeline's own setting defaults
    # (``Pipeline.settings``) apply to every other one. Not a setting itself.
    explicit: frozenset[str] = field(default=frozenset(), compare=False, metadata={"internal": True})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        hints = get_type_hints(cls)
        names = {f.name for f in fields(cls)}
        project = project_settings()
        unknown = sorted(set(project) - names - {"pythonpath"})
        if unknown:
            raise ValueError(f"[tool.pipeline-chaos] in {project_file()}: unknown key(s) {', '.join(unknown)}; "
                             "the keys are the settings' names (`pytest --help` lists them as --chaos-<name>)")
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                raw = project.get(f.name)
                raw = None if raw is None else str(raw)
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.name, raw, hints[f.name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["explicit"] = frozenset(values)
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        new = dataclasses.replace(self, **changes, explicit=self.explicit | set(changes))
        new.validate()
        return new

    def validate(self) -> None:
        if self.image_source not in IMAGE_SOURCES:
            raise ValueError(
                f"image_source={self.image_source!r} is not one of {', '.join(IMAGE_SOURCES)}; "
                f"set {ENV_PREFIX}IMAGE_SOURCE to one of them"
            )
        if self.tier not in TIERS:
            raise ValueError(f"tier={self.tier!r} is not one of {', '.join(TIERS)}; set {ENV_PREFIX}TIER")
        if self.repeat < 1:
            raise ValueError("repeat must be at least 1")
        self.replica_overrides()
        if self.kafka_log_disk_mb and self.kafka_log_disk_mb < 64:
            raise ValueError("kafka_log_disk_mb must be 0 (no own disk) or at least 64")
        if self.kafka_broker_heartbeat_ms >= self.kafka_broker_session_timeout_ms:
            raise ValueError("kafka_broker_heartbeat_ms must be below kafka_broker_session_timeout_ms")
        if self.hypothesis_profile not in ("", *HYPOTHESIS_PROFILES):
            raise ValueError(f"hypothesis_profile={self.hypothesis_profile!r} is not one of "
                             f"{', '.join(HYPOTHESIS_PROFILES)}; set {ENV_PREFIX}HYPOTHESIS_PROFILE")
        if self.defects and self.tier == "matrix":
            raise ValueError(f"{ENV_PREFIX}DEFECTS / --chaos-defects cannot be combined with the matrix tier: the "
                             "detection matrix switches each defect on itself; run the matrix without it")
        if not 0.0 <= self.read_share < 1.0:
            raise ValueError(f"read_share={self.read_share} must be at least 0 and below 1; set {ENV_PREFIX}READ_SHARE")
        if not 0 <= self.schedule_max_brokers_impaired <= 3:
            raise ValueError("schedule_max_brokers_impaired must be 0..3")

    def for_pipeline(self, pipeline: Pipeline) -> Settings:
        """These settings with a pipeline's own defaults (``Pipeline.settings``) for every setting not given
        explicitly; ValueError naming an unknown one, or reads asked of a pipeline that declares none."""
        if pipeline.reads is None and "read_share" in self.explicit and self.read_share > 0:
            raise ValueError(f"read_share={self.read_share}: pipeline {pipeline.name} declares no reads "
                             "(Pipeline.reads in its adapter), so there is no read contract to check; set "
                             f"{ENV_PREFIX}READ_SHARE=0 or describe the reads in the adapter")
        defaults = pipeline.settings
        names = {f.name for f in fields(self)} - {"explicit"}
        unknown = sorted(set(defaults) - names)
        if unknown:
            raise ValueError(f"the pipeline's settings name unknown setting(s): {', '.join(unknown)}")
        chosen = {k: v for k, v in defaults.items() if k not in self.explicit}
        return self.replace(**chosen) if chosen else self

    def replica_overrides(self) -> dict[str, int]:
        """``replicas`` as {service: n}; ValueError saying the expected form."""
        out: dict[str, int] = {}
        for part in (p.strip() for p in self.replicas.split(",")):
            if not part:
                continue
            name, eq, n = part.partition("=")
            if not eq or not n.strip().isdigit() or int(n) < 1:
                raise ValueError(f"replicas={self.replicas!r}: give service=count pairs, e.g. projector=3,sink=2")
            out[name.strip()] = int(n)
        return out

    def defect_list(self) -> tuple[str, ...]:
        """``defects`` as a tuple of names, in the order given, without blanks or repeats."""
        return tuple(dict.fromkeys(d.strip() for d in self.defects.split(",") if d.strip()))

    def describe(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if not f.metadata.get("internal")}


def project_file(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.pipeline-chaos]`` table, from ``start`` (the working
    directory) upwards; None when there is none."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        f = d / "pyproject.toml"
        if f.is_file():
            try:
                doc = tomllib.loads(f.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                continue
            if isinstance(doc.get("tool", {}).get("pipeline-chaos"), dict):
                return f
    return None


def project_settings(start: Path | None = None) -> dict[str, Any]:
    """The ``[tool.pipeline-chaos]`` table of :func:`project_file` (empty when there is none)."""
    f = project_file(start)
    if f is None:
        return {}
    return dict(tomllib.loads(f.read_text(encoding="utf-8"))["tool"]["pipeline-chaos"])


def _coerce(name: str, raw: str, typ: Any) -> Any:
    try:
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        if typ is Path:
            return Path(raw)
        return raw
    except ValueError:
        raise ValueError(
            f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {typ.__name__}"
        ) from None


def setting_help() -> dict[str, str]:
    return {f.name: str(f.metadata.get("help", "")) for f in fields(Settings) if not f.metadata.get("internal")}
