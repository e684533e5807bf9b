"""``scripts/setup.sh`` the way a hosted CI runner runs it: not root, in the docker group, an engine
already running, and no debootstrap, Maven or Go on PATH.

The real script runs as uid 4242 (no account is created: ``setpriv`` switches uid, gid and supplementary
groups, the docker socket's group among them) in a copy of this checkout owned by that uid, with a
temporary HOME and a PATH made of links to the system's commands minus debootstrap, mvn, go, uv, pipx and
sudo; apt-get, apt and sudo are stubs that record being called (and fail). Cases:

* the images are present: the script succeeds and installs nothing (and a second run is quick);
* an image would have to be built and a tool its build needs is absent: one error before anything is
  built, naming each missing tool, the image that needs it and the command that installs it (and no
  tool the build does not need);
* uv is absent and the system Python is externally managed (PEP 668: ``pip install --user`` is refused):
  uv is installed all the same (from PyPI, into a private venv).

Needs root (to switch user), ``setpriv`` (util-linux), a docker socket owned by a group other than root
and group-writable, a system Python 3.11 that uid 4242 can run, and the images built for this checkout
(``make setup``). Otherwise it is skipped with the reason. It does not chgrp or chmod the socket when it is
``root:root``: that socket is the engine every other user of this machine is using; dockerd's ``--group``
(or the docker.io package's default, group docker) gives the layout a hosted runner has.

The uv cache is seeded with a copy of the invoking user's (``uv sync`` then installs from it instead of
downloading every locked package again); what is not in it comes from PyPI, and the uv case downloads uv's
wheel from PyPI.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaos.config import Settings
from chaos.images import ImageError, resolve

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "scripts/setup.sh"
TEST_UID = 4242  # no account; any uid nobody uses
RUN_TIMEOUT_S = 420  # one run of the script: at most a uv sync from the seeded cache, or uv from PyPI
QUICK_RUN_S = 15.0  # a run with everything present (about 1 s; generous for a busy 2-core machine)
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
HIDDEN = {"debootstrap", "mvn", "mvnDebug", "go", "gofmt", "uv", "uvx", "pipx", "sudo", "apt-get", "apt"}
RECORDED = ("apt-get", "apt", "sudo")  # stubs: they write their arguments to apt-calls.log and fail
# The machine's way to the package registries (a proxy, a CA bundle, a mirror) passes to the script; nothing else
PASSED_ON = re.compile(r"(?i)^(https?_proxy|no_proxy|all_proxy|ssl_cert_(file|dir)|requests_ca_bundle|curl_ca_bundle"
                       r"|pip_(cert|index_url|extra_index_url|find_links|trusted_host|default_timeout)"
                       r"|uv_(index|index_url|default_index|extra_index_url|native_tls|system_certs|insecure_host"
                       r"|http_timeout))$")
UV_VERSION = re.search(r'^UV_VERSION="([^"]+)"', (REPO / SCRIPT).read_text(), re.M)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        return (f"exit {self.returncode} after {self.seconds:.1f} s\n--- stdout\n{self.stdout}"
                f"\n--- stderr\n{self.stderr}")


@dataclass
class Sandbox:
    root: Path
    repo: Path  # the copy of this checkout, owned by TEST_UID
    tools: Path  # the system's commands minus HIDDEN, plus the recording stubs
    uv_dir: Path  # uv alone
    uv_cache: Path
    docker_gid: int
    docker_host: str
    setpriv: str

    def home(self, name: str) -> Path:
        home = self.root / f"home-{name}"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        os.chown(home, TEST_UID, TEST_UID)
        return home

    def run(self, home: Path, *, with_uv: bool = True, env: dict[str, str] | None = None) -> Run:
        path = f"{self.tools}:{self.uv_dir}" if with_uv else str(self.tools)
        environ = {**{k: v for k, v in os.environ.items() if PASSED_ON.match(k)},
                   "HOME": str(home), "PATH": path, "LANG": "C.UTF-8", "UV_CACHE_DIR": str(self.uv_cache),
                   "APT_CALLS": str(home / "apt-calls.log"), **(env or {})}
        if self.docker_host:
            environ["DOCKER_HOST"] = self.docker_host
        cmd = [self.setpriv, f"--reuid={TEST_UID}", f"--regid={TEST_UID}", f"--groups={self.docker_gid}",
               "--", "bash", SCRIPT]
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=self.repo, env=environ, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, check=False)
        run = Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
        print(f"[setup.sh as uid {TEST_UID}, HOME {home.name}] {run}")
        return run

    @contextmanager
    def edited(self, relpath: str, old: str, new: str) -> Iterator[None]:
        """Change a file of the copy for one case (a recipe, a constant: a new image tag)."""
        path = self.repo / relpath
        text = path.read_text()
        assert old in text, f"{relpath} no longer contains {old!r}: update this test"
        path.write_text(text.replace(old, new, 1))
        try:
            yield
        finally:
            path.write_text(text)


def _skip_unless_possible() -> tuple[int, str]:
    if os.geteuid() != 0:
        pytest.skip("runs as root: it switches to a non-root uid with setpriv")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        pytest.skip(f"DOCKER_HOST={host} is not a unix socket whose group this test can join")
    sock = Path(host.removeprefix("unix://") or "/var/run/docker.sock")
    try:
        st = sock.stat()
    except OSError as exc:
        pytest.skip(f"no docker socket at {sock}: {exc}")
    if st.st_gid == 0 or st.st_mode & (stat.S_IRGRP | stat.S_IWGRP) != (stat.S_IRGRP | stat.S_IWGRP):
        pytest.skip(f"{sock} is not owned by a group other than root with read-write for it "
                    f"(gid {st.st_gid}, mode {stat.filemode(st.st_mode)}); this test does not change the shared "
                    f"engine's socket: start dockerd with --group docker (or 'chgrp docker {sock} && chmod g+rw "
                    f"{sock}') to run it")
    try:
        resolve(Settings.from_env(), build=False)
    except ImageError as exc:
        pytest.skip(f"the images of this checkout are not all present (run make setup first): {exc}")
    return st.st_gid, host


def _uv_binary() -> Path:
    """uv's executable itself (``uv run`` says where in $UV; a shim in a home uid 4242 cannot enter won't do)."""
    for candidate in (os.environ.get("UV", ""), shutil.which("uv") or ""):
        if candidate and Path(candidate).is_file() and Path(candidate).read_bytes()[:4] == b"\x7fELF":
            return Path(candidate)
    pytest.skip("cannot find the uv executable (run under 'uv run', or set UV=/path/to/uv)")


def _copy_checkout(dest: Path) -> None:
    """The working tree as it is (tracked and untracked, not ignored): the image tags it computes are the
    tags of the images built for this checkout."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _make_tools(tools: Path) -> None:
    tools.mkdir()
    for d in SYSTEM_DIRS:
        if not os.path.isdir(d):
            continue
        for entry in os.scandir(d):
            link = tools / entry.name
            if (entry.name in HIDDEN or link.exists() or link.is_symlink() or entry.is_dir()
                    or not os.access(entry.path, os.X_OK)):
                continue
            link.symlink_to(entry.path)
    for name in RECORDED:
        stub = tools / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "$APT_CALLS"\nexit 100\n')
        stub.chmod(0o755)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    docker_gid, docker_host = _skip_unless_possible()
    uv = _uv_binary()
    root = Path(tempfile.mkdtemp(prefix="chaos-setup-test-"))
    try:
        repo, tools, uv_dir, uv_cache = root / "repo", root / "tools", root / "uv", root / "uv-cache"
        _copy_checkout(repo)
        _make_tools(tools)
        if shutil.which("python3.11", path=str(tools)) is None:
            pytest.skip("no system Python 3.11 that a non-root user can run (uv would have to download one)")
        uv_dir.mkdir()
        shutil.copy2(uv, uv_dir / "uv")
        own_cache = subprocess.run([str(uv), "cache", "dir"], capture_output=True, text=True, check=False).stdout
        if own_cache.strip() and Path(own_cache.strip()).is_dir():
            subprocess.run(["cp", "-a", own_cache.strip(), str(uv_cache)], check=True)
        uv_cache.mkdir(exist_ok=True)
        subprocess.run(["chown", "-R", f"{TEST_UID}:{TEST_UID}", str(root)], check=True)
        yield Sandbox(root, repo, tools, uv_dir, uv_cache, docker_gid, docker_host, shutil.which("setpriv") or "")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _no_install_attempted(run: Run, home: Path) -> None:
    calls = home / "apt-calls.log"
    assert not calls.exists(), f"the script called {calls.read_text()!r}\n{run}"
    # the script's own log lines (stdout); the error (stderr) does say what to install
    assert not re.search(r"installing .*(debootstrap|maven|golang|docker\.io|python3-venv)", run.stdout), str(run)


def test_images_present_tools_absent_not_root(sandbox: Sandbox) -> None:
    home = sandbox.home("present")
    first = sandbox.run(home)
    assert first.returncode == 0, str(first)
    _no_install_attempted(first, home)
    again = sandbox.run(home)
    assert again.returncode == 0, str(again)
    _no_install_attempted(again, home)
    assert again.seconds < QUICK_RUN_S, f"with everything present the script should only check\n{again}"


def _go_reachable(sandbox: Sandbox) -> bool:
    """The script adds /usr/local/go/bin (where Go's own tarball puts it) to PATH; not hidden here."""
    return shutil.which("go", path=f"{sandbox.tools}:/usr/local/go/bin") is not None


def _one_error(run: Run) -> str:
    assert run.returncode != 0, str(run)
    assert run.stderr.count("error:") == 1, f"expected exactly one error\n{run}"
    assert "building local images" not in run.stdout, f"something was built\n{run}"
    return run.stderr


def test_kafka_image_missing_without_maven_one_error(sandbox: Sandbox) -> None:
    """Only the Kafka image is missing (its recipe changed: a new tag), Kafka's jars are not cached (a new
    HOME) and mvn is absent: the error names mvn, the Kafka image and the package; not debootstrap (the base
    image is there) nor go (the Toxiproxy image is there)."""
    home = sandbox.home("kafka")
    with sandbox.edited("chaos/images/recipes/kafka.local.Dockerfile", "\n", "\n# setup.sh test: a new tag\n"):
        run = sandbox.run(home, env={"CHAOS_IMAGE_SOURCE": "local"})
    err = _one_error(run)
    assert "mvn (Debian package maven), for the Kafka image pipeline-chaos/kafka:" in err, str(run)
    assert "sudo apt-get install -y maven\n" in err, str(run)
    assert "debootstrap" not in err and "golang" not in err, str(run)
    _no_install_attempted(run, home)


def test_everything_missing_names_every_tool_and_root(sandbox: Sandbox) -> None:
    """A new contract version: every local image and the Debian base are missing. The one error names
    debootstrap (for the base), mvn (for Kafka), go when it is absent too (for Toxiproxy), says that
    debootstrap needs root, and gives the commands."""
    home = sandbox.home("all")
    with sandbox.edited("chaos/images/__init__.py", 'CONTRACT_VERSION = "1"', 'CONTRACT_VERSION = "1-setup-test"'):
        run = sandbox.run(home, env={"CHAOS_IMAGE_SOURCE": "local"})
    err = _one_error(run)
    assert "debootstrap (Debian package debootstrap), for the Debian base image pipeline-chaos/base:" in err
    assert "mvn (Debian package maven), for the Kafka image" in err, str(run)
    packages = "debootstrap maven" if _go_reachable(sandbox) else "debootstrap maven golang-go"
    assert f"sudo apt-get install -y {packages}\n" in err, str(run)
    assert ("go (Debian package golang-go), for the Toxiproxy image" in err) != _go_reachable(sandbox), str(run)
    assert "debootstrap runs only as root" in err and "| docker import --change" in err, str(run)
    _no_install_attempted(run, home)


def test_uv_absent_externally_managed_python(sandbox: Sandbox) -> None:
    """No uv on PATH; python3 is the system's (externally managed on Debian 12, where ``pip install
    --user`` is refused): uv is installed from PyPI without pip touching the system, and the set-up
    completes."""
    assert UV_VERSION is not None, f"{SCRIPT} should pin uv: a line UV_VERSION=\"<version>\""
    home = sandbox.home("no-uv")
    python3 = os.path.realpath(shutil.which("python3", path=str(sandbox.tools)) or "")
    if not python3:
        pytest.skip("no system python3")
    managed = subprocess.run([python3, "-c", "import sysconfig, pathlib; print(pathlib.Path("
                              "sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED').exists())"],
                             capture_output=True, text=True, check=True).stdout.strip() == "True"
    print(f"{python3}: externally managed: {managed}")
    run = sandbox.run(home, with_uv=False)
    assert run.returncode == 0, str(run)
    uv = home / ".local" / "bin" / "uv"
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    assert version.split()[:2] == ["uv", UV_VERSION.group(1)], f"{uv}: {version!r}\n{run}"
    assert "not on your PATH" in run.stdout, f"the script should say where uv went\n{run}"
    _no_install_attempted(run, home)
    again = sandbox.run(home, with_uv=False)  # uv found in ~/.local/bin (the script puts it on its PATH)
    assert again.returncode == 0 and "installing uv" not in again.stdout, str(again)
    uv.unlink()
    relinked = sandbox.run(home, with_uv=False)  # the link lost: the venv's uv is the pinned one, reused
    assert relinked.returncode == 0 and "installing uv" not in relinked.stdout and uv.is_symlink(), str(relinked)
