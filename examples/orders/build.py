"""Build the orders example's image without a container registry.

The suite's image builder calls :func:`build_context` to get a docker build context, and :func:`inputs` to decide the
image tag (a digest of those files' contents). By hand::

    python examples/orders/build.py --tag pipeline-chaos/orders:dev [--base pipeline-chaos/base:bookworm-c1]

Maven runs on the host (``mvn -q -B package``; artefacts from Maven Central, reused from ``~/.m2``), because HTTPS
from inside containers does not work on the project's machines; the Dockerfile only installs Debian's JRE and copies
the jar and its runtime libraries. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_BASE = "pipeline-chaos/base:bookworm-c1"
MAVEN_LOG = "orders-maven.log"
_TAIL_LINES = 40


def inputs() -> list[Path]:
    """Every file whose content decides the image: pom, Java sources, proto, image recipe, this builder."""
    files = [HERE / "pom.xml", HERE / "build.py"]
    for sub in ("src", "proto", "image"):
        files.extend(p for p in (HERE / sub).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sorted(files)


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no Maven log)"
    return "\n".join(text.splitlines()[-lines:])


def _run_maven(log_path: Path, timeout_s: float) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("mvn is missing: `apt-get install -y maven` (the orders example is built with Maven "
                           "on the host)")
    cmd = [mvn, "-q", "-B", "package"]
    with log_path.open("w") as log:
        log.write(f"$ {' '.join(cmd)}  (in {HERE})\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=HERE, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"mvn package did not finish within {timeout_s:.0f} s; log {log_path}:\n"
                               f"{_tail(log_path)}") from None
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if rc != 0:
        raise RuntimeError(f"mvn package failed (exit {rc}); log {log_path}:\n{_tail(log_path)}")


def build_context(dest: Path, log_dir: Path, timeout_s: float) -> None:
    """Run ``mvn -q -B package`` and lay out a docker build context in ``dest``.

    ``dest`` receives ``Dockerfile``, ``run``, ``orders.jar`` and ``lib/`` (the runtime jars). The Maven output goes to
    ``log_dir/orders-maven.log``. RuntimeError with the log's tail when Maven is missing, fails or times out.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    _run_maven(log_dir / MAVEN_LOG, timeout_s)
    target = HERE / "target"
    jar, lib = target / "orders.jar", target / "lib"
    if not jar.is_file() or not lib.is_dir():
        log_path = log_dir / MAVEN_LOG
        raise RuntimeError(f"mvn package left no {jar} or {lib}; log {log_path}:\n{_tail(log_path)}")
    dest.mkdir(parents=True, exist_ok=True)
    if (dest / "lib").exists():
        shutil.rmtree(dest / "lib")
    shutil.copytree(lib, dest / "lib")
    shutil.copy2(jar, dest / "orders.jar")
    shutil.copy2(HERE / "image" / "Dockerfile", dest / "Dockerfile")
    shutil.copy2(HERE / "image" / "run", dest / "run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the orders example's image (Maven on the host, then docker build).")
    parser.add_argument("--tag", required=True, help="image tag to build, e.g. pipeline-chaos/orders:dev")
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"Debian bookworm base image (default {DEFAULT_BASE})")
    parser.add_argument("--timeout", type=float, default=900.0, help="bound of each step in seconds (default 900)")
    parser.add_argument("--log-dir", type=Path, default=None, help="where the Maven log goes (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="orders-build-") as tmp:
        log_dir = args.log_dir or Path(tmp) / "logs"
        ctx = Path(tmp) / "context"
        t0 = time.monotonic()
        try:
            build_context(ctx, log_dir, args.timeout)
        except RuntimeError as e:
            print(f"build.py: {e}", file=sys.stderr)
            return 1
        t1 = time.monotonic()
        print(f"maven: {t1 - t0:.1f} s")
        cmd = ["docker", "build", "--build-arg", f"BASE={args.base}", "-t", args.tag, str(ctx)]
        try:
            rc = subprocess.run(cmd, timeout=args.timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            print(f"build.py: docker build did not finish within {args.timeout:.0f} s", file=sys.stderr)
            return 1
        if rc != 0:
            print(f"build.py: docker build failed (exit {rc})", file=sys.stderr)
            return 1
        print(f"docker build: {time.monotonic() - t1:.1f} s; image {args.tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
