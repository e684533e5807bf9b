"""Smoke test of the orders example: the three services really work together, once.

Run from the repository root (it needs the repo's venv for grpcio, grpcio-tools and confluent-kafka)::

    uv run --frozen python examples/orders/smoke.py [--image TAG] [--orders 200] [--customers 4]

What it does, on a private docker network ``orders-smoke-<random>`` (every container and the network carry the label
``orders-smoke=<that name>`` and are removed at the end, also on failure, Ctrl-C or SIGTERM):

1. builds the image with build.py (unless ``--image`` names one), starts one KRaft Kafka broker (the suite's local
   Kafka image; replication factor 1) and Postgres (the suite's local Postgres image), creates the topics from the
   host through a 127.0.0.1 port, applies schema.sql in schema ``orders_a``;
2. starts orders-api, pricer and sink, and measures each one's time from container start to its ``ready`` line;
3. places ``--orders`` orders over ``--customers`` customers with 16 calls in flight, waits until the sink applied
   them, and checks in Postgres: every acknowledged order exactly once with the right total, no other order, each
   balance = the sum of its customer's orders; GetOrder answers; the sink logged optimistic-lock retries; SIGTERM
   stops the sink with exit status 0;
4. a second correct sink in a new consumer group over the same schema: every order is a redelivery, the inbox skips
   them all;
5. the defects: ``no_inbox`` (a new group over the same schema applies every order a second time) and
   ``swallow_optimistic_lock`` (a new group into a fresh schema ``orders_b``: balances miss orders);
6. a database outage (writes to customer_balance blocked for 25 s, statements time out after 10 s) under a correct sink
   (schema ``orders_c``: batches fail, the consumer restarts, every order applied once) and a ``commit_before_write``
   sink (schema ``orders_d``: the failed batches' orders are lost).

Exit status 0 when every check held; the numbers are printed as one JSON object at the end.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LABEL = "orders-smoke"
PG_USER, PG_DB = "orders", "orders"
TOPIC_PLACED, TOPIC_PRICED = "orders.placed", "orders.priced"


def sh(*cmd: str, check: bool = True, timeout: float = 120, input_text: str | None = None) -> str:
    """Run a command; its stdout. RuntimeError with stderr when it fails and ``check``."""
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input_text, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed (exit {r.returncode}): {r.stderr.strip()[-800:]}")
    return r.stdout


def wait_until(cond: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval_s)
    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def newest(repo: str) -> str:
    out = sh("docker", "images", repo, "--format", "{{.Repository}}:{{.Tag}}").split()
    if not out:
        raise RuntimeError(f"no {repo} image in the engine: build the suite's images first (make images)")
    return out[0]


def cluster_id() -> str:
    """22 characters of base64url, never starting with '-' (kafka-storage would read it as an option)."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class Smoke:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.name = f"{LABEL}-{secrets.token_hex(3)}"
        self.password = secrets.token_hex(12)
        self.kafka_port = free_port()
        self.results: dict[str, Any] = {"prefix": self.name}
        self.tmp = Path(tempfile.mkdtemp(prefix="orders-smoke-"))
        self.get_order: Callable[[str], Any] = lambda oid: None

    # -- containers -------------------------------------------------------------------------------------------

    def run(self, role: str, image: str, *cmd: str, env: dict[str, str] | None = None,
            ports: list[str] | None = None, alias: str | None = None) -> str:
        argv = ["docker", "run", "-d", "--name", f"{self.name}-{role}", "--network", self.name,
                "--label", f"{LABEL}={self.name}", "--network-alias", alias or role]
        for k, v in (env or {}).items():
            argv += ["-e", f"{k}={v}"]
        for p in ports or []:
            argv += ["-p", p]
        argv += [image, *cmd]
        sh(*argv)
        return f"{self.name}-{role}"

    def logs(self, container: str) -> str:
        r = subprocess.run(["docker", "logs", "-t", container], capture_output=True, text=True, timeout=30,
                           check=False)
        return r.stdout + r.stderr

    def cleanup(self) -> None:
        ids = sh("docker", "ps", "-aq", "--filter", f"label={LABEL}={self.name}", check=False).split()
        if ids:
            sh("docker", "rm", "-f", *ids, check=False, timeout=60)
        sh("docker", "network", "rm", self.name, check=False)
        left = sh("docker", "ps", "-aq", "--filter", f"label={LABEL}={self.name}", check=False).split()
        print(f"cleanup: removed {len(ids)} containers and network {self.name}; left behind: {len(left)}")

    def psql(self, sql: str, schema: str = "public", tcp: bool = False) -> list[list[str]]:
        host = ["-h", "127.0.0.1", "-e", f"PGPASSWORD={self.password}"] if tcp else []
        out = sh("docker", "exec", "-i", "-e", f"PGOPTIONS=-c search_path={schema}", *host[2:],
                 f"{self.name}-postgres", "psql", *host[:2], "-v", "ON_ERROR_STOP=1", "-qAt", "-F", "\t",
                 "-U", PG_USER, "-d", PG_DB, "-f", "-", input_text=sql, timeout=60)
        return [line.split("\t") for line in out.splitlines() if line]

    def ready_seconds(self, container: str, needle: str, timeout_s: float) -> float:
        """Seconds from the container's start to its first log line containing ``needle``."""
        def found() -> bool:
            state = sh("docker", "inspect", "-f", "{{.State.Status}}", container).strip()
            if state == "exited":
                raise RuntimeError(f"{container} exited during start:\n{self.logs(container)[-3000:]}")
            return needle in self.logs(container)
        wait_until(found, timeout_s, f"{container} to log '{needle}'", 0.2)
        started = sh("docker", "inspect", "-f", "{{.State.StartedAt}}", container).strip()
        line = next(ln for ln in self.logs(container).splitlines() if needle in ln)
        return round(ts(line.split(" ", 1)[0]) - ts(started), 2)

    # -- the pipeline -----------------------------------------------------------------------------------------

    def start_infra(self) -> None:
        sh("docker", "network", "create", "--label", f"{LABEL}={self.name}", self.name)
        props = "\n".join([
            "process.roles=broker,controller", "node.id=1", "controller.quorum.voters=1@kafka:9093",
            "listeners=INTERNAL://:9092,CONTROLLER://:9093,EXTERNAL://:9094",
            f"advertised.listeners=INTERNAL://kafka:9092,EXTERNAL://127.0.0.1:{self.kafka_port}",
            "listener.security.protocol.map=INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,EXTERNAL:PLAINTEXT",
            "inter.broker.listener.name=INTERNAL", "controller.listener.names=CONTROLLER",
            "log.dirs=/var/lib/kafka/data", "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=3", "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1", "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false", "num.network.threads=2", "num.io.threads=2",
        ])
        script = (
            'printf "%s\\n" "$KAFKA_PROPERTIES" > /tmp/server.properties && CP="/opt/kafka/libs/*" && '
            'java -Xmx96m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$CP" kafka.tools.StorageTool format '
            '-t "$KAFKA_CLUSTER_ID" -c /tmp/server.properties --ignore-formatted >/dev/null && '
            'exec java -Xms256m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError '
            '-cp "$CP" kafka.Kafka /tmp/server.properties'
        )
        self.run("kafka", newest("pipeline-chaos/kafka"), "sh", "-c", script,
                 env={"KAFKA_PROPERTIES": props, "KAFKA_CLUSTER_ID": cluster_id()},
                 ports=[f"127.0.0.1:{self.kafka_port}:9094"])
        self.run("postgres", newest("pipeline-chaos/postgres"), "postgres", "-c", "fsync=off",
                 env={"POSTGRES_USER": PG_USER, "POSTGRES_PASSWORD": self.password, "POSTGRES_DB": PG_DB})
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.kafka_port}", "log_level": 3})

        def topics_created() -> bool:
            try:
                fs = admin.create_topics([NewTopic(t, 3, 1) for t in (TOPIC_PLACED, TOPIC_PRICED)],
                                         request_timeout=10)
                for f in fs.values():
                    try:
                        f.result(timeout=15)
                    except Exception as e:
                        if "already exists" not in str(e):
                            raise
                return True
            except Exception as e:
                print(f"  topics not created yet: {e}")
                return False

        wait_until(topics_created, 90, "the broker to create the topics", 2)
        # Over TCP: the entrypoint's temporary init server listens on the unix socket only.
        wait_until(lambda: self.try_psql("select 1", tcp=True), 60, "Postgres to accept connections", 1)
        self.apply_schema("orders_a")

    def try_psql(self, sql: str, tcp: bool = False) -> bool:
        try:
            self.psql(sql, tcp=tcp)
            return True
        except RuntimeError:
            return False

    def apply_schema(self, schema: str) -> None:
        self.psql(f"CREATE SCHEMA IF NOT EXISTS {schema};")
        self.psql((HERE / "schema.sql").read_text(), schema=schema)

    def service_env(self, **extra: str) -> dict[str, str]:
        env = {"JAVA_HEAP": self.args.heap} if self.args.heap else {}
        env |= {"KAFKA_BOOTSTRAP": "kafka:9092", "PG_HOST": "postgres", "PG_PORT": "5432", "PG_DB": PG_DB,
               "PG_USER": PG_USER, "PG_PASSWORD": self.password, "PG_SCHEMA": "orders_a"}
        env.update(extra)
        return env

    def start_sink(self, role: str, schema: str, group: str, defects: str = "") -> float:
        c = self.run(role, self.args.image, "/app/run", "sink", alias=role,
                     env=self.service_env(TOPIC_PRICED=TOPIC_PRICED, GROUP_ID=group, PG_SCHEMA=schema,
                                          PIPELINE_DEFECTS=defects, SINK_WORKERS="4"))
        return self.ready_seconds(c, "sink ready", 120)

    def stop(self, role: str) -> tuple[int, str]:
        """SIGTERM (docker stop), then the exit status and the log."""
        c = f"{self.name}-{role}"
        t0 = time.monotonic()
        sh("docker", "stop", "-t", "30", c, timeout=60)
        took = time.monotonic() - t0
        code = int(sh("docker", "inspect", "-f", "{{.State.ExitCode}}", c).strip())
        self.results.setdefault("stop_seconds", {})[role] = round(took, 2)
        return code, self.logs(c)

    def memory(self, roles: list[str]) -> dict[str, str]:
        """Each container's memory use as docker stats shows it."""
        out = sh("docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}",
                 *[f"{self.name}-{r}" for r in roles], timeout=60)
        return {ln.split()[0].removeprefix(self.name + "-"): ln.split()[1] for ln in out.splitlines() if ln.strip()}

    def applied_count(self, schema: str) -> int:
        return int(self.psql("select count(*) from orders", schema)[0][0])

    # -- load ---------------------------------------------------------------------------------------------------

    def place_orders(self, api_port: int) -> dict[str, tuple[str, int]]:
        """The acknowledged orders: order_id -> (customer, total)."""
        import grpc

        gen = self.tmp / "gen"
        gen.mkdir()
        sh(sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE / 'proto'}", f"--python_out={gen}",
           f"--grpc_python_out={gen}", str(HERE / "proto" / "orders.proto"))
        sys.path.insert(0, str(gen))
        pb: Any = importlib.import_module("orders_pb2")
        pb_grpc: Any = importlib.import_module("orders_pb2_grpc")
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        channel = grpc.insecure_channel(f"127.0.0.1:{api_port}")
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="orders.v1.Orders"),
                                                           timeout=5)
        self.results["health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
        stub = pb_grpc.OrdersStub(channel)
        rng = random.Random(7)
        customers = [f"cust-{i}" for i in range(self.args.customers)]
        orders = []
        for i in range(self.args.orders):
            items = [pb.Item(sku=f"sku-{rng.randrange(20)}", quantity=rng.randint(1, 5),
                             unit_price_cents=rng.randint(0, 5000)) for _ in range(rng.randint(1, 3))]
            orders.append(pb.PlaceOrderRequest(idempotency_key=f"{self.name}-o{i}",
                                               customer=customers[i % len(customers)], items=items))
        acked: dict[str, tuple[str, int]] = {}
        failed: dict[str, int] = {}
        t0 = time.monotonic()

        def place(req: Any) -> None:
            try:
                reply = stub.PlaceOrder(req, timeout=30)
                acked[reply.order_id] = (req.customer, sum(it.quantity * it.unit_price_cents for it in req.items))
            except grpc.RpcError as e:
                failed[e.code().name] = failed.get(e.code().name, 0) + 1

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(place, orders))
        self.results["load"] = {"sent": len(orders), "acked": len(acked), "failed": failed,
                                "seconds": round(time.monotonic() - t0, 2)}
        # Invalid requests are rejected as INVALID_ARGUMENT.
        try:
            stub.PlaceOrder(pb.PlaceOrderRequest(idempotency_key="", customer="x"), timeout=5)
            self.results["invalid_rejected"] = False
        except grpc.RpcError as e:
            self.results["invalid_rejected"] = e.code().name
        self.get_order = lambda oid: stub.GetOrder(pb.GetOrderRequest(order_id=oid), timeout=5)
        return acked

    def database_outage(self, acked: dict[str, tuple[str, int]]) -> None:
        """Writes to customer_balance blocked for 25 s (EXCLUSIVE lock: reads pass, writes wait; statements time out
        after 10 s) while two sinks start: the correct one restarts from its committed offsets and applies
        everything; commit_before_write loses the batches whose offsets it had committed."""
        for schema in ("orders_c", "orders_d"):
            self.apply_schema(schema)
        lock = subprocess.Popen(
            ["docker", "exec", f"{self.name}-postgres", "psql", "-qAt", "-U", PG_USER, "-d", PG_DB, "-c",
             "begin; lock table orders_c.customer_balance, orders_d.customer_balance in exclusive mode;"
             " select pg_sleep(25); commit;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            self.start_sink("sink-outage", "orders_c", "sink-outage")
            self.start_sink("sink-cbw", "orders_d", "sink-cbw", "commit_before_write")
            lock.wait(timeout=60)
        finally:
            if lock.poll() is None:
                lock.kill()
        n = len(acked)
        wait_until(lambda: self.applied_count("orders_c") >= n, 90, "the correct sink to recover", 1)
        time.sleep(12)  # the commit_before_write sink has read everything; let it finish what it still can
        self.results["db_outage_correct"] = self.verify("orders_c", acked)
        self.results["db_outage_commit_before_write"] = self.verify("orders_d", acked)
        for role in ("sink-outage", "sink-cbw"):
            _, log = self.stop(role)
            stopped = [ln for ln in log.splitlines() if "sink stopped:" in ln]
            self.results[f"{role}_failed_batches"] = stat(stopped, "failed_batches")

    # -- checks ---------------------------------------------------------------------------------------------

    def verify(self, schema: str, acked: dict[str, tuple[str, int]]) -> dict[str, Any]:
        rows = self.psql("select order_id, customer, total_cents from orders", schema)
        count: dict[str, int] = {}
        wrong_total = []
        for oid, cust, text in rows:
            count[oid] = count.get(oid, 0) + 1
            if oid in acked and (cust, int(text)) != acked[oid]:
                wrong_total.append(oid)
        expected: dict[str, tuple[int, int]] = {}
        for cust, cents in acked.values():
            b, n = expected.get(cust, (0, 0))
            expected[cust] = (b + cents, n + 1)
        balances = {c: (int(b), int(n)) for c, b, n in
                    self.psql("select customer, balance_cents, order_count from customer_balance", schema)}
        from_rows: dict[str, tuple[int, int]] = {}
        for _, cust, text in rows:
            b, n = from_rows.get(cust, (0, 0))
            from_rows[cust] = (b + int(text), n + 1)
        return {
            "rows": len(rows),
            "missing": sum(1 for oid in acked if oid not in count),
            "duplicated": sum(1 for oid, n in count.items() if n > 1),
            "phantom": sum(1 for oid in count if oid not in acked),
            "wrong_total": len(wrong_total),
            "balances_equal_acked_sums": balances == expected,
            "balances_equal_row_sums": balances == from_rows,
            "balance_cents_missing": sum(expected[c][0] for c in expected) - sum(b for b, _ in balances.values()),
            "order_count_missing": sum(expected[c][1] for c in expected) - sum(n for _, n in balances.values()),
        }

    def main(self) -> bool:
        if not self.args.image:
            self.args.image = "pipeline-chaos/orders:smoke"
            t0 = time.monotonic()
            sh(sys.executable, str(HERE / "build.py"), "--tag", self.args.image, timeout=1200)
            self.results["image_build_seconds"] = round(time.monotonic() - t0, 1)
        self.start_infra()
        api_port = free_port()
        api = self.run("api", self.args.image, "/app/run", "api", ports=[f"127.0.0.1:{api_port}:50051"],
                       env=self.service_env(TOPIC_PLACED=TOPIC_PLACED))
        pricer = self.run("pricer", self.args.image, "/app/run", "pricer",
                          env=self.service_env(TOPIC_PLACED=TOPIC_PLACED, TOPIC_PRICED=TOPIC_PRICED,
                                               GROUP_ID="pricer", TRANSACTIONAL_ID="pricer-0"))
        ready = {"api": self.ready_seconds(api, "orders-api ready", 120),
                 "pricer": self.ready_seconds(pricer, "pricer ready", 120)}
        ready["sink"] = self.start_sink("sink", "orders_a", "sink")
        self.results["ready_seconds"] = ready
        acked = self.place_orders(api_port)
        n = len(acked)
        wait_until(lambda: self.applied_count("orders_a") >= n, 120, f"the sink to apply {n} orders", 1)
        self.results["memory_after_load"] = self.memory(["api", "pricer", "sink", "kafka", "postgres"])
        time.sleep(2)  # anything applied twice would show now
        self.results["correct"] = self.verify("orders_a", acked)
        sample = list(acked)[:5]
        got = [self.get_order(oid) for oid in sample]
        self.results["get_order_ok"] = all(g.found and g.total_cents == acked[oid][1] for g, oid in zip(got, sample,
                                                                                                     strict=True))
        self.results["get_order_absent"] = not self.get_order("no-such-order").found
        code, log = self.stop("sink")
        stopped = [ln for ln in log.splitlines() if "sink stopped:" in ln]
        self.results["sink_exit_code"] = code
        self.results["sink_final_stats"] = stopped[-1].split("sink stopped: ", 1)[1] if stopped else None
        self.results["sink_optimistic_retries"] = stat(stopped, "optimistic_lock_retries")
        self.results["sink_unique_retries"] = stat(stopped, "unique_violation_retries")
        # A second correct sink in a new group: every record is a redelivery; the inbox skips them.
        self.results["ready_seconds"]["sink_again"] = self.start_sink("sink2", "orders_a", "sink-again")
        wait_until(lambda: "duplicates_skipped=" + str(n) in self.logs(f"{self.name}-sink2"), 60,
                   "the second sink to skip every order", 1)
        self.results["redelivered_all_skipped"] = self.verify("orders_a", acked)
        self.stop("sink2")
        # Defect no_inbox: a new group re-applies everything.
        self.start_sink("sink-noinbox", "orders_a", "sink-noinbox", "no_inbox")
        wait_until(lambda: self.applied_count("orders_a") >= 2 * n, 60, "the no_inbox sink to re-apply", 1)
        time.sleep(1)
        self.results["defect_no_inbox"] = self.verify("orders_a", acked)
        self.stop("sink-noinbox")
        # Defect swallow_optimistic_lock: a fresh schema, a new group: all orders at once, on few customers.
        self.apply_schema("orders_b")
        self.start_sink("sink-swallow", "orders_b", "sink-swallow", "swallow_optimistic_lock")
        wait_until(lambda: self.applied_count("orders_b") >= n, 60, "the swallow sink to apply", 1)
        time.sleep(2)
        self.results["defect_swallow_optimistic_lock"] = self.verify("orders_b", acked)
        _, log = self.stop("sink-swallow")
        stopped = [ln for ln in log.splitlines() if "sink stopped:" in ln]
        self.results["defect_swallow_lost_updates_logged"] = stat(stopped, "lost_updates")
        self.database_outage(acked)
        for role in ("api", "pricer"):
            code, _ = self.stop(role)
            self.results[f"{role}_exit_code"] = code
        c, d = self.results["correct"], self.results["defect_swallow_optimistic_lock"]
        ni = self.results["defect_no_inbox"]
        checks = {
            "acked all": self.results["load"]["acked"] == self.args.orders,
            "health SERVING": self.results["health"] == "SERVING",
            "invalid -> INVALID_ARGUMENT": self.results["invalid_rejected"] == "INVALID_ARGUMENT",
            "exactly once": c["missing"] == 0 and c["duplicated"] == 0 and c["phantom"] == 0 and c["wrong_total"] == 0,
            "balances conserved": c["balances_equal_acked_sums"] and c["balances_equal_row_sums"],
            "GetOrder": self.results["get_order_ok"] and self.results["get_order_absent"],
            "optimistic-lock retries happened": (self.results["sink_optimistic_retries"] or 0) > 0,
            "SIGTERM -> exit 0": self.results["sink_exit_code"] == 0 and self.results["api_exit_code"] == 0
            and self.results["pricer_exit_code"] == 0,
            "inbox skips redeliveries": self.results["redelivered_all_skipped"]["duplicated"] == 0,
            "no_inbox duplicates": ni["duplicated"] == n,
            "db outage: correct sink recovers": self.results["db_outage_correct"]["missing"] == 0
            and self.results["db_outage_correct"]["duplicated"] == 0
            and (self.results["sink-outage_failed_batches"] or 0) > 0,
            "db outage: commit_before_write loses": self.results["db_outage_commit_before_write"]["missing"] > 0,
            "swallow loses balance updates": not d["balances_equal_acked_sums"] and d["balance_cents_missing"] != 0
            and d["duplicated"] == 0 and d["missing"] == 0,
        }
        self.results["checks"] = checks
        return all(checks.values())


def stat(lines: list[str], key: str) -> int | None:
    for ln in reversed(lines):
        for tok in ln.split():
            if tok.startswith(key + "="):
                return int(tok.split("=", 1)[1])
    return None


def ts(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp with up to nanoseconds (docker's format)."""
    text = text.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tz}"
    return datetime.fromisoformat(text).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--image", default="",
                        help="the orders image to use (default: build pipeline-chaos/orders:smoke)")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--heap", default="", help="JAVA_HEAP for the services (default: the image's, 160m)")
    parser.add_argument("--customers", type=int, default=4, help="few customers = contention on their balances")
    args = parser.parse_args()

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, interrupted)
    smoke = Smoke(args)
    ok = False
    try:
        ok = smoke.main()
    except (Exception, KeyboardInterrupt) as e:
        smoke.results["error"] = f"{type(e).__name__}: {e}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        try:
            for role in ("api", "pricer", "sink", "sink2", "sink-noinbox", "sink-swallow", "sink-outage", "sink-cbw",
                         "kafka", "postgres"):
                log = smoke.logs(f"{smoke.name}-{role}")
                if log.strip() and "No such container" not in log:
                    (smoke.tmp / f"{role}.log").write_text(log)
            print(f"service logs: {smoke.tmp}")
        finally:
            smoke.cleanup()
    print(json.dumps(smoke.results, indent=2, default=str))
    print("SMOKE PASSED" if ok else "SMOKE FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
