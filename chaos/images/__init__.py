"""The image contract, the official references, and the air-gapped builder.

The environment (``chaos.env``) depends on a small written contract per image, not on a vendor's
entrypoint. Two sources satisfy each contract:

* ``official``: pinned public images (pulled from their registries), and the pipeline's own images
  built on ``debian:bookworm-slim``;
* ``local``: the same images built on this machine with no registry at all: a Debian base made with
  debootstrap and ``docker import``; Kafka's jars from Maven Central, Toxiproxy compiled from the Go
  module proxy and Python wheels from PyPI, all fetched on the host (where their caches persist) and
  copied in; inside a build container only ``apt-get`` fetches anything (Debian's packages).

``auto`` (the default) uses the local images when they are built, the official ones when they are
present or a registry answers, and otherwise builds the local ones. Local images are tagged with the
contract version and a hash of everything that went into them, so the builder does nothing when they are
present and current.

Contracts (what ``chaos.env`` relies on; a user's own images must meet the same):

kafka
    ``sh`` and ``java`` (17+) on PATH; the broker's jars in ``/opt/kafka/libs``. The environment writes
    ``server.properties`` itself and starts ``kafka.tools.StorageTool format`` then ``kafka.Kafka``.
    Ready when the broker is registered with the quorum (seen through the admin API).
postgres
    Honours ``POSTGRES_USER``, ``POSTGRES_PASSWORD``, ``POSTGRES_DB`` on first start; command
    ``postgres [-c name=value ...]``; listens on 5432. Ready when a real connection succeeds.
toxiproxy
    Entrypoint is the Toxiproxy 2.x server; argument ``-host=0.0.0.0``; API on 8474.
    Ready when ``GET /version`` answers.
pipeline images
    Described by the pipeline's adapter (:class:`chaos.adapter.ImageRecipe`): a build context made by the
    adapter's ``prepare`` on top of a Debian bookworm base (this builder's own base for ``local``,
    ``debian:bookworm-slim`` for ``official``); tagged with a hash of the adapter's inputs. A service may
    instead name an image reference the engine already has.
nethelper
    The fault helper (never part of the pipeline). ``sh``, ``iptables`` and ``iptables-legacy``
    (Debian's ``iptables`` package), ``tc``/``ip``/``ss`` (iproute2), ``ping`` usable without NET_RAW,
    ``nc``, ``fallocate``/``df`` (util-linux, coreutils) and ``chaos-netem`` (user-space netem over
    NFQUEUE, ``recipes/chaos-netem.c``); default command ``sleep infinity``. It runs with only
    CAP_NET_ADMIN in a target's network namespace (``network_mode=container:<id>``), and as the keeper
    of the brokers' log disks. Both sources build it (from the Debian base, or ``FROM
    debian:bookworm-slim``): no public image carries chaos-netem.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chaos.config import Settings

if TYPE_CHECKING:
    from chaos.adapter import ImageRecipe, Pipeline

CONTRACT_VERSION = "1"
KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
TOXIPROXY_VERSION = "2.12.0"
DEBIAN_SUITE = "bookworm"
LABEL = "org.pipeline-chaos.contract"

ROLES = ("kafka", "postgres", "toxiproxy", "nethelper")
BUILT_EVEN_WHEN_OFFICIAL = ("nethelper",)  # no public image has chaos-netem in it
OFFICIAL_BASE = "debian:bookworm-slim"
OFFICIAL = {
    "kafka": f"apache/kafka:{KAFKA_VERSION}",
    "postgres": "postgres:15.14-bookworm",
    "toxiproxy": f"ghcr.io/shopify/toxiproxy:{TOXIPROXY_VERSION}",
}
RECIPES = Path(__file__).parent / "recipes"


class ImageError(RuntimeError):
    """An image is missing or cannot be built; the message says what to do."""


@dataclass(frozen=True)
class ImageSet:
    source: str
    refs: dict[str, str]  # infrastructure role -> reference
    pipeline: dict[str, str] = field(default_factory=dict)  # the pipeline's image keys -> reference

    def __getitem__(self, role: str) -> str:
        return self.refs[role]

    def service_image(self, image: str) -> str:
        """A service's image: one the pipeline builds (by key), else the reference as given."""
        return self.pipeline.get(image, image)

    def all_refs(self) -> dict[str, str]:
        return {**self.refs, **{f"pipeline:{k}": v for k, v in self.pipeline.items()}}


# --------------------------------------------------------------------------------------------------
# Tags


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:10]


def _files_digest(root: Path, patterns: tuple[str, ...]) -> bytes:
    chunks: list[bytes] = []
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                chunks.append(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return b"\0".join(chunks)


def _recipe(name: str) -> bytes:
    return (RECIPES / name).read_bytes()


def base_tag() -> str:
    return f"pipeline-chaos/base:{DEBIAN_SUITE}-c{CONTRACT_VERSION}"


def local_tags() -> dict[str, str]:
    """Tags of the local images for this contract; they change whenever an input changes."""
    c = CONTRACT_VERSION
    kafka = _digest(_recipe("kafka.local.Dockerfile"), _recipe("kafka-pom.xml"), KAFKA_VERSION.encode())
    pg = _digest(_recipe("postgres.local.Dockerfile"), _recipe("postgres-entrypoint.sh"))
    toxi = _digest(_recipe("toxiproxy.local.Dockerfile"), TOXIPROXY_VERSION.encode())
    helper = _digest(_recipe("nethelper.local.Dockerfile"), _recipe("chaos-netem.c"))
    return {
        "kafka": f"pipeline-chaos/kafka:{KAFKA_VERSION}-c{c}-{kafka}",
        "postgres": f"pipeline-chaos/postgres:15-c{c}-{pg}",
        "toxiproxy": f"pipeline-chaos/toxiproxy:{TOXIPROXY_VERSION}-c{c}-{toxi}",
        "nethelper": f"pipeline-chaos/nethelper:c{c}-{helper}",
    }


def official_tags() -> dict[str, str]:
    helper = _digest(_recipe("nethelper.official.Dockerfile"), _recipe("chaos-netem.c"))
    return {**OFFICIAL, "nethelper": f"pipeline-chaos/nethelper-official:c{CONTRACT_VERSION}-{helper}"}


def pipeline_tags(pipeline: Pipeline, source: str) -> dict[str, str]:
    """Tags of the pipeline's own images (by key): the adapter's inputs decide them."""
    out = {}
    for key, recipe in pipeline.images.items():
        files = sorted(map(str, recipe.inputs()))
        # paths relative to the inputs' common folder: the same content gives the same tag wherever the checkout is
        base = os.path.commonpath(files) if len(files) > 1 else os.path.dirname(files[0]) if files else ""
        parts = [os.path.relpath(p, base).encode() + b"\0" + Path(p).read_bytes() for p in files]
        digest = _digest(*parts, source.encode())
        out[key] = f"pipeline-chaos/{pipeline.name}-{key}:c{CONTRACT_VERSION}-{digest}"
    return out


# --------------------------------------------------------------------------------------------------
# Engine helpers (CLI: the builder streams long outputs to log files)


def _run(cmd: list[str], *, log: Path | None = None, timeout: float, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> None:
    started = time.monotonic()
    out = log.open("ab") if log else subprocess.DEVNULL
    try:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, cwd=cwd,
                              env={**os.environ, **env} if env else None, check=False)
    except subprocess.TimeoutExpired:
        raise ImageError(f"`{' '.join(cmd[:3])} ...` did not finish within {timeout:.0f} s") from None
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log else ""
        raise ImageError(
            f"`{' '.join(cmd[:4])} ...` failed with exit code {proc.returncode} after "
            f"{time.monotonic() - started:.0f} s" + (f"; last output ({log}):\n{tail}" if log else "")
        )


def image_present(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=60, check=False).returncode == 0


def _try_pull(ref: str, timeout: float) -> bool:
    try:
        return subprocess.run(["docker", "pull", "-q", ref], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# --------------------------------------------------------------------------------------------------
# Resolution


def choose_source(settings: Settings, *, probe: bool) -> str:
    """``local`` or ``official``: the setting, or for ``auto`` the local images when they are all built, the
    official ones when they are all present or (``probe``) a registry answers, else local (to be built)."""
    if settings.image_source != "auto":
        return settings.image_source
    if all(image_present(r) for r in local_tags().values()):
        return "local"
    if all(image_present(r) for r in official_tags().values()):
        return "official"
    if probe and _try_pull(OFFICIAL["toxiproxy"], settings.registry_probe_timeout_s):
        return "official"  # a registry answers
    return "local"


def resolve(settings: Settings, pipeline: Pipeline | None = None, *, build: bool = False,
            log: Callable[[str], None] = print) -> ImageSet:
    """Decide which images this run uses; build or pull them only when ``build`` is true.

    Without ``build`` a missing image raises ImageError with the command that gets it.
    """
    overrides = {
        role: ref for role, ref in {
            "kafka": settings.image_kafka, "postgres": settings.image_postgres,
            "toxiproxy": settings.image_toxiproxy, "nethelper": settings.image_nethelper,
        }.items() if ref
    }
    source = choose_source(settings, probe=build)
    local, official = local_tags(), official_tags()
    refs = {**(local if source == "local" else official), **overrides}
    mine = pipeline_tags(pipeline, source) if pipeline is not None else {}
    missing = [role for role in ROLES if role not in overrides and not image_present(refs[role])]
    missing_mine = [k for k, ref in mine.items() if not image_present(ref)]
    if missing or missing_mine:
        if not build:
            names = [refs[r] for r in missing] + [mine[k] for k in missing_mine]
            raise ImageError(
                f"missing {source} image(s): {', '.join(names)}. "
                f"Build or pull them with `make images` (or `uv run python -m chaos.images ensure`), "
                f"or point CHAOS_IMAGE_<ROLE> at images you have."
            )
        if missing:
            if source == "local":
                LocalBuilder(settings, log=log).build(missing)
            else:
                _pull_official(settings, refs, missing, log)
        if missing_mine and pipeline is not None:
            builder = LocalBuilder(settings, log=log)
            base = builder.base() if source == "local" else OFFICIAL_BASE
            for key in missing_mine:
                builder.build_recipe(pipeline.name, key, pipeline.images[key], mine[key], base)
    absent = [role for role in overrides if not image_present(overrides[role])]
    if absent:
        raise ImageError(
            "image(s) set by CHAOS_IMAGE_<ROLE> are not present in the engine: "
            + ", ".join(f"{r}={overrides[r]}" for r in absent)
            + ". Load or build them first (docker load / docker build)."
        )
    if pipeline is not None:
        given = sorted({s.image for s in pipeline.services if s.image not in mine and not image_present(s.image)})
        if given:
            raise ImageError(f"image(s) named by pipeline {pipeline.name} are not present in the engine: "
                             f"{', '.join(given)}. Build or load them first (docker build / docker load).")
    return ImageSet(source=source, refs=refs, pipeline=mine)


DEBIAN_PACKAGES = {"debootstrap": "debootstrap", "mvn": "maven", "go": "golang-go"}  # tool -> Debian package


@dataclass(frozen=True)
class BuildPlan:
    """What ``ensure`` would do: the source it would use, and each host tool a missing image's build runs
    (``needs``: tool, Debian package, what needs it), checked before anything is built."""

    source: str
    needs: list[tuple[str, str, str]]
    base_by_hand: str  # how to make the Debian base without this suite (debootstrap runs only as root)


def build_plan(settings: Settings, pipeline: Pipeline | None) -> BuildPlan:
    """The source ``resolve(..., build=True)`` would choose (a registry is probed once, only for ``auto``
    when neither image set is present) and the tools the missing images need."""
    local = local_tags()
    source = choose_source(settings, probe=True)
    needs: list[tuple[str, str, str]] = []
    missing = [r for r in ROLES if not getattr(settings, f"image_{r}") and not image_present(local[r])] \
        if source == "local" else []
    mine = pipeline_tags(pipeline, source) if pipeline is not None else {}
    missing_mine = [k for k, ref in mine.items() if not image_present(ref)]
    base = base_tag()
    if (missing or (missing_mine and source == "local")) and not image_present(base):
        needs.append(("debootstrap", "debootstrap", f"the Debian base image {base} (every local image is built on "
                                                    f"it; missing: {', '.join(missing + missing_mine)})"))
    cache = settings.cache_dir
    jar = cache / f"kafka-{KAFKA_VERSION}" / "libs" / f"kafka_2.13-{KAFKA_VERSION}.jar"
    if "kafka" in missing and not jar.exists():
        needs.append(("mvn", "maven", f"the Kafka image {local['kafka']} (to fetch Kafka's jars: none in "
                                      f"{jar.parent})"))
    binary = cache / f"toxiproxy-{TOXIPROXY_VERSION}" / "toxiproxy"
    if "toxiproxy" in missing and not binary.exists():
        needs.append(("go", "golang-go", f"the Toxiproxy image {local['toxiproxy']} (to build its server: none at "
                                         f"{binary})"))
    for key in missing_mine:
        assert pipeline is not None
        for tool in pipeline.images[key].tools:
            needs.append((tool, DEBIAN_PACKAGES.get(tool, tool), f"{pipeline.name}'s {key} image {mine[key]}"))
    rootfs = "/tmp/chaos-rootfs"
    by_hand = (f"sudo debootstrap --variant=minbase {DEBIAN_SUITE} {rootfs} && sudo tar -C {rootfs} -c . | docker "
               f"import --change 'LABEL {LABEL}={CONTRACT_VERSION}' - {base} && sudo rm -rf {rootfs}")
    return BuildPlan(source=source, needs=needs, base_by_hand=by_hand)


def _pull_official(settings: Settings, refs: dict[str, str], missing: list[str],
                   log: Callable[[str], None]) -> None:
    for role in missing:
        if role in BUILT_EVEN_WHEN_OFFICIAL:
            continue
        log(f"pulling {refs[role]}")
        if not _try_pull(refs[role], settings.build_timeout_s):
            raise ImageError(f"could not pull {refs[role]}; use CHAOS_IMAGE_SOURCE=local to build it here")
    if "nethelper" in missing:
        LocalBuilder(settings, log=log).build_nethelper(refs["nethelper"], "nethelper.official.Dockerfile", None)


# --------------------------------------------------------------------------------------------------
# The air-gapped builder


class LocalBuilder:
    """Builds the local images. Each step is skipped when its output is present."""

    def __init__(self, settings: Settings, log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.cache = settings.cache_dir
        self.logs = self.cache / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.timeout = settings.build_timeout_s

    # -- artefacts fetched on the host ----------------------------------------------------------

    def base(self) -> str:
        tag = base_tag()
        if image_present(tag):
            return tag
        for tool in ("debootstrap",):
            if shutil.which(tool) is None:
                raise ImageError(f"{tool} is missing: `apt-get install -y {tool}` (the set-up script does it)")
        self.log(f"making the Debian {DEBIAN_SUITE} base with debootstrap")
        with tempfile.TemporaryDirectory(prefix="chaos-rootfs-") as tmp:
            root = Path(tmp) / "rootfs"
            _run(["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(root)],
                 log=self.logs / "debootstrap.log", timeout=self.timeout)
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for p in (root / junk).glob("*"):
                    if p.is_file():
                        p.unlink()
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            try:
                imp = subprocess.run(["docker", "import", "--change", f"LABEL {LABEL}={CONTRACT_VERSION}",
                                      "-", tag], stdin=tar.stdout, stdout=subprocess.DEVNULL,
                                     timeout=self.timeout, check=False)
            finally:
                if tar.stdout:
                    tar.stdout.close()
                tar.wait(timeout=self.timeout)
            if imp.returncode != 0 or tar.returncode != 0:
                raise ImageError("docker import of the debootstrap root failed")
        return tag

    def kafka_libs(self) -> Path:
        out = self.cache / f"kafka-{KAFKA_VERSION}" / "libs"
        if (out / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
            return out
        if shutil.which("mvn") is None:
            raise ImageError("mvn is missing: `apt-get install -y maven` to fetch Kafka's jars")
        self.log(f"fetching Kafka {KAFKA_VERSION} jars from Maven Central")
        work = out.parent / "pom"
        work.mkdir(parents=True, exist_ok=True)
        pom = _recipe("kafka-pom.xml").decode().replace("@KAFKA_VERSION@", KAFKA_VERSION)
        (work / "pom.xml").write_text(pom.replace("@LOG4J_VERSION@", LOG4J_VERSION))
        tmp_out = out.parent / "libs.tmp"
        shutil.rmtree(tmp_out, ignore_errors=True)
        _run(["mvn", "-q", "-B", "dependency:copy-dependencies", "-DincludeScope=runtime",
              f"-DoutputDirectory={tmp_out}"], cwd=work, log=self.logs / "maven.log", timeout=self.timeout)
        tmp_out.rename(out)
        return out

    def toxiproxy_binary(self) -> Path:
        out = self.cache / f"toxiproxy-{TOXIPROXY_VERSION}" / "toxiproxy"
        if out.exists():
            return out
        if shutil.which("go") is None:
            raise ImageError("go is missing: `apt-get install -y golang` to build Toxiproxy")
        self.log(f"building Toxiproxy {TOXIPROXY_VERSION} from the Go module proxy")
        gobin = out.parent / "bin"
        _run(["go", "install", f"github.com/Shopify/toxiproxy/v2/cmd/server@v{TOXIPROXY_VERSION}"],
             log=self.logs / "go.log", timeout=self.timeout, cwd=self.cache,
             env={"GOBIN": str(gobin), "CGO_ENABLED": "0"})
        (gobin / "server").rename(out)
        return out

    # -- images ------------------------------------------------------------------------------------

    def _docker_build(self, tag: str, dockerfile: str, context: Path, base: str | None) -> None:
        shutil.copy(RECIPES / dockerfile, context / "Dockerfile")
        cmd = ["docker", "build", "-q", "--label", f"{LABEL}={CONTRACT_VERSION}", "-t", tag]
        if base:
            cmd += ["--build-arg", f"BASE={base}"]
        started = time.monotonic()
        _run([*cmd, str(context)], log=self.logs / f"build-{tag.split('/')[-1].split(':')[0]}.log",
             timeout=self.timeout)
        self.log(f"built {tag} in {time.monotonic() - started:.0f} s")

    def build_kafka(self, tag: str, base: str) -> None:
        libs = self.kafka_libs()
        with tempfile.TemporaryDirectory(prefix="chaos-kafka-") as tmp:
            shutil.copytree(libs, Path(tmp) / "libs")
            self._docker_build(tag, "kafka.local.Dockerfile", Path(tmp), base)

    def build_postgres(self, tag: str, base: str) -> None:
        with tempfile.TemporaryDirectory(prefix="chaos-pg-") as tmp:
            shutil.copy(RECIPES / "postgres-entrypoint.sh", Path(tmp) / "postgres-entrypoint.sh")
            self._docker_build(tag, "postgres.local.Dockerfile", Path(tmp), base)

    def build_toxiproxy(self, tag: str, base: str) -> None:
        binary = self.toxiproxy_binary()
        with tempfile.TemporaryDirectory(prefix="chaos-toxi-") as tmp:
            shutil.copy(binary, Path(tmp) / "toxiproxy")
            self._docker_build(tag, "toxiproxy.local.Dockerfile", Path(tmp), base)

    def build_nethelper(self, tag: str, dockerfile: str = "nethelper.local.Dockerfile",
                        base: str | None = None) -> None:
        with tempfile.TemporaryDirectory(prefix="chaos-nethelper-") as tmp:
            shutil.copy(RECIPES / "chaos-netem.c", Path(tmp) / "chaos-netem.c")
            self._docker_build(tag, dockerfile, Path(tmp), base)

    def build_recipe(self, pipeline: str, key: str, recipe: ImageRecipe, tag: str, base: str) -> None:
        """Build one of a pipeline's images: the adapter fills the context, the engine builds it."""
        from chaos.adapter import BuildContext

        if missing := [t for t in recipe.tools if shutil.which(t) is None]:
            raise ImageError(f"{', '.join(missing)} missing: needed to build {pipeline}'s {key} image; install "
                             "it (`make setup` does when it can)")
        self.log(f"building {pipeline}'s {key} image")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"chaos-{pipeline}-{key}-") as tmp:
            ctx = Path(tmp)
            cache = self.cache / "pipelines" / pipeline / key
            cache.mkdir(parents=True, exist_ok=True)
            try:
                recipe.prepare(BuildContext(dir=ctx, cache_dir=cache, log_dir=self.logs, timeout_s=self.timeout,
                                            log=self.log))
            except ImageError:
                raise
            except Exception as exc:
                raise ImageError(f"preparing {pipeline}'s {key} image failed: {exc}") from exc
            if not (ctx / "Dockerfile").is_file():
                raise ImageError(f"{pipeline}'s {key} recipe left no Dockerfile in the build context")
            cmd = ["docker", "build", "-q", "--label", f"{LABEL}={CONTRACT_VERSION}", "-t", tag,
                   "--build-arg", f"BASE={base}", str(ctx)]
            _run(cmd, log=self.logs / f"build-{pipeline}-{key}.log", timeout=self.timeout)
        self.log(f"built {tag} in {time.monotonic() - started:.0f} s")

    def build(self, roles: list[str] | None = None) -> dict[str, str]:
        tags = local_tags()
        todo = [r for r in (roles or list(ROLES)) if not image_present(tags[r])]
        if not todo:
            return tags
        started = time.monotonic()
        self.log(f"building local images: {', '.join(todo)} (logs in {self.logs})")
        steps: dict[str, Callable[[str, str], None]] = {
            "kafka": self.build_kafka, "postgres": self.build_postgres,
            "toxiproxy": self.build_toxiproxy,
            "nethelper": lambda tag, base: self.build_nethelper(tag, "nethelper.local.Dockerfile", base),
        }
        # Host-side downloads overlap with debootstrap; the image builds then run side by side.
        with ThreadPoolExecutor(max_workers=4) as pool:
            prefetch = []
            if "kafka" in todo:
                prefetch.append(pool.submit(self.kafka_libs))
            if "toxiproxy" in todo:
                prefetch.append(pool.submit(self.toxiproxy_binary))
            base = self.base()
            for f in prefetch:
                f.result()
            for job in [pool.submit(steps[r], tags[r], base) for r in todo]:
                job.result()
        self.log(f"local images ready in {time.monotonic() - started:.0f} s")
        return tags
