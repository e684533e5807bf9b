"""pytest plugin: options, fixtures, markers, report header, artefact paths, and the safety nets.

Installed with the package, pytest finds it through the ``pytest11`` entry point (``chaos``): a project
needs no conftest line. Every field of :class:`chaos.config.Settings` is a command-line option
``--chaos-<field>`` with an ini twin ``chaos_<field>`` (and the environment variable ``CHAOS_<FIELD>``, and
the ``[tool.pipeline-chaos]`` table of pyproject.toml). ``--chaos-pipeline=module:attr`` (or an entry
point name of the ``pipeline_chaos.pipelines`` group) names the pipeline's adapter.

Fixtures:
``chaos_settings`` (session) the effective settings.
``chaos_pipeline`` (session) the pipeline's adapter (:class:`chaos.adapter.Pipeline`).
``chaos_env`` (session) the running topology; one per session, torn down whatever happens.
``experiment`` (function) a factory ``experiment(defects=(), load=None, name=None) -> Experiment``.

Safety nets: the environment's teardown is registered before it starts (a failed start still cleans
up); faults still active at teardown are healed; SIGTERM and SIGHUP become KeyboardInterrupt so pytest
tears down as on Ctrl-C; and at the next start a sweep removes whatever a killed run left behind.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos import signals
from chaos.adapter import Pipeline, load_pipeline
from chaos.config import ENV_PREFIX, Settings, setting_help
from chaos.env import Environment, EnvironmentError_
from chaos.experiment import Experiment
from chaos.faults import heal_all
from chaos.images import ImageError, resolve
from chaos.workload import LoadSpec

# progress lines, JUnit properties, the run index (see chaos.report.plugin)
pytest_plugins = ["chaos.report.plugin"]

SETTINGS_KEY = pytest.StashKey[Settings]()
PIPELINE_KEY = pytest.StashKey[Pipeline]()
MATRIX_KEY = pytest.StashKey[list[dict[str, Any]]]()
REPORT_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
log = logging.getLogger("chaos.report")


def _opt(name: str) -> str:
    return "--chaos-" + name.replace("_", "-")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "pipeline chaos suite")
    for name, help_text in setting_help().items():
        group.addoption(_opt(name), dest=f"chaos_{name}", default=None,
                        help=f"{help_text} (env {ENV_PREFIX}{name.upper()}, ini chaos_{name})")
        parser.addini(f"chaos_{name}", help=help_text, default=None)


def _refuse_xdist(config: pytest.Config) -> None:
    """pytest-xdist would give each worker its own environment and lose the detection matrix (its rows are
    collected in one process): refuse it before anything starts."""
    workers = getattr(config.option, "numprocesses", None)
    if workers in (None, 0, "0") and getattr(config.option, "dist", "no") == "no":
        return
    raise pytest.UsageError(
        f"pipeline-chaos does not run under pytest-xdist (-n {workers}): experiments share one container "
        "environment per session (each worker would start its own, on the same two cores) and the detection "
        "matrix is collected in one process. Run without -n, or with -p no:xdist.")


def pytest_configure(config: pytest.Config) -> None:
    _refuse_xdist(config)
    config.addinivalue_line("markers", "experiment: a chaos experiment against the running pipeline")
    config.addinivalue_line("markers", "integration: needs the container environment")
    config.addinivalue_line("markers", "nightly: runs only in the nightly tier (--chaos-tier=nightly)")
    config.addinivalue_line("markers", "matrix: the defect detection matrix (--chaos-tier=matrix)")
    config.stash[MATRIX_KEY] = []
    env = dict(os.environ)
    for name in setting_help():
        ini = config.getini(f"chaos_{name}")
        if ini and (ENV_PREFIX + name.upper()) not in env:
            env[ENV_PREFIX + name.upper()] = str(ini)
        cli = config.getoption(f"chaos_{name}")
        if cli is not None:
            env[ENV_PREFIX + name.upper()] = str(cli)
    try:
        settings = Settings.from_env(env)
        config.stash[SETTINGS_KEY] = settings
        if settings.pipeline or settings.defects:
            pipeline = pipeline_of(config)
            pipeline.check_defects(settings.defect_list())  # bad input refused before anything starts
            config.stash[SETTINGS_KEY] = settings.for_pipeline(pipeline)
    except ValueError as exc:
        raise pytest.UsageError(f"chaos: {exc}") from None
    config.stash[REPORT_KEY] = {}
    signals.install()


def pipeline_of(config: pytest.Config) -> Pipeline:
    """The session's pipeline adapter (loaded once); ValueError saying what to do when none is named."""
    if PIPELINE_KEY not in config.stash:
        config.stash[PIPELINE_KEY] = load_pipeline(config.stash[SETTINGS_KEY].pipeline)
    return config.stash[PIPELINE_KEY]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tiers: gate runs what is unmarked; nightly adds ``nightly``; matrix runs only ``matrix``.

    An explicit ``-m`` expression decides on its own, as pytest users expect (``-m nightly`` runs the
    nightly tests); the tier then only sets phase lengths and load."""
    if config.option.markexpr:
        return
    tier = config.stash[SETTINGS_KEY].tier
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        marked = {m.name for m in item.iter_markers()}
        if tier == "matrix":
            wanted = "matrix" in marked
        else:
            wanted = "matrix" not in marked and ("nightly" not in marked or tier == "nightly")
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    repeat = metafunc.config.stash[SETTINGS_KEY].repeat
    if repeat > 1 and "chaos_repetition" in metafunc.fixturenames:
        metafunc.parametrize("chaos_repetition", range(1, repeat + 1), ids=lambda r: f"rep{r}")


@pytest.fixture
def chaos_repetition() -> int:
    """Which repetition of an experiment this is (``--chaos-repeat N`` runs each N times)."""
    return 1


def record_matrix(config: pytest.Config, row: dict[str, Any]) -> None:
    """Used by the detection matrix: one row per (defect, experiment) run. The run folder's ``matrix.json``
    gets the rows so far at once, so the run's metrics (:mod:`chaos.report.metrics`) have the matrix
    even when the session ends early, and are rebuilt from it later."""
    from chaos.report.metrics import write_matrix

    rows = config.stash[MATRIX_KEY]
    rows.append(row)
    root = row["report_root"]
    try:
        write_matrix(root, [r for r in rows if r["report_root"] == root])
    except OSError as exc:  # a report problem must not turn the test red
        log.warning("writing matrix.json in %s: %r", root, exc)


def matrix_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: defect x experiment -> caught n/N (failing invariants, one example)."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["defect"], r["experiment"]), []).append(r)
    lines = ["| defect | experiment | result | failing invariants | example |", "|---|---|---|---|---|"]
    for (defect, exp), runs in sorted(cells.items()):
        caught = sum(1 for r in runs if r["caught"])
        failing = sorted({v for r in runs for v in r["failed"]})
        example = next((r["example"] for r in runs if r["example"]), "")
        verdict = "caught" if caught == len(runs) else ("missed" if caught == 0 else "flaky")
        label = "correct pipeline" if defect == "none" else defect
        if defect == "none":
            verdict = "passed" if caught == 0 else "FAILED"
            caught = len(runs) - caught
        lines.append(f"| {label} | {exp} | {verdict} {caught}/{len(runs)} | {', '.join(failing) or '-'} | {example} |")
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash.get(MATRIX_KEY, [])
    if not rows:
        return
    table = matrix_table(rows)
    terminalreporter.section("defect detection matrix")
    terminalreporter.write(table)
    out = Path(rows[0]["report_root"]) / "matrix.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    terminalreporter.write_line(f"written to {out}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = config.stash[SETTINGS_KEY]
    keys = ("pipeline", "tier", "repeat", "defects", "image_source", "report_dir", "seed",
            "kafka_broker_session_timeout_ms", "kafka_replica_lag_time_max_ms", "consumer_session_timeout_ms",
            "quiesce_timeout_s")
    return ["chaos: " + ", ".join(f"{k}={getattr(s, k)}" for k in keys)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                               ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.config.stash[REPORT_KEY][f"{item.nodeid}:{report.when}"] = report
    return report


@pytest.fixture(scope="session")
def chaos_settings(pytestconfig: pytest.Config) -> Settings:
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def chaos_pipeline(pytestconfig: pytest.Config) -> Pipeline:
    try:
        return pipeline_of(pytestconfig)
    except ValueError as exc:
        pytest.exit(f"chaos: {exc}", returncode=3)


@pytest.fixture(scope="session")
def chaos_env(chaos_settings: Settings, chaos_pipeline: Pipeline, request: pytest.FixtureRequest
              ) -> Iterator[Environment]:
    try:
        images = resolve(chaos_settings, chaos_pipeline, build=False)
        env = Environment(chaos_settings, images, chaos_pipeline)
    except (ImageError, ValueError) as exc:
        pytest.exit(f"chaos: {exc}", returncode=3)
    # Registered before start: a start that fails half-way still removes what it created.
    request.addfinalizer(env.stop)
    request.addfinalizer(lambda: heal_all(env))
    try:
        env.start()
    except EnvironmentError_ as exc:
        pytest.exit(f"chaos: {exc}", returncode=3)
    yield env


def _failure_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return str(crash.message if crash is not None else report.longreprtext.strip().splitlines()[-1:] or "failed")


def _slug(nodeid: str) -> str:
    """A folder name for a test: its name and parameter ids (``test_detection-acks1-leader_isolated``)."""
    name = nodeid.split("::", 1)[-1].replace("[", "-").rstrip("]")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]


@pytest.fixture
def experiment(chaos_env: Environment, chaos_settings: Settings, request: pytest.FixtureRequest,
               chaos_repetition: int) -> Iterator[Callable[..., Experiment]]:
    root = chaos_settings.report_dir / chaos_env.run_id
    made: list[Experiment] = []

    def make(defects: tuple[str, ...] | list[str] = (), load: LoadSpec | None = None,
             name: str | None = None) -> Experiment:
        # The folder names the test with its parameters (test_detection[acks1-leader_isolated] and
        # [acks1-broker_split] must not share one), and a second experiment of one test gets a suffix.
        base = name or _slug(request.node.nodeid)
        defects = tuple(dict.fromkeys([*chaos_settings.defect_list(), *defects]))
        named = defects and all(d in base for d in defects)  # the parameter id names them already
        suffix = f"-{'+'.join(defects)}" if defects and not name and not named else ""
        if any(e.name == base + suffix for e in made):
            suffix += f"-{len(made) + 1}"
        exp = Experiment(chaos_env, chaos_settings, base + suffix, defects=tuple(defects), load=load,
                         artefacts=root / (base + suffix))
        made.append(exp)
        return exp

    yield make
    healed = heal_all(chaos_env)
    reports = request.config.stash[REPORT_KEY]
    failed = any(r.failed for k, r in reports.items() if k.startswith(request.node.nodeid + ":"))
    if failed or healed:
        for exp in made:
            chaos_env.collect_logs(Path(exp.artefacts) / "logs")
    from chaos.report.plugin import experiments_done, record_test_failure  # imported by pytest first

    if failed:
        call = reports.get(request.node.nodeid + ":call")
        if call is not None and call.failed:
            record_test_failure(made, _failure_message(call))
    experiments_done(request, made, logs=bool(failed or healed))
    chaos_env.undeploy()
    assert not healed, f"faults still active after the test were healed by the safety net: {healed}"

