# Copyright 2026 The OneGen-HF authors. Apache-2.0.
"""Locate, or fetch and unpack, the Debian packages the dataset builders read (`wordnet-base`, `dict-gcide`).

Order of preference, for each package:

1. an explicit folder (`--wordnet_dir` / `--gcide_dir` of the builders), used as it is;
2. the package installed on this machine (`dpkg-query` says so and its files are present);
3. a copy unpacked earlier into the cache (`<cache>/debian/<package>_<version>/`);
4. `apt-get download <package>` (no installation, no daemon: `dict-gcide` would pull in `dictd` otherwise), then
   `dpkg-deb -x` into the cache. When apt's package lists do not know the package and we are root, `apt-get update`
   is run once and the download retried.

Nothing is installed system-wide. The unpacked copy is written under a temporary name and renamed, so an interrupted
fetch leaves nothing half-written. Where none of this can work (no apt on the machine, no network to Debian's mirror)
the error says what to do instead.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


# package -> (files every copy must have, relative to the package root, i.e. the filesystem root when installed)
PACKAGE_FILES = {
    "wordnet-base": [f"usr/share/wordnet/{kind}.{pos}" for kind in ("data", "index")
                     for pos in ("noun", "verb", "adj", "adv")]
    + [f"usr/share/wordnet/{pos}.exc" for pos in ("noun", "verb", "adj", "adv")],
    "dict-gcide": ["usr/share/dictd/gcide.index", "usr/share/dictd/gcide.dict.dz"],
}
# package -> the folder, relative to the package root, that the parsers read
DATA_SUBDIR = {"wordnet-base": "usr/share/wordnet", "dict-gcide": "usr/share/dictd"}
# package -> licence notice to carry into dataset cards (from the package's copyright file)
COPYRIGHT_FILE = "usr/share/doc/{package}/copyright"


class DebianSourceError(RuntimeError):
    """A Debian source package could not be found or fetched; the message says what to do."""


@dataclass
class DebianSource:
    """Where a package's data files are, and what exactly they are (for dataset cards)."""

    package: str
    version: str
    data_dir: Path  # folder holding the data files (e.g. .../usr/share/wordnet)
    origin: str  # "explicit folder", "installed", "cache" or "apt-get download"
    deb_sha256: str | None = None  # sha256 of the .deb when it was downloaded here
    copyright_text: str | None = None


def default_debian_cache() -> Path:
    """`$ONEGEN_CACHE/debian`, else `$XDG_CACHE_HOME/onegen/debian`, else `~/.cache/onegen/debian`."""
    if os.environ.get("ONEGEN_CACHE"):
        return Path(os.environ["ONEGEN_CACHE"]) / "debian"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "onegen" / "debian"


def _missing_files(root: Path, package: str) -> list[str]:
    return [rel for rel in PACKAGE_FILES[package] if not (root / rel).is_file()]


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as err:
        raise DebianSourceError(
            f"`{cmd[0]}` is not available on this machine, so the Debian package cannot be fetched. On a Debian or "
            f"Ubuntu system it is part of apt/dpkg; elsewhere, unpack the package by hand and pass its data folder "
            f"(--wordnet_dir / --gcide_dir)."
        ) from err


def _installed_version(package: str) -> str | None:
    if shutil.which("dpkg-query") is None:
        return None
    result = _run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package])
    if result.returncode != 0 or "install ok installed" not in result.stdout:
        return None
    return result.stdout.split("\t", 1)[1].strip()


def _read_copyright(root: Path, package: str) -> str | None:
    path = root / COPYRIGHT_FILE.format(package=package)
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def _download_deb(package: str, workdir: Path) -> Path:
    """`apt-get download package` into `workdir`; on "unable to locate", refresh the lists once if we are root."""
    cmd = ["apt-get", "download", package]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd[1:1] = ["-o", "APT::Sandbox::User=root"]  # root downloading into a folder _apt cannot write to
    result = _run(cmd, cwd=workdir)
    if result.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
        update = _run(["apt-get", "update", "-qq"])
        if update.returncode == 0:
            result = _run(cmd, cwd=workdir)
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not debs:
        hint = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else " (as root, run `apt-get update` first)"
        raise DebianSourceError(
            f"Could not download the Debian package {package!r} with `{' '.join(cmd)}`{hint}: "
            f"{(result.stderr or result.stdout).strip()[-500:]}\nAlternatives: `apt-get install {package}` "
            f"(for dict-gcide: `apt-get download dict-gcide && dpkg-deb -x dict-gcide_*.deb DIR`), then pass the data "
            f"folder with --wordnet_dir / --gcide_dir."
        )
    return debs[-1]


def _deb_field(deb: Path, field: str) -> str:
    result = _run(["dpkg-deb", "-f", str(deb), field])
    if result.returncode != 0:
        raise DebianSourceError(f"{deb}: not a readable .deb file: {result.stderr.strip()}")
    return result.stdout.strip()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_into_cache(package: str, cache: Path) -> DebianSource:
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{package}-", dir=cache) as work:
        work = Path(work)
        os.chmod(work, 0o755)
        deb = _download_deb(package, work)
        version = _deb_field(deb, "Version")
        unpack = work / "root"
        result = _run(["dpkg-deb", "-x", str(deb), str(unpack)])
        if result.returncode != 0:
            raise DebianSourceError(f"`dpkg-deb -x {deb.name}` failed: {result.stderr.strip()}")
        missing = _missing_files(unpack, package)
        if missing:
            raise DebianSourceError(f"{deb.name} (version {version}) lacks the expected files {missing}")
        digest = sha256_file(deb)
        (unpack / "DEB_SHA256").write_text(f"{digest}  {deb.name}\n")
        (unpack / "DEB_VERSION").write_text(version + "\n")
        target = cache / f"{package}_{version.replace(':', '%3a')}"
        if target.exists():  # another process won the race: keep theirs
            shutil.rmtree(unpack)
        else:
            os.replace(unpack, target)
    found = _from_cache(package, target)
    if found is None:
        raise DebianSourceError(f"{target}: the unpacked copy of {package} is incomplete; delete the folder and retry")
    return found


def _from_cache(package: str, root: Path) -> DebianSource | None:
    if _missing_files(root, package) or not (root / "DEB_VERSION").is_file():
        return None
    sha_line = (root / "DEB_SHA256").read_text().split() if (root / "DEB_SHA256").is_file() else []
    return DebianSource(
        package=package, version=(root / "DEB_VERSION").read_text().strip(), data_dir=root / DATA_SUBDIR[package],
        origin="cache", deb_sha256=sha_line[0] if sha_line else None, copyright_text=_read_copyright(root, package),
    )


def _from_explicit_dir(package: str, folder: Path) -> DebianSource:
    folder = Path(folder)
    names = [Path(rel).name for rel in PACKAGE_FILES[package]]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DebianSourceError(f"{folder}: not a {package} data folder, it lacks {missing}")
    return DebianSource(package=package, version="unknown (explicit folder)", data_dir=folder, origin="explicit folder")


def locate_package(package: str, explicit_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                   allow_download: bool = True) -> DebianSource:
    """Find `package`'s data files (see the module docstring for the order), fetching them when needed."""
    if package not in PACKAGE_FILES:
        raise ValueError(f"unknown source package {package!r}; known: {sorted(PACKAGE_FILES)}")
    if explicit_dir is not None:
        return _from_explicit_dir(package, Path(explicit_dir))
    installed = _installed_version(package)
    if installed and not _missing_files(Path("/"), package):
        return DebianSource(package=package, version=installed, data_dir=Path("/") / DATA_SUBDIR[package],
                            origin="installed", copyright_text=_read_copyright(Path("/"), package))
    cache = Path(cache_dir) if cache_dir is not None else default_debian_cache()
    for root in sorted(cache.glob(f"{package}_*"), reverse=True) if cache.is_dir() else []:
        found = _from_cache(package, root)
        if found is not None:
            return found
    if not allow_download:
        raise DebianSourceError(
            f"The Debian package {package!r} is neither installed nor unpacked in {cache}, and downloading is off"
        )
    source = _fetch_into_cache(package, cache)
    source.origin = "apt-get download"
    return source
