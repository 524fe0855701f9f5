"""prometheus-client's multiprocess directory, prepared before prometheus-client is imported (it reads
PROMETHEUS_MULTIPROC_DIR once, at import): this module must not import it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess(existing: str | None = None) -> tuple[str, Callable[[], None]]:
    """The directory the workers write to, emptied (stale files from an earlier run would count twice), set
    in the environment the workers inherit; returns it and a cleanup for the end of the run. Call it before
    prometheus-client is first imported in this process."""
    if existing:
        os.makedirs(existing, exist_ok=True)
        for name in os.listdir(existing):
            if name.endswith(".db"):
                os.remove(os.path.join(existing, name))
        os.environ[MULTIPROC_ENV] = existing
        return existing, lambda: None
    path = tempfile.mkdtemp(prefix="madoguchi-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path, lambda: shutil.rmtree(path, ignore_errors=True)
