"""The console's vendored front-end files are exactly those ``VENDORED.json`` records.

``scripts/vendor_assets.py`` copies them from pinned npm tarballs and writes the manifest; here,
offline (npm is never called), every recorded file must be on disk with its sha256 and size,
nothing unrecorded may sit beside them, every package must ship its license text, and the
manifest must agree with the script's pins (a pin changed without re-running the script, or a
file edited by hand, fails). The major versions are held too: the console is written against
htmx 2.0, Lightweight Charts 4.2 (``addCandlestickSeries``, ``setMarkers``) and Redoc 2.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "src" / "mt5gate" / "service" / "console" / "static" / "vendor"
SCRIPT = ROOT / "scripts" / "vendor_assets.py"

#: The version series the console's code is written for (a newer major changes the API).
SERIES = {"htmx.org": "2.0.", "lightweight-charts": "4.2.", "swagger-ui-dist": "5.", "redoc": "2."}


def _manifest() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VENDOR / "VENDORED.json").read_text(encoding="utf-8"))
    return document


def _script() -> ModuleType:
    """``scripts/vendor_assets.py``, imported by path (it is not a package; importing it runs
    nothing). It is registered in ``sys.modules`` first: its dataclass looks itself up there."""
    name = "mt5gate_scripts_vendor_assets"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


PACKAGES = _manifest()["packages"]


def _entries(package: dict[str, Any]) -> list[dict[str, Any]]:
    return [*package["files"], *package["licenses"]]


@pytest.mark.parametrize("package", PACKAGES, ids=[p["name"] for p in PACKAGES])
def test_every_recorded_file_is_there_with_its_hash(package: dict[str, Any]) -> None:
    for entry in _entries(package):
        path = VENDOR / entry["path"]
        assert path.is_file(), entry["path"]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
        assert len(data) == entry["bytes"], entry["path"]
        assert entry["path"].startswith(package["name"] + "/")


@pytest.mark.parametrize("package", PACKAGES, ids=[p["name"] for p in PACKAGES])
def test_every_package_ships_its_license(package: dict[str, Any]) -> None:
    assert package["license"]
    licenses = {entry["path"] for entry in package["licenses"]}
    assert f"{package['name']}/LICENSE" in licenses
    for path in licenses:
        assert (VENDOR / path).stat().st_size > 0


def test_nothing_unrecorded_is_vendored() -> None:
    on_disk = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()}
    recorded = {entry["path"] for package in PACKAGES for entry in _entries(package)}
    assert on_disk == recorded | {"VENDORED.json"}


def test_the_manifest_matches_the_scripts_pins() -> None:
    script = _script()
    assert [p["name"] for p in PACKAGES] == [pin.name for pin in script.PINS]
    for package, pin in zip(PACKAGES, script.PINS, strict=True):
        assert package["version"] == pin.version
        assert package["integrity"] == pin.integrity
        assert package["tarball"] == pin.tarball
        assert package["license"] == pin.license
        assert [e["source"] for e in package["files"]] == [f"package/{f}" for f in pin.files]
        assert [e["source"] for e in package["licenses"]] == [f"package/{f}" for f in pin.licenses]
    assert script.manifest_text(PACKAGES) == (VENDOR / "VENDORED.json").read_text("utf-8")


@pytest.mark.parametrize("package", PACKAGES, ids=[p["name"] for p in PACKAGES])
def test_pins_are_exact_versions_of_the_expected_series(package: dict[str, Any]) -> None:
    version = package["version"]
    assert version.startswith(SERIES[package["name"]])
    assert all(part.isdigit() for part in version.split(".")), "a release, not a pre-release"
    algorithm, _, digest = package["integrity"].partition("-")
    assert algorithm == "sha512"
    assert len(base64.b64decode(digest, validate=True)) == 64
    name = package["name"]
    assert package["tarball"] == f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz"
