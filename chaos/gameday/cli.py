"""``gameday``: run chaos scenarios live against an environment that is already up.

    gameday up                         start the local environment (and a pipeline) and keep it running
    gameday status [--json]            topology, health, active faults, the scenario running now
    gameday list                       the scenario catalogue
    gameday run SCENARIO [--dry-run]   a catalogue name or a .toml / .py file, with the live view
    gameday heal                       remove every active fault now (from any terminal)
    gameday report [FOLDER]            the runs' index page and summary
    gameday compare A B                two runs side by side (python -m chaos.report compare)
    gameday down                       remove the environment completely

``--target FILE`` (status, run, heal) acts on an external environment described in FILE instead of the
local one (see :mod:`chaos.gameday.external`): only what its allow-list names may be touched, and a
typed ``yes`` is asked for first (``--yes`` skips it). ``--dry-run`` prints what would be done.

Exit status: 0 success; 1 failed (a verdict, steady state not restored, something left); 2 refused
before anything was done (bad input, outside the allow-list, not confirmed, nothing up); 3 aborted
(budget breached or abort condition); 4 not steady before the method (nothing injected); 130 interrupted.
The name is ``gameday`` and not ``chaos``: Chaos Toolkit installs a ``chaos`` command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos import signals
from chaos.adapter import Pipeline, load_pipeline
from chaos.config import Settings
from chaos.gameday import external, scenario, state
from chaos.gameday.journal import Journal, journal_path
from chaos.redact import RedactingStream, install_log_redaction, redact

EXIT_REFUSED = 2


class Refused(Exception):
    """Bad input or a refusal: one message, nothing done, exit 2."""


def _settings(args: argparse.Namespace) -> Settings:
    over: dict[str, Any] = {}
    if getattr(args, "report_dir", None):
        over["report_dir"] = Path(args.report_dir)
    if getattr(args, "pipeline", None):
        over["pipeline"] = args.pipeline
    try:
        return Settings.from_env(**over)
    except ValueError as exc:
        raise Refused(str(exc)) from None


def _pipeline(settings: Settings) -> Pipeline:
    try:
        return load_pipeline(settings.pipeline)
    except ValueError as exc:
        raise Refused(str(exc)) from None


def _for_pipeline(settings: Settings) -> Settings:
    """The settings with the pipeline's own defaults (Pipeline.settings) where none was given."""
    try:
        return settings.for_pipeline(_pipeline(settings)) if settings.pipeline else settings
    except ValueError as exc:
        raise Refused(str(exc)) from None


def _attach(settings: Settings, st: state.State) -> Any:
    from chaos.env import Environment
    from chaos.images import ImageSet

    topo = {k: st.settings[k] for k in state.TOPOLOGY_SETTINGS if k in st.settings}
    settings = settings.replace(**topo)
    images = ImageSet(st.image_source, st.images, st.pipeline_images)
    return Environment.attach(settings, images, _pipeline(settings), st.run_id, ports=st.ports,
                              cluster_id=st.cluster_id, deployment=st.deployment)


def _say(text: str) -> None:
    print(f"gameday: {text}", flush=True)


# -- up / down ------------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace, settings: Settings, journal: Journal) -> int:
    from chaos.env import Environment, EnvironmentError_, connect_engine
    from chaos.images import ImageError, resolve

    path = state.state_path(settings.report_dir)
    if path.exists():
        st = state.load(path)
        client = connect_engine(settings)
        if client.networks.list(names=[f"pc-{st.run_id}"]):
            raise Refused(f"an environment is already up (run id {st.run_id}, {path}); use it, or `gameday down` "
                          "first")
        _say(f"state file {path} names run {st.run_id}, which is gone; replacing it")
    pipeline = _pipeline(settings)
    try:
        pipeline.check_defects(tuple(args.defects or ()))
        images = resolve(settings, pipeline, build=False)
    except (ImageError, ValueError) as exc:
        raise Refused(str(exc)) from None
    env = Environment(settings, images, pipeline, keep=True)
    journal.target = env.run_id
    journal.write("up", "started")
    _say(f"starting environment {env.run_id} (kept after this command; `gameday down` removes it)")
    started = time.monotonic()
    try:
        env.start()
        dep = env.deploy("gameday", tuple(args.defects or ()))
    except BaseException as exc:
        env.stop()
        journal.write("up", "failed", error=f"{exc.__class__.__name__}: {exc}")
        if isinstance(exc, EnvironmentError_ | TimeoutError):
            _say(f"could not start: {exc}; removed what was started")
            return 1
        raise
    st = state.State(run_id=env.run_id, ports=env.ports, cluster_id=env.cluster_id, image_source=images.source,
                     images=images.refs, pipeline_images=images.pipeline,
                     settings={k: getattr(settings, k) for k in state.TOPOLOGY_SETTINGS},
                     created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                     deployment=env.describe_deployment())
    state.save(path, st)
    took = time.monotonic() - started
    journal.write("up", "ok", seconds=round(took, 1), ports=env.ports, deployment=dep.name)
    _say(f"environment {env.run_id} up in {took:.1f} s; pipeline {pipeline.name} deployed ({dep.tag})")
    print(f"  entry point        {env.endpoints.grpc}\n  Kafka (direct)     {env.endpoints.kafka_external}\n"
          f"  Toxiproxy API      http://127.0.0.1:{env.ports['toxiproxy']}\n"
          f"  Postgres           127.0.0.1:{env.ports['postgres']} (user {env.endpoints.pg_user}, database "
          f"{env.endpoints.pg_db}; password in the postgres container's environment)\n  state file         {path}")
    return 0


def _interrupt_running(st: state.State, settings: Settings, journal: Journal) -> None:
    run = st.running or {}
    pid = run.get("pid")
    if pid is None or not state.pid_alive(pid):
        return
    _say(f"scenario {run.get('scenario')} is running (pid {pid}): interrupting it so that it heals itself")
    journal.write("interrupt", "started", pid=pid, scenario=run.get("scenario"))
    os.kill(int(pid), signal.SIGTERM)  # always handled (chaos.signals), even when SIGINT was inherited ignored
    deadline = time.monotonic() + settings.gameday_stop_timeout_s
    while state.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(settings.poll_interval_s)
    alive = state.pid_alive(pid)
    journal.write("interrupt", "failed" if alive else "ok", pid=pid)
    if alive:
        _say(f"pid {pid} still running after {settings.gameday_stop_timeout_s:g} s (gameday_stop_timeout_s)")


def cmd_down(args: argparse.Namespace, settings: Settings, journal: Journal) -> int:
    from chaos.env import LABEL_RUN, connect_engine, sweep

    path = state.state_path(settings.report_dir)
    run_id = args.run_id
    if run_id is None:
        st = state.load(path)
        run_id = st.run_id
        _interrupt_running(st, settings, journal)
    journal.target = run_id
    client = connect_engine(settings)
    removed = sweep(client, run_id=run_id, only_orphans=False)
    flt = {"label": f"{LABEL_RUN}={run_id}"}
    left = ([c.name for c in client.containers.list(all=True, filters=flt)]
            + [n.name for n in client.networks.list(filters=flt)] + [v.name for v in client.volumes.list(filters=flt)])
    if path.exists() and (args.run_id is None or state.load(path).run_id == run_id):
        state.remove(path)
    journal.write("down", "ok" if not left else "failed", removed=removed, left=left)
    if left:
        _say(f"environment {run_id}: could not remove {', '.join(left)}")
        return 1
    _say(f"environment {run_id} removed ({removed} containers, networks and volumes); nothing left")
    return 0


# -- status / heal ------------------------------------------------------------------------------------


def _local_target(settings: Settings) -> tuple[Any, state.State]:
    from chaos.run.targets import LocalTarget

    st = state.load(state.state_path(settings.report_dir))
    return LocalTarget(_attach(settings, st)), st


def _health(t: Any) -> dict[str, Any]:
    from chaos.run import targets as tg

    out: dict[str, Any] = {}
    w = t.watched
    checks: dict[str, Any] = {"entry_serving": lambda: tg.entry_serving(t.entry)}
    if t.bootstrap:
        checks["brokers_registered"] = lambda: (True, tg.brokers_registered(t.bootstrap))
        if w:
            checks["full_isr"] = lambda: tg.full_isr(t.bootstrap, w.topics)
            checks["consumer_lag"] = lambda: (True, tg.consumer_lag(t.bootstrap, w.consumers))
    for name, fn in checks.items():
        try:
            ok, value = fn()
            out[name] = {"ok": ok, "value": value}
        except Exception as exc:
            out[name] = {"ok": False, "value": f"{exc.__class__.__name__}: {str(exc)[:80]}"}
    return out


def cmd_status(args: argparse.Namespace, settings: Settings, journal: Journal) -> int:
    from chaos.env import LABEL_ROLE

    doc: dict[str, Any]
    if args.target:
        t = _external_view(args.target, settings, journal)
        ext = t.ext
        doc = {"target": "external", "name": ext.name, "file": ext.source,
               "endpoints": {"grpc": ext.grpc, "kafka_bootstrap": ext.kafka_bootstrap,
                             "toxiproxy_api": ext.toxiproxy_api},
               "pipeline": t.watched.__dict__ if t.watched else None, "allow": list(ext.allow),
               "nodes": {n: {"status": _try(lambda n=n: t.env.container(n).status) if ext.allowed(n) else "not allowed"}
                         for n in ext.nodes},
               "links": list(ext.links)}
    else:
        t, st = _local_target(settings)
        env = t.env
        nodes = {}
        for c in t.containers():
            nodes[c.name.removeprefix(f"{env.prefix}-")] = {"container": c.name, "role": c.labels.get(LABEL_ROLE),
                                                           "status": c.status}
        e = env.endpoints
        running = st.running if st.running and state.pid_alive(st.running.get("pid")) else None
        doc = {"target": "local", "run_id": env.run_id, "state_file": str(state.state_path(settings.report_dir)),
               "created": st.created,
               "pipeline_adapter": env.pipeline.name,
               "endpoints": {"entry": e.grpc, "kafka_bootstrap": e.kafka_external,
                             "kafka_by_broker": {f"kafka-{i}": a for i, a in e.kafka_external_by_broker.items()},
                             "toxiproxy_api": f"http://127.0.0.1:{env.ports['toxiproxy']}",
                             "postgres_dsn": redact(e.pg_conninfo())},
               "pipeline": env.describe_deployment(), "nodes": nodes, "links": sorted(env.links),
               "running": running}
    doc["health"] = _health(t)
    try:
        doc["active_faults"] = t.leftovers()
    except Exception as exc:
        doc["active_faults"] = [f"could not inspect: {exc}"]
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    print(f"{doc['target']} environment {doc.get('run_id') or doc.get('name')}")
    for k, v in doc["endpoints"].items():
        if k != "postgres_dsn":
            print(f"  {k:16} {v}")
    if doc.get("pipeline"):
        p = doc["pipeline"]
        topics = p.get("topics") or {"topic": p.get("topic")}
        print(f"  pipeline         topics {', '.join(map(str, topics.values()))}, schema {p.get('schema')}")
    print("nodes")
    for n, info in sorted(doc["nodes"].items()):
        print(f"  {n:14} {info.get('status')}")
    print("health")
    for n, h in doc["health"].items():
        print(f"  {n:18} {'OK  ' if h['ok'] else 'FAIL'} {h['value']}")
    print("active faults")
    for f in doc["active_faults"] or ["none"]:
        print(f"  {f}")
    if doc.get("running"):
        print(f"running: scenario {doc['running'].get('scenario')} (pid {doc['running'].get('pid')})")
    return 0


def _try(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        return f"unknown ({exc.__class__.__name__})"


def cmd_heal(args: argparse.Namespace, settings: Settings, journal: Journal) -> int:
    if args.target:
        t = _external_view(args.target, settings, journal)
        _confirm(t.ext, args, journal, "heal (within the allow-list)")
    else:
        st = state.load(state.state_path(settings.report_dir))
        journal.target = st.run_id
        _interrupt_running(st, settings, journal)
        t, _ = _local_target(settings)
    journal.write("heal", "started")
    begun = time.monotonic()
    done = t.heal_everything()
    left = t.leftovers()
    for d in done:
        print(f"  {d}")
    journal.write("heal", "ok" if not left else "failed", done=done, left=left)
    if left:
        _say(f"still left after healing: {'; '.join(left)}")
        return 1
    _say(f"healed in {time.monotonic() - begun:.1f} s; no fault left")
    return 0


# -- run -----------------------------------------------------------------------------------------------


def _external_view(path: str, settings: Settings, journal: Journal) -> Any:
    from chaos.run.targets import ExternalTargetView

    try:
        ext = external.load(Path(path))
    except external.ExternalError as exc:
        raise Refused(str(exc)) from None
    journal.target = f"external:{ext.name}"

    def log(argv: list[str], rc: int, out: str) -> None:
        journal.write("command", "ok" if rc == 0 else "failed", argv=argv, exit=rc, output=out or None)

    return ExternalTargetView(ext, settings, _pipeline(settings), log)


def _confirm(ext: external.ExternalTarget, args: argparse.Namespace, journal: Journal, what: str) -> None:
    if args.yes or not ext.confirm:
        journal.write("confirm", "ok", how="--yes" if args.yes else "confirm = false in the target file")
        return
    print(f"About to {what} against the EXTERNAL environment {ext.name!r} ({ext.source}).\n"
          f"Faults may touch only: {', '.join(ext.allow)}.\nType yes to go on: ", end="", flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "yes":
        journal.write("confirm", "refused", answer=answer)
        raise Refused("not confirmed (type yes, or pass --yes); nothing was done")
    journal.write("confirm", "ok", how="typed yes")


def _dry_run(sc: scenario.Scenario, t: Any, touched: list[str]) -> None:
    print("DRY RUN: nothing will be started, injected or changed")
    for line in sc.describe(local=not isinstance(t, external.ExternalTarget)):
        print(line)
    if isinstance(t, external.ExternalTarget):
        print(f"  target: external {t.name} ({t.source}): entry {t.grpc}, "
              f"Kafka {t.kafka_bootstrap or '-'}, Toxiproxy {t.toxiproxy_api or '-'}, Postgres "
              f"{'given (not shown)' if t.postgres_dsn else '-'}")
        print(f"  allow-list: {', '.join(t.allow)}; this scenario may touch: {', '.join(touched) or 'nothing'}")
        for step in sc.method.steps:
            f = step.fault
            nodes = [n for n in external.touched(f, t) if n in t.nodes]
            if nodes:
                action = {"kill": "kill", "stop": "stop", "pause": "pause", "restart": "stop"}[f.name]
                extra = {"signal": getattr(f, "signal", "SIGKILL"), "timeout": 10}
                for n in nodes:
                    print(f"    {f.name} {n}: would run `{' '.join(t.command(action, n, **extra))}`, heal: `"
                          + " ".join(t.command("unpause" if f.name == "pause" else "start", n)) + "`")
            else:
                print(f"    {f.name}: Toxiproxy {t.toxiproxy_api}: on {', '.join(external.touched(f, t))}")
    else:
        print(f"  target: {t}")


def _experiments() -> list[str]:
    """Experiments of the catalogue (``chaos.experiments``) that expose ``scenario(experiment, defects=())``."""
    from importlib.resources import files

    root = files("chaos.experiments")
    return sorted(p.name.removeprefix("test_").removesuffix(".py") for p in root.iterdir()
                  if p.name.startswith("test_") and p.name.endswith(".py")
                  and "\ndef scenario(" in p.read_text(encoding="utf-8"))


def _run_experiment(args: argparse.Namespace, settings: Settings, journal: Journal) -> int:
    """``run experiment:<name>``: an experiment of the catalogue, its own ``scenario`` and ``check``, against the
    kept local environment, through the same run protocol (progress lines, journal, heal, verification)."""
    import importlib

    from chaos.experiment import Experiment
    from chaos.gameday.runner import JournalObserver
    from chaos.report.live import set_progress

    name = args.scenario.split(":", 1)[1].removeprefix("test_").removesuffix(".py")
    known = _experiments()
    if args.target:
        raise Refused("experiment:<name> runs on the local environment only; write a scenario file for a target")
    if name not in known:
        raise Refused(f"no experiment {name!r}; experiments: {', '.join(known)}")
    mod = importlib.import_module(f"chaos.experiments.test_{name}")
    journal.scenario = f"experiment:{name}"
    path = state.state_path(settings.report_dir)
    st = state.load(path)
    journal.target = st.run_id
    if args.dry_run:
        print(f"DRY RUN: would run the experiment {name} on environment {st.run_id}:\n"
              f"{(mod.__doc__ or '').strip()}")
        journal.write("dry-run", "ok")
        return 0
    env = _attach(settings, st)
    folder = settings.report_dir / st.run_id / f"experiment-{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    set_progress(lambda line: print(line, flush=True), settings.gameday_line_interval_s)

    def make(defects: Sequence[str] = (), load: Any = None, name_: str | None = None) -> Experiment:
        return Experiment(env, settings, f"experiment-{name}", defects=tuple(dict.fromkeys(
                              [*settings.defect_list(), *defects])), load=load, artefacts=folder,
                          observer=JournalObserver(journal))

    st.running = {"pid": os.getpid(), "scenario": f"experiment:{name}", "since": dt.datetime.now(dt.UTC).isoformat()}
    state.save(path, st)
    code, reason = 0, ""
    try:
        result = mod.scenario(make)
        try:
            (getattr(mod, "check", None) or (lambda r: r.assert_ok()))(result)
        except AssertionError as exc:
            code, reason = 1, str(exc).strip()[:800]
    except KeyboardInterrupt:
        code, reason = 130, "interrupted"
    except Exception as exc:
        code, reason = 1, f"error: {exc.__class__.__name__}: {exc}"
    finally:
        st.running = None
        st.deployment = env.describe_deployment()
        state.save(path, st)
    outcome = {0: "passed", 130: "interrupted"}.get(code, "failed")
    _say(f"experiment {name}: {outcome.upper()}" + (f" ({reason})" if reason else "") + f"; report {folder}")
    journal.write("end", outcome, exit=code, reason=reason or None, report=str(folder))
    return code


def cmd_run(args: argparse.Namespace, settings: Settings, journal: Journal) -> int:
    from chaos.gameday.runner import run_scenario
    from chaos.run.targets import LocalTarget

    if args.scenario.startswith("experiment:"):
        return _run_experiment(args, settings, journal)
    try:
        sc = scenario.load(args.scenario)
    except scenario.ScenarioError as exc:
        raise Refused(str(exc)) from None
    journal.scenario = sc.name
    touched: list[str] = []
    st: state.State | None = None
    if args.target:
        view = _external_view(args.target, settings, journal)
        ext = view.ext
        extra = [n for rb in sc.rollbacks if rb.action == "ensure_running" for n in rb.nodes]
        if any(rb.action == "reset_links" for rb in sc.rollbacks):
            extra += list(ext.links)
        try:
            touched = external.check_allowed([s.fault for s in sc.method.steps], ext, extra)
        except external.ExternalError as exc:
            raise Refused(str(exc)) from None
        if args.dry_run:
            _dry_run(sc, ext, touched)
            journal.write("dry-run", "ok", touched=touched)
            return 0
        _confirm(ext, args, journal, f"run scenario {sc.name}")
        target: Any = view
    else:
        path = state.state_path(settings.report_dir)
        if args.dry_run and not path.exists():
            _dry_run(sc, "the local environment (none is up now: `gameday up` first)", [])
            journal.write("dry-run", "ok")
            return 0
        try:
            st = state.load(path)
        except state.StateError as exc:
            raise Refused(str(exc)) from None
        journal.target = st.run_id
        if st.running and state.pid_alive(st.running.get("pid")):
            raise Refused(f"scenario {st.running.get('scenario')} is already running on {st.run_id} "
                          f"(pid {st.running.get('pid')}); one at a time")
        if args.dry_run:
            _dry_run(sc, f"local environment {st.run_id} (roles resolved when injected)", [])
            journal.write("dry-run", "ok")
            return 0
        target = LocalTarget(_attach(settings, st))
        try:
            target.pipeline.check_defects(sc.defects)
        except ValueError as exc:
            raise Refused(f"{sc.source}: {exc}") from None
    try:
        sc.method.validate(target.env)  # against what runs now (a fresh pipeline replaces it with the same shape)
    except ValueError as exc:
        raise Refused(f"{sc.source}: {exc}") from None

    def on_deploy(dep: Any) -> None:
        if st is not None:
            st.deployment = target.env.describe_deployment()
            state.save(state.state_path(settings.report_dir), st)

    if st is not None:
        st.running = {"pid": os.getpid(), "scenario": sc.name, "since": dt.datetime.now(dt.UTC).isoformat()}
        state.save(state.state_path(settings.report_dir), st)
    try:
        return run_scenario(sc, target, settings, journal, settings.report_dir, on_deploy=on_deploy)
    finally:
        if st is not None:
            st.running = None
            state.save(state.state_path(settings.report_dir), st)


def cmd_list(args: argparse.Namespace, settings: Settings, journal: Journal) -> int:
    for name, path in scenario.catalogue().items():
        try:
            sc = scenario.load(str(path))
            print(f"{name:28} {sc.description.splitlines()[0] if sc.description else ''}")
        except scenario.ScenarioError as exc:
            print(f"{name:28} INVALID: {exc}")
    print(f"experiments (run experiment:<name>, local only): {', '.join(_experiments())}")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings, journal: Journal) -> int:
    from chaos.report.index import write_run_index

    if args.folder:
        folder = Path(args.folder)
    else:
        try:
            st = state.load(state.state_path(settings.report_dir))
        except state.StateError as exc:
            raise Refused(f"{exc}; or name a report folder") from None
        folder = settings.report_dir / st.run_id
    if not folder.is_dir():
        raise Refused(f"{folder}: no such report folder (no scenario has run there yet)")
    runs = sorted(p for p in folder.iterdir() if (p / "results.json").is_file())
    for p in runs:
        r = json.loads((p / "results.json").read_text())
        gd = r.get("gameday") or {}
        outcome = gd.get("outcome") or ("passed" if r.get("ok") else "failed")
        during = (r.get("phases") or {}).get("during") or {}
        p99 = during.get("p99_ms")
        print(f"{p.name:44} {outcome:12} p99 during {'-' if p99 is None else f'{p99:,.0f} ms':>10}  "
              f"failed: {', '.join(r.get('failed') or []) or '-'}")
    index, summary = write_run_index(folder, step_summary="")
    print(f"index: {index}\nsummary: {summary}\njournal: {journal_path(settings.report_dir)}")
    return 0


def cmd_compare(args: argparse.Namespace, settings: Settings, journal: Journal) -> int:
    from chaos.report import compare

    return compare.run(args)


# -- main ----------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    from chaos.report import compare

    p = argparse.ArgumentParser(prog="gameday", description=__doc__.split("\n\n")[0],
                                epilog="Exit status: 0 ok, 1 failed, 2 refused (nothing done), 3 aborted, "
                                       "4 not steady (nothing injected), 130 interrupted.")
    p.add_argument("--report-dir", help="reports, journal and state file root (default: CHAOS_REPORT_DIR or reports)")
    p.add_argument("--pipeline", help="the pipeline's adapter, module:attr or an entry point name (default: "
                                      "CHAOS_PIPELINE, or [tool.pipeline-chaos] pipeline in pyproject.toml)")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the local environment and keep it running")
    up.add_argument("--defects", nargs="*", help="defect switches of the pipeline deployed by up")
    down = sub.add_parser("down", help="remove the local environment completely")
    down.add_argument("--run-id", help="remove this run id's containers, network and volumes (no state file needed)")
    stt = sub.add_parser("status", help="topology, health, active faults")
    stt.add_argument("--json", action="store_true", help="machine-readable (endpoints, node containers, health)")
    stt.add_argument("--target", help="an external target file instead of the local environment")
    sub.add_parser("list", help="the scenario catalogue")
    run = sub.add_parser("run", help="run a scenario with the live view")
    run.add_argument("scenario", help="a catalogue name (gameday list), a .toml / .py file, or "
                                      "experiment:<name> (the experiment catalogue's test_<name>.py, local only)")
    run.add_argument("--target", help="an external target file instead of the local environment")
    run.add_argument("--dry-run", action="store_true", help="print what would be done, do nothing")
    run.add_argument("--yes", action="store_true", help="skip the typed confirmation of an external target")
    heal = sub.add_parser("heal", help="remove every active fault now")
    heal.add_argument("--target", help="an external target file (heals within its allow-list)")
    heal.add_argument("--yes", action="store_true", help="skip the typed confirmation of an external target")
    rep = sub.add_parser("report", help="the runs' index page and a summary line per run")
    rep.add_argument("folder", nargs="?", help="a report folder (default: the local environment's)")
    cmp_ = sub.add_parser("compare", help="two result sets side by side; exit 1 on regression")
    compare.add_arguments(cmp_)
    return p


# Commands that change nothing: their start and end are not journaled (the journal is a record of what was
# done to a system); a command one of them runs against an external target still is.
READ_ONLY = frozenset({"status", "list", "report", "compare"})

COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "list": cmd_list, "run": cmd_run,
            "heal": cmd_heal, "report": cmd_report, "compare": cmd_compare}


class _GamedayLog(logging.FileHandler):
    """The game-day log file's handler (one per process: a later command replaces it)."""


def _log_to_file(report_dir: Path) -> None:
    """Library logs (client libraries' connection errors while a broker is down, fault details) go to
    ``<report dir>/gameday/gameday.log``, not through the live view."""
    path = Path(report_dir) / "gameday" / "gameday.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _GamedayLog(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _GamedayLog)]:
        root.removeHandler(h)
        h.close()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    journal: Journal | None = None
    bookends = args.cmd not in READ_ONLY
    signals.install()
    install_log_redaction()
    if not isinstance(sys.stdout, RedactingStream):  # every line this command prints passes the redactor
        sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        settings = _settings(args)
        if args.cmd not in ("list", "report", "compare", "down"):
            settings = _for_pipeline(settings)
        _log_to_file(settings.report_dir)
        journal = Journal(journal_path(settings.report_dir), argv)
        if bookends:
            journal.write("command", "started")
        code = COMMANDS[args.cmd](args, settings, journal)
        if bookends:
            journal.write("command", "ok" if code == 0 else "failed", exit=code)
        return code
    except (Refused, state.StateError) as exc:
        print(f"gameday {args.cmd}: refused: {exc}", file=sys.stderr)
        if journal is not None and bookends:
            journal.write("refused", "refused", reason=str(exc), exit=EXIT_REFUSED)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print(f"gameday {args.cmd}: interrupted", file=sys.stderr)
        if journal is not None and bookends:
            journal.write("command", "interrupted", exit=130)
        return 130


if __name__ == "__main__":
    sys.exit(main())
