"""gRPC stubs for the test process, generated from a pipeline's proto on first use (never committed).

An adapter calls ``load(proto, cache_dir)`` for its own proto: the stubs land in
``<cache_dir>/stubs-<hash of the proto>`` so a changed proto regenerates them, and their directory is put
on ``sys.path`` (generated stubs import each other by top-level name). Returns ``(<name>_pb2,
<name>_pb2_grpc)`` for ``<name>.proto``.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import threading
from pathlib import Path
from types import ModuleType

_LOCK = threading.Lock()


def generate(proto: Path, out: Path) -> None:
    """Generate the Python message and gRPC modules of ``proto`` into ``out`` (protoc from grpcio-tools)."""
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(["protoc", f"-I{proto.parent}", f"--python_out={out}", f"--grpc_python_out={out}", str(proto)])
    if rc != 0:
        raise RuntimeError(f"protoc failed ({rc}) on {proto}")


def load(proto: Path, cache_dir: Path | None = None) -> tuple[ModuleType, ModuleType]:
    """Return ``(<name>_pb2, <name>_pb2_grpc)`` for ``proto``, generating them once per proto content
    (under ``cache_dir``, default the suite's cache: ``CHAOS_CACHE_DIR`` or ``~/.cache/pipeline-chaos``)."""
    from chaos.config import Settings

    name = proto.stem
    cache_dir = cache_dir or Settings.from_env().cache_dir
    with _LOCK:
        digest = hashlib.sha256(proto.read_bytes()).hexdigest()[:12]
        out = cache_dir / f"stubs-{name}-{digest}"
        if not (out / f"{name}_pb2_grpc.py").exists():
            tmp = out.with_suffix(".tmp")
            generate(proto, tmp)
            if not out.exists():
                tmp.replace(out)
        if str(out) not in sys.path:
            sys.path.insert(0, str(out))
        return importlib.import_module(f"{name}_pb2"), importlib.import_module(f"{name}_pb2_grpc")
