"""Stage 2 of the pipeline: turn whatever a student handed in (folder, .zip, .ipynb) into plain source files."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from grader.course import Assignment

MAX_UNPACKED_BYTES = 20 * 1024 * 1024  # a zip larger than this when unpacked is refused (zip bombs)
MAX_ZIP_ENTRIES = 2000
MAX_FILE_BYTES = 20 * 1024 * 1024  # one file of a folder submission; real ones are a few KiB
# In an untagged notebook, a cell whose first line names a file holds that file.
FILE_HEADER = re.compile(r"^\s*(?:%%writefile\s+(?:-a\s+)?|#\s*(?:file:\s*)?)(?P<name>[\w.-]+\.py)\s*$")


class SubmissionError(Exception):
    """The input is not a submission at all; the one-line message says what and where."""


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


def read_submitted_at(data: bytes, where: str) -> datetime | None:
    try:
        value = json.loads(data)["submitted_at"]
        moment = datetime.fromisoformat(value)
    except (ValueError, KeyError, TypeError) as exc:
        raise SubmissionError(f"{where}: needs {{\"submitted_at\": \"2026-12-20T23:00:00+08:00\"}} ({exc})") from None
    if moment.tzinfo is None:
        raise SubmissionError(f"{where}: submitted_at {value!r} needs a time zone, e.g. +08:00")
    return moment


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
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t in by_tag]
        header = FILE_HEADER.match(lines[0]) if lines else None
        name = by_tag[tags[0]] if tags else (header.group("name") if header and header.group("name") in wanted else None)
        if name is None:
            continue
        if header:  # the %%writefile line is a notebook detail, not part of the file
            lines = lines[1:]
        # Other IPython magics and shell escapes are commented out so the file stays Python (same line numbers).
        parts.setdefault(name, []).extend("# " + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
    return {name: "\n".join(lines) + "\n" for name, lines in parts.items()}, dict(notebook)


def collect(entries: dict[str, bytes], source: str, kind: str, assignment: Assignment, student: str) -> Submission:
    """Pick the assignment's files (or one notebook) out of a folder's or a zip's entries (posix relative paths)."""
    problems: list[dict] = []
    entries = {p: d for p, d in entries.items() if "__MACOSX" not in p and not PurePosixPath(p).name.startswith(".")}
    wanted = assignment.files
    # Files may sit at the top or inside one folder (zips of a folder look like that).
    by_name: dict[str, list[str]] = {}
    for path in entries:
        by_name.setdefault(PurePosixPath(path).name, []).append(path)
    submitted_at = None
    if stamps := by_name.get("submission.json"):
        stamp = min(stamps, key=len)  # the one nearest the top
        submitted_at = read_submitted_at(entries[stamp], f"{source}/{stamp}")
    found = {name: min(by_name[name], key=len) for name in wanted if name in by_name}
    notebooks = [p for p in entries if p.endswith(".ipynb") and ".ipynb_checkpoints" not in p]
    if not found and len(notebooks) == 1:
        where = f"{source}/{notebooks[0]}"
        files, notebook = files_from_notebook(entries[notebooks[0]], where, wanted, problems)
        kind = "notebook" if kind == "folder" else kind
    elif not found:
        listing = ", ".join(sorted(entries)[:8]) or "nothing"
        extra = f" ({len(notebooks)} notebooks: say which one)" if notebooks else ""
        raise SubmissionError(f"{source}: none of {', '.join(wanted)} and no single notebook found{extra}; "
                              f"it holds {listing}")
    else:
        files, notebook = {}, None
        for name, path in found.items():
            files[name] = decode_source(entries[path], f"{source}/{path}", problems)
    for name in wanted:
        if name not in files:
            problems.append({"id": "missing_file", "params": {"file": name}})
    return Submission(student, files, kind, source, submitted_at, notebook, problems)


def read_folder(folder: Path) -> dict[str, bytes]:
    entries = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and len(relative.parts) <= 3 and (path.suffix in (".py", ".ipynb", ".json")):
            if path.stat().st_size > MAX_FILE_BYTES:
                raise SubmissionError(f"{path}: {path.stat().st_size} bytes is too large for a submission file")
            entries[relative.as_posix()] = path.read_bytes()
    return entries


def read_zip(path: Path) -> dict[str, bytes]:
    """The zip's entries, refusing paths that leave the archive and archives too large when unpacked."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{path}: not a readable zip file ({exc})") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_ENTRIES:
            raise SubmissionError(f"{path}: {len(infos)} entries, more than the {MAX_ZIP_ENTRIES} allowed")
        total = 0
        entries = {}
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")):
                raise SubmissionError(f"{path}: entry {info.filename!r} points outside the archive")
            total += info.file_size
            if total > MAX_UNPACKED_BYTES:
                raise SubmissionError(f"{path}: more than {MAX_UNPACKED_BYTES // 2**20} MiB when unpacked")
            if not name.endswith((".py", ".ipynb", ".json")):
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(MAX_UNPACKED_BYTES + 1)  # the header's size may lie
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                raise SubmissionError(f"{path}: entry {info.filename!r} cannot be read ({exc})") from None
            if len(data) > info.file_size:
                raise SubmissionError(f"{path}: entry {info.filename!r} is larger than its header says")
            entries[name] = data
        return entries


def load_submission(path: str | Path, assignment: Assignment, student: str | None = None,
                    submitted_at: datetime | None = None) -> Submission:
    """Read a folder of files, a .zip of them, a single .ipynb, or a folder holding one notebook."""
    path = Path(path)
    student = student or path.stem
    if not path.exists():
        raise SubmissionError(f"{path}: no such file or folder")
    if path.is_dir():
        submission = collect(read_folder(path), str(path), "folder", assignment, student)
    elif path.suffix == ".zip":
        submission = collect(read_zip(path), str(path), "zip", assignment, student)
    elif path.suffix == ".ipynb":
        problems: list[dict] = []
        # No submission.json for a lone notebook: beside it may stand other students' notebooks (a batch folder).
        files, notebook = files_from_notebook(path.read_bytes(), str(path), assignment.files, problems)
        missing = [{"id": "missing_file", "params": {"file": n}} for n in assignment.files if n not in files]
        submission = Submission(student, files, "notebook", str(path), None, notebook, problems + missing)
    else:
        kind = path.suffix or "file without extension"
        raise SubmissionError(f"{path}: expected a folder, a .zip or a .ipynb, not a {kind}")
    if not submission.files:
        raise SubmissionError(f"{path}: no code for {', '.join(assignment.files)} found in it")
    return submission if submitted_at is None else dataclasses.replace(submission, submitted_at=submitted_at)
