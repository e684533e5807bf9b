"""The pipeline's gRPC stubs for the test process, generated from the proto on first use (never committed).

The stubs land in ``<cache_dir>/stubs-<hash of the proto>`` so a changed proto regenerates them.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import threading
from pathlib import Path
from types import ModuleType

from chaos.images import SUT_DIR

PROTO = SUT_DIR / "proto" / "pipeline.proto"
_LOCK = threading.Lock()


def load(cache_dir: Path, proto: Path = PROTO) -> tuple[ModuleType, ModuleType]:
    """Return ``(pipeline_pb2, pipeline_pb2_grpc)``."""
    with _LOCK:
        digest = hashlib.sha256(proto.read_bytes()).hexdigest()[:12]
        out = cache_dir / f"stubs-{digest}"
        if not (out / "pipeline_pb2_grpc.py").exists():
            from grpc_tools import protoc

            tmp = out.with_suffix(".tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            rc = protoc.main(["protoc", f"-I{proto.parent}", f"--python_out={tmp}",
                              f"--grpc_python_out={tmp}", str(proto)])
            if rc != 0:
                raise RuntimeError(f"protoc failed ({rc}) on {proto}")
            tmp.replace(out) if not out.exists() else None
        if str(out) not in sys.path:
            sys.path.insert(0, str(out))
        return importlib.import_module("pipeline_pb2"), importlib.import_module("pipeline_pb2_grpc")
