"""Test certificates made with the ``openssl`` command: a test CA, and bridge certificates it
issues for the names a test chooses (so a test can reach a bridge at 127.0.0.1 whose
certificate is issued for ``bridge.test`` only)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder: Path, name: str = "test-ca") -> tuple[Path, Path]:
    """A CA certificate and its key in ``folder`` (made once: a second call reuses them)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    if not cert.exists():
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                 "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    return cert, key


def issued(folder: Path, name: str, alt_names: str, ca: str = "test-ca") -> tuple[Path, Path]:
    """A server certificate (and key) for ``alt_names`` (``DNS:bridge.test``, ``IP:...``),
    issued by the test CA ``ca`` of ``folder``."""
    ca_cert, ca_key = make_ca(folder, ca)
    cert, key, request = folder / f"{name}.pem", folder / f"{name}-key.pem", folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    extensions.write_text(
        f"subjectAltName={alt_names}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request),
             "-subj", f"/CN={name}")  # fmt: skip
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "1",
             "-extfile", str(extensions))  # fmt: skip
    return cert, key
