"""Vendor the web console's third-party front-end files from the npm registry, pinned.

Run from anywhere (it finds the repository from its own path)::

    python scripts/vendor_assets.py

For each package of :data:`PINS` it runs ``npm pack <name>@<version>`` in a temporary folder,
checks the tarball against the pinned ``dist.integrity`` (computed here from the bytes, not
taken from npm's word), its ``package.json`` against the pinned name, version and license, and
copies only the files the service serves, with the package's license texts, to
``src/mt5gate/service/console/static/vendor/<package>/<file>`` (no version in the path, so
templates do not change on an upgrade). ``VENDORED.json`` there records what came from where:
the tarball URL and integrity, the license, and each file's sha256 and size;
``tests/service/test_vendored.py`` checks the folder against it offline.

The folder is rebuilt from scratch each run (it holds nothing else). Files are copied byte for
byte, so each can be compared with the published tarball. To upgrade a package: change its
version, run the script once with ``--integrity-from-registry`` (it then accepts whatever
tarball npm fetched and prints its integrity), check that against ``npm view <name>@<version>
dist.integrity``, paste its base64 part into :data:`PINS`, and run the script again.

Standard library only; it needs ``npm`` on the PATH and the registry it is configured for.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
VENDOR: Final = ROOT / "src" / "mt5gate" / "service" / "console" / "static" / "vendor"
MANIFEST: Final = "VENDORED.json"
REGISTRY: Final = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Pin:
    """One npm package at one version, and which of its files the console serves.

    ``files`` and ``licenses`` are paths inside the package (the tarball's ``package/``
    folder); each is copied under the package's folder by its base name. ``licenses`` holds
    the package's license and every third-party license text that ships for the copied
    bundles (webpack's ``*.LICENSE.txt``): the bundles embed that code.
    """

    name: str
    version: str
    sha512: str
    license: str
    files: tuple[str, ...]
    licenses: tuple[str, ...]

    @property
    def integrity(self) -> str:
        """The registry's ``dist.integrity`` of the tarball (``sha512`` is its base64 part)."""
        return f"sha512-{self.sha512}"

    @property
    def spec(self) -> str:
        """What ``npm pack`` is asked for."""
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        """The registry's URL of the tarball (npm's layout for unscoped packages)."""
        return f"{REGISTRY}/{self.name}/-/{self.name}-{self.version}.tgz"


PINS: Final = (
    Pin(
        "htmx.org", "2.0.11",
        "Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==",
        "0BSD", ("dist/htmx.min.js",), ("LICENSE",),
    ),
    Pin(
        "lightweight-charts", "4.2.3",
        "5kS/2hY3wNYNzhnS8Gb+GAS07DX8GPF2YVDnd2NMC85gJVQ6RLU6YrXNgNJ6eg0AnWPwCnvaGtYmGky3HiLQEw==",
        "Apache-2.0", ("dist/lightweight-charts.standalone.production.js",), ("LICENSE",),
    ),
    Pin(
        "swagger-ui-dist", "5.36.0",
        "Lt6/Kb0gXmLdiabLhvso4VdJP9V7qJWB0zh0gzeXUV3+CMOTzMmvpJRSXN7EAjfwixwmoi9ezDbLHiexC7lA9A==",
        "Apache-2.0", ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"),
        ("LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"),
    ),
    Pin(
        "redoc", "2.5.4",
        "M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==",
        "MIT", ("bundles/redoc.standalone.js",),
        # the standalone bundle inlines its search worker, whose licenses are in the second
        ("LICENSE", "bundles/redoc.standalone.js.LICENSE.txt",
         "bundles/d87bcbdbea8f8f5aa26f.worker.js.LICENSE.txt"),
    ),
)  # fmt: skip


class VendorError(Exception):
    """A package that is not what its pin says (or that npm could not fetch)."""


def integrity_of(data: bytes) -> str:
    """The Subresource Integrity string npm records for a tarball (``sha512-<base64>``)."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def npm_pack(spec: str, folder: Path) -> Path:
    """Download ``spec``'s tarball into ``folder`` with ``npm pack`` (no lifecycle scripts)."""
    command = ["npm", "pack", spec, "--json", "--ignore-scripts", "--pack-destination", str(folder)]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise VendorError(f"npm pack {spec} failed ({done.returncode}): {done.stderr.strip()}")
    (packed,) = json.loads(done.stdout)
    return folder / str(packed["filename"])


def _member(archive: tarfile.TarFile, path: str) -> bytes:
    """The bytes of ``package/<path>``: a regular file, or :class:`VendorError`."""
    try:
        member = archive.getmember(f"package/{path}")
    except KeyError:
        raise VendorError(f"no package/{path} in the tarball") from None
    stream = archive.extractfile(member) if member.isfile() else None
    if stream is None:
        raise VendorError(f"package/{path} is not a regular file")
    with stream:
        return stream.read()


def _check_metadata(pin: Pin, archive: tarfile.TarFile) -> None:
    """The tarball's ``package.json`` names the pinned package, version and license."""
    meta = json.loads(_member(archive, "package.json"))
    found = (meta.get("name"), meta.get("version"), meta.get("license"))
    if found != (pin.name, pin.version, pin.license):
        raise VendorError(f"{pin.spec}: package.json says {found}")


def _file_entry(pin: Pin, source: str, data: bytes) -> dict[str, Any]:
    """One copied file as the manifest records it (its path relative to the vendor folder)."""
    return {
        "path": f"{pin.name}/{PurePosixPath(source).name}",
        "source": f"package/{source}",
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }


def vendor_package(pin: Pin, tarball: Path, dest: Path, trust_registry: bool) -> dict[str, Any]:
    """Copy ``pin``'s files out of ``tarball`` into ``dest/<name>/`` and describe them."""
    data = tarball.read_bytes()
    integrity = integrity_of(data)
    if integrity != pin.integrity and not trust_registry:
        raise VendorError(f"{pin.spec}: integrity {integrity}, pinned {pin.integrity}")
    names = [PurePosixPath(p).name for p in (*pin.files, *pin.licenses)]
    if len(set(names)) != len(names):
        raise VendorError(f"{pin.spec}: two files would have the same name in {pin.name}/")
    folder = dest / pin.name
    folder.mkdir(parents=True)
    entries: dict[str, list[dict[str, Any]]] = {"files": [], "licenses": []}
    with tarfile.open(tarball, "r:gz") as archive:
        _check_metadata(pin, archive)
        for kind, sources in (("files", pin.files), ("licenses", pin.licenses)):
            for source in sources:
                content = _member(archive, source)
                (folder / PurePosixPath(source).name).write_bytes(content)
                entries[kind].append(_file_entry(pin, source, content))
    return {"name": pin.name, "version": pin.version, "tarball": pin.tarball,
            "integrity": integrity, "license": pin.license, **entries}  # fmt: skip


def manifest_text(packages: list[dict[str, Any]]) -> str:
    """``VENDORED.json``: stable (sorted keys, two-space indent, final newline) for diffs."""
    document = {"generated_by": "scripts/vendor_assets.py", "packages": packages}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def vendor(dest: Path, trust_registry: bool = False) -> list[dict[str, Any]]:
    """Rebuild ``dest`` from :data:`PINS`: staged in a temporary folder, then swapped in, so a
    failed run leaves the previous folder as it was."""
    with tempfile.TemporaryDirectory(prefix="mt5gate-vendor-") as temporary:
        work = Path(temporary)
        staged = work / "vendor"
        staged.mkdir()
        packages = []
        for pin in PINS:
            (work / pin.name).mkdir()
            tarball = npm_pack(pin.spec, work / pin.name)
            packages.append(vendor_package(pin, tarball, staged, trust_registry))
        (staged / MANIFEST).write_text(manifest_text(packages), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(staged, dest)
    return packages


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dest", type=Path, default=VENDOR, help="the vendor folder to rebuild")
    parser.add_argument("--integrity-from-registry", action="store_true",
                        help="accept the tarball's integrity when it differs from the pin "
                        "(when upgrading; paste the printed value into PINS)")  # fmt: skip
    options = parser.parse_args(argv)
    try:
        packages = vendor(options.dest, options.integrity_from_registry)
    except VendorError as error:
        print(f"vendor_assets: {error}", file=sys.stderr)
        return 1
    for package in packages:
        print(f"{package['name']}@{package['version']} {package['integrity']}")
        for entry in (*package["files"], *package["licenses"]):
            print(f"  {entry['path']:<60} {entry['bytes']:>9} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
