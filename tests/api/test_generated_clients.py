"""The contract from the outside, as a front-end team uses it: a TypeScript client generated from the committed
openapi/openapi.json with openapi-typescript (versions pinned in tests/contract_clients/package-lock.json,
TypeScript 5) must type-check a small front end under `tsc --strict`. Needs Node.js and npm (CI installs them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CLIENTS = Path(__file__).resolve().parents[1] / "contract_clients"


def run(*command: str) -> None:
    done = subprocess.run(command, cwd=CLIENTS, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def test_a_generated_typescript_client_type_checks_a_front_end() -> None:
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), (
        "Node.js and npm are needed for the contract check (apt-get install nodejs npm)"
    )
    installed = CLIENTS / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < (CLIENTS / "package-lock.json").stat().st_mtime:
        run(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
    run("node", "generate.mjs")
    run(str(CLIENTS / "node_modules" / ".bin" / "tsc"), "-p", "tsconfig.json")
