"""Reports and other output on disk: read and validated, or written atomically (never half a file)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from grader.formats.render import render_json
from grader.formats.validation import ReportError, validate_report


def load_report(path: str | os.PathLike) -> dict:
    """Read and validate a report file; every failure is a ReportError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ReportError(f"{path}: not a report (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not a report (a JSON {type(data).__name__}, expected an object)")
    try:
        validate_report(data)
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from None
    except RecursionError:
        raise ReportError(f"{path}: not a report (nested too deeply)") from None
    return data


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text so that a reader (or a crash) sees the old file or the new one, never a part of one."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o666) -> None:
    """Write `data` so that a reader (or a crash) sees the old file or the new one, never a part of one; on disk
    when it returns. `mode` 0o666 lets the umask decide, as open() would."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")  # same folder: os.replace stays a rename
    # O_EXCL never reuses a file someone planted.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with open(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make the rename itself survive a power cut (POSIX; Windows cannot open a folder and needs no such step)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # some file systems refuse to fsync a folder; the new file is in place either way


def write_report_atomic(data: dict, path: str | os.PathLike) -> None:
    """Validate, then write the report as JSON atomically: an invalid report never replaces a good one."""
    validate_report(data)
    write_text_atomic(path, render_json(data))
