"""A time-stamping authority on loopback for tests: a throwaway CA and TSA certificate made with openssl,
and `openssl ts -reply` behind a tiny HTTP server (RFC 3161 over HTTP: POST application/timestamp-query)."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CONFIG = """
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
other_policies = 1.3.6.1.4.1.99999.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

EXTENSIONS = """
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
"""


@dataclass
class LocalTsa:
    url: str
    ca_file: Path
    dir: Path
    requests: list[bytes]


def openssl() -> str:
    path = shutil.which("openssl")
    assert path, "openssl is needed for the local TSA (.ci/run installs it)"
    return path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([openssl(), *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d: Path) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
        "-subj", "/CN=madoguchi test TSA root",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
             "-subj", "/CN=madoguchi test TSA", cwd=d)  # fmt: skip
    (d / "ext.cnf").write_text(EXTENSIONS)
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "2",
             "-out", "tsa.pem", "-days", "30", "-extfile", "ext.cnf", cwd=d)  # fmt: skip
    (d / "tsaserial").write_text("01\n")
    (d / "tsa.cnf").write_text(CONFIG.format(dir=d))


@contextmanager
def local_tsa() -> Iterator[LocalTsa]:
    with tempfile.TemporaryDirectory(prefix="madoguchi-tsa-") as tmp:
        d = Path(tmp)
        make_pki(d)
        seen: list[bytes] = []
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    self.send_error(415)
                    return
                with lock:
                    seen.append(body)
                    name = uuid.uuid4().hex
                    (d / f"{name}.tsq").write_bytes(body)
                    subprocess.run(
                        [openssl(), "ts", "-reply", "-config", "tsa.cnf", "-queryfile", f"{name}.tsq",
                         "-out", f"{name}.tsr"],
                        cwd=d, check=True, capture_output=True, timeout=60,
                    )  # fmt: skip
                    reply = (d / f"{name}.tsr").read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield LocalTsa(f"http://127.0.0.1:{server.server_address[1]}/tsa", d / "ca.pem", d, seen)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
