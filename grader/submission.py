"""Stage 2 of the pipeline: turn whatever a student handed in (folder, .zip, .ipynb) into plain source files."""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path, PurePosixPath

from grader.course import Assignment
from grader.errors import UnusableInput
from grader.formats import _printable
from grader.messages import render

MAX_UNPACKED_BYTES = 20 * 1024 * 1024  # a zip larger than this when unpacked is refused (zip bombs)
MAX_ZIP_ENTRIES = 2000
MAX_FILE_BYTES = 20 * 1024 * 1024  # one file of a folder submission; real ones are a few KiB
# In an untagged notebook, a cell whose first line names a file holds that file.
FILE_HEADER = re.compile(r"^\s*(?:%%writefile\s+(?:-a\s+)?|#\s*(?:file:\s*)?)(?P<name>[\w.-]+\.py)\s*$")
READ_SUFFIXES = (".py", ".ipynb")
STAMP_SUFFIX = ".submission.json"  # <student>.submission.json beside (never inside) a submission: its time
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Opening a name never follows a link at it, and never waits on a FIFO planted under it.
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class SubmissionError(UnusableInput):
    """The input is not a submission at all; the one-line message says what and where (file names from a
    student's zip or folder with their control characters and bidi marks shown as escapes)."""

    def __init__(self, message: str) -> None:
        super().__init__(_printable(message))


@dataclass(frozen=True)
class Submission:
    student: str
    files: dict[str, str]  # the assignment's files that were found: name -> source text
    kind: str  # "folder", "zip" or "notebook"
    source: str  # the path that was given
    submitted_at: datetime | None = None
    notebook: dict | None = None  # the notebook itself (JSON), for feedback pages
    problems: list[dict] = field(default_factory=list)  # {"id", "params"}: missing files, odd encodings

    @property
    def sha256(self) -> str:
        """Over the normalised files, so that the same code hashes the same in any packaging."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + self.files[name].encode("utf-8", "surrogatepass") + b"\0")
        return digest.hexdigest()


def decode_source(data: bytes, where: str, problems: list[dict]) -> str:
    """UTF-8 (with or without BOM); else GBK, common on Chinese Windows; else UTF-8 with the bad bytes replaced."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        position = exc.start
    try:
        text = data.decode("gbk")
        problems.append({"id": "encoding_gbk", "params": {"file": where}})
        return text
    except UnicodeDecodeError:
        problems.append({"id": "encoding_bad", "params": {"file": where, "offset": position,
                                                            "byte": f"0x{data[position]:02x}"}})
        return data.decode("utf-8", errors="replace")


def parse_time(value: object, where: str, zone: tzinfo | None = None) -> datetime:
    """An ISO 8601 time with its zone, e.g. 2026-12-20T23:00:00+08:00; one without a zone is read in `zone`
    (`grader batch --timezone`), and without `zone` it is a one-line SubmissionError, as is anything else: a
    time without a zone is a problem of the collection, which only course staff can settle."""
    try:
        moment = datetime.fromisoformat(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise SubmissionError(f"{where}: {value!r} is not an ISO 8601 time such as 2026-12-20T23:00:00+08:00") from None
    return aware(moment, str(value), where, zone)


def aware(moment: datetime, text: str, where: str, zone: tzinfo | None) -> datetime:
    """`moment` (written `text`) with its zone; a naive one read in `zone`, else a SubmissionError naming `where`."""
    if moment.tzinfo is not None:
        return moment
    if zone is None:
        raise SubmissionError(f"{where}: {text!r} has no time zone: add one (e.g. +08:00) "
                              "or say how to read such times with --timezone ZONE (e.g. Asia/Shanghai)")
    return moment.replace(tzinfo=zone)


def stamp_path(path: Path) -> Path:
    """Where the course staff's time for the submission at `path` is: <student>.submission.json beside it."""
    return path.with_name((path.name if path.is_dir() else path.stem) + STAMP_SUFFIX)


def read_stamp(path: Path, zone: tzinfo | None = None) -> datetime | None:
    """The submission time from the file beside the submission, written by staff or the collection layer; None
    when there is none. Never read from inside a submission: a student could write it there."""
    stamp = stamp_path(path)
    if not stamp.is_file():
        return None
    try:
        value = json.loads(stamp.read_bytes())["submitted_at"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SubmissionError(f"{stamp}: needs {{\"submitted_at\": \"2026-12-20T23:00:00+08:00\"}} ({exc})") from None
    return parse_time(value, f"{stamp}: submitted_at", zone)


def files_from_notebook(data: bytes, where: str, wanted: tuple[str, ...], problems: list[dict]) -> tuple[dict, dict]:
    """The code of the cells tagged `engine`, `nn`, `train`; else of the cells whose first line names the file."""
    import nbformat  # only notebook submissions pay for this import

    try:
        notebook = nbformat.reads(decode_source(data, where, problems), as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for bad JSON / bad structure
        raise SubmissionError(f"{where}: not a readable Jupyter notebook ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'invalid'})") from None
    parts: dict[str, list[str]] = {}
    by_tag = {Path(name).stem: name for name in wanted}
    for cell in notebook.cells:
        if cell.get("cell_type") != "code" or not isinstance(cell.get("source"), str):
            continue
        lines = _LONE_SURROGATE.sub("\ufffd", cell.source).splitlines()  # JSON can carry them; UTF-8 cannot
        tags = [t for t in cell_tags(cell) if t in by_tag]
        header = FILE_HEADER.match(lines[0]) if lines else None
        name = (by_tag[tags[0]] if tags
                else header.group("name") if header and header.group("name") in wanted else None)
        if name is None:
            continue
        if header:  # the %%writefile line is a notebook detail, not part of the file
            lines = lines[1:]
        # Other IPython magics and shell escapes are commented out so the file stays Python (same line numbers).
        parts.setdefault(name, []).extend("# " + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
    return {name: "\n".join(lines) + "\n" for name, lines in parts.items()}, dict(notebook)


def cell_tags(cell: dict) -> list[str]:
    """A cell's tags; malformed metadata (`"tags": 5`) has none."""
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def link_problem(path: str) -> dict:
    return {"id": "symlink", "params": {"file": path}}


def collect(entries: dict[str, bytes], links: list[str], source: str, kind: str, assignment: Assignment,
            student: str) -> Submission:
    """Pick the assignment's files (or one notebook) out of a folder's or a zip's entries (posix relative paths);
    `links` are the entries that were symbolic links, reported and never read."""
    problems: list[dict] = [link_problem(link) for link in links]
    entries = {p: d for p, d in entries.items() if "__MACOSX" not in p and not PurePosixPath(p).name.startswith(".")}
    wanted = assignment.files
    # Files may sit at the top or inside one folder (zips of a folder look like that).
    by_name: dict[str, list[str]] = {}
    for path in entries:
        by_name.setdefault(PurePosixPath(path).name, []).append(path)
    found = {name: min(by_name[name], key=len) for name in wanted if name in by_name}
    notebooks = [p for p in entries if p.endswith(".ipynb") and ".ipynb_checkpoints" not in p]
    if not found and len(notebooks) == 1:
        where = f"{source}/{notebooks[0]}"
        files, notebook = files_from_notebook(entries[notebooks[0]], where, wanted, problems)
        kind = "notebook" if kind == "folder" else kind
    elif not found:
        listing = ", ".join(sorted(entries)[:8]) or "nothing"
        extra = f" ({len(notebooks)} notebooks: say which one)" if notebooks else ""
        linked = f"; {render(link_problem(links[0]))}" if links else ""
        raise SubmissionError(f"{source}: none of {', '.join(wanted)} and no single notebook found{extra}; "
                              f"it holds {listing}{linked}")
    else:
        files, notebook = {}, None
        for name, path in found.items():
            files[name] = decode_source(entries[path], f"{source}/{path}", problems)
    for name in wanted:
        if name not in files:
            problems.append({"id": "missing_file", "params": {"file": name}})
    return Submission(student, files, kind, source, None, notebook, problems)


def open_no_follow(name: str | Path, dir_fd: int | None = None, flags: int = os.O_RDONLY) -> int:
    """Open `name` without following a link at it; a link is a SubmissionError (ELOOP), not its target."""
    try:
        return os.open(name, flags | _NO_FOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SubmissionError(f"{name} is a symbolic link; submit the file itself") from None
        raise SubmissionError(f"{name}: cannot be read ({exc.strerror or exc})") from None


def read_regular(fd: int, where: str) -> bytes:
    """The content of an open regular file (checked on the open file itself: no swap between check and read)."""
    with open(fd, "rb", closefd=True) as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(f"{where}: not a regular file")
        data = file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise SubmissionError(f"{where}: more than {MAX_FILE_BYTES} bytes is too large for a submission file")
        return data


def read_folder(folder: Path) -> tuple[dict[str, bytes], list[str]]:
    """The .py and .ipynb files up to two folders deep, and the symbolic links met (never followed: a link to
    the reference or to a root-only file must not become the student's code or feedback)."""
    entries: dict[str, bytes] = {}
    links: list[str] = []
    directory = getattr(os, "O_DIRECTORY", 0)

    def walk(dir_fd: int, prefix: str, depth: int) -> None:
        with os.scandir(dir_fd) as listing:
            items = sorted(listing, key=lambda item: item.name)
        for item in items:
            relative = prefix + item.name
            if item.name.startswith(".") or item.name == "__MACOSX":
                continue
            if item.is_symlink():
                links.append(relative)
            elif item.is_dir(follow_symlinks=False):
                if depth < 2:
                    child = open_no_follow(item.name, dir_fd, os.O_RDONLY | directory)
                    try:
                        walk(child, relative + "/", depth + 1)
                    finally:
                        os.close(child)
            elif item.name.endswith(READ_SUFFIXES) and item.is_file(follow_symlinks=False):
                entries[relative] = read_regular(open_no_follow(item.name, dir_fd), f"{folder}/{relative}")

    top = open_no_follow(folder, flags=os.O_RDONLY | directory)
    try:
        walk(top, "", 0)
    finally:
        os.close(top)
    return entries, links


def read_zip(path: Path) -> tuple[dict[str, bytes], list[str]]:
    """The zip's entries and its symbolic links (never read), refusing paths that leave the archive and archives
    too large when unpacked."""
    with open(open_no_follow(path), "rb") as file:
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SubmissionError(f"{path}: not a readable zip file ({exc})") from None
        with archive:
            return zip_entries(archive, path)


def zip_entries(archive: zipfile.ZipFile, path: Path) -> tuple[dict[str, bytes], list[str]]:
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_ENTRIES:
        raise SubmissionError(f"{path}: {len(infos)} entries, more than the {MAX_ZIP_ENTRIES} allowed")
    total = 0
    entries, links = {}, []
    for info in infos:
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")):
            raise SubmissionError(f"{path}: entry {info.filename!r} points outside the archive")
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise SubmissionError(f"{path}: more than {MAX_UNPACKED_BYTES // 2**20} MiB when unpacked")
        if stat.S_ISLNK(info.external_attr >> 16):
            links.append(name)
            continue
        if not name.endswith(READ_SUFFIXES):
            continue
        try:
            with archive.open(info) as member:
                data = member.read(MAX_UNPACKED_BYTES + 1)  # the header's size may lie
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            raise SubmissionError(f"{path}: entry {info.filename!r} cannot be read ({exc})") from None
        if len(data) > info.file_size:
            raise SubmissionError(f"{path}: entry {info.filename!r} is larger than its header says")
        entries[name] = data
    return entries, links


def load_submission(path: str | Path, assignment: Assignment, student: str | None = None,
                    submitted_at: datetime | None = None) -> Submission:
    """Read a folder of files, a .zip of them, a single .ipynb, or a folder holding one notebook; nothing behind a
    symbolic link is read. The time is `submitted_at`, else the one of <student>.submission.json beside PATH."""
    path = Path(path)
    student = student or path.stem
    if not os.path.lexists(path):
        raise SubmissionError(f"{path}: no such file or folder")
    if path.is_symlink():
        raise SubmissionError(f"{path} is a symbolic link; submit the {'folder' if path.is_dir() else 'file'} itself")
    if path.is_dir():
        submission = collect(*read_folder(path), str(path), "folder", assignment, student)
    elif path.suffix == ".zip":
        submission = collect(*read_zip(path), str(path), "zip", assignment, student)
    elif path.suffix == ".ipynb":
        problems: list[dict] = []
        data = read_regular(open_no_follow(path), str(path))
        files, notebook = files_from_notebook(data, str(path), assignment.files, problems)
        missing = [{"id": "missing_file", "params": {"file": n}} for n in assignment.files if n not in files]
        submission = Submission(student, files, "notebook", str(path), None, notebook, problems + missing)
    else:
        kind = path.suffix or "file without extension"
        raise SubmissionError(f"{path}: expected a folder, a .zip or a .ipynb, not a {kind}")
    if not submission.files:
        raise SubmissionError(f"{path}: no code for {', '.join(assignment.files)} found in it")
    return dataclasses.replace(submission, submitted_at=submitted_at or read_stamp(path))
