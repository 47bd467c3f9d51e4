"""The grader's harness: runs student code in the sandbox and answers requests with raw numbers. Standard library only.

In the sandbox it runs as a script, `python -I -S /harness/harness.py CODE_DIR OUTPUT_LIMIT FILES [VARIANT]`, next to
the assignment's commands (/harness/commands.py, the assignment's harness.py): it reads one JSON request per line on
stdin and writes one JSON reply per line on stdout; in the middle of a request it may ask the grader a question (a
line `{"ask": ...}` out, one answer line in). The grader also imports both to run the very same requests on the
reference in its own (trusted) process, so that student and reference are driven by one piece of code.

Requests: `load` and `public_test` (every assignment's), and `<name>` for each `cmd_<name>(session, **args)` of the
assignment's commands module, which may also define `on_import(session, name, module)`. Commands import
`WrongType`, `number` and `numbers` from `grader_harness` (this module). Everything here is copied into every
sandbox, so none of it holds solution logic (docs/architecture.md).
"""
import importlib
import importlib.util
import json
import os
import sys


class WrongType(Exception):
    """Student code returned something that is not what the contract promises."""


def number(x, what):
    """A float from a student's number; ints and bools are numbers too (`Value(0)`, `grad = 0`)."""
    if isinstance(x, (int, float)):
        return float(x)
    try:
        return float(x)  # e.g. numpy scalars
    except Exception:
        raise WrongType(f"{what} is a {type(x).__name__}, expected a number") from None


def numbers(xs, what):
    return [number(x, f"{what}[{i}]") for i, x in enumerate(xs)]


class Session:
    """Answers requests against one submission's modules with one assignment's commands.

    `ask(kind, **payload)` puts a question to the grader in the middle of a request and returns its answer;
    `variant` names the sandbox variant this session runs in (assignment.toml), None for the student's own files.
    """

    def __init__(self, load_module, commands, root=".", ask=None, variant=None, files=()):
        self._load_module = load_module
        self.commands = commands
        self.root = root  # the folder holding the student's files (and the public tests)
        self.ask = ask
        self.variant = variant
        self.files = tuple(files)  # the submission's file names: their frames are the student's in tracebacks
        self._imported = set()

    def module(self, name):
        module = self._load_module(name)
        if name not in self._imported:
            self._imported.add(name)
            hook = getattr(self.commands, "on_import", None)
            if hook is not None:
                hook(self, name, module)
        return module

    def run(self, cmd, args):
        handler = getattr(self, "cmd_" + cmd, None)
        if handler is not None:
            return handler(**args)
        command = getattr(self.commands, "cmd_" + cmd, None)
        if command is None:
            raise ValueError(f"unknown command {cmd!r}")
        return command(self, **args)

    def cmd_load(self, names, required=None):
        """Import each module; report which ones failed (the error itself, for the grader to word), and
        which of the names in `required` (module -> names) a module that did import does not define."""
        problems = {}
        for name in names:
            try:
                module = self.module(name)
            except BaseException as exc:  # noqa: B036 - SyntaxError, SystemExit... all belong in the report
                problems[name] = describe_exception(exc, self.files)
                continue
            missing = [n for n in (required or {}).get(name, []) if not hasattr(module, n)]
            if missing:
                problems[name] = {"type": "missing", "missing": missing, "message": "", "traceback": []}
        return problems

    def cmd_public_test(self, folder, module, name):
        """Run one public test (`grader check`); an AssertionError may carry its feedback in `.feedback`."""
        fn = getattr(import_test_module(os.path.join(self.root, folder), module), name)
        try:
            fn()
        except AssertionError as exc:
            return {"status": "failed", "feedback": public_feedback(getattr(exc, "feedback", None)),
                    "text": str(exc)[:2000]}
        except NotImplementedError as exc:
            return {"status": "todo", "feedback": None, "text": str(exc)[:500]}
        return {"status": "passed", "feedback": None, "text": ""}


def public_feedback(feedback):
    """A public check's feedback, {"id", "params"} or None, as plain JSON (the grader checks its shape and words it):
    numbers, lists of numbers, texts, and one level of nested messages (descriptions)."""
    if not isinstance(feedback, dict) or not isinstance(feedback.get("params"), dict):
        return None
    return {"id": str(feedback.get("id"))[:64], "params": _plain_params(feedback["params"], nested=True)}


def _plain_params(params, nested=False):
    plain = {}
    for key, value in list(params.items())[:16]:
        key = str(key)[:40]
        if nested and isinstance(value, dict) and isinstance(value.get("params"), dict):
            plain[key] = {"id": str(value.get("id"))[:64], "params": _plain_params(value["params"])}
        else:
            plain[key] = _plain(value)
    return plain


def _plain(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value if abs(value) < 1e15 else repr(value)  # NaN, infinities and huge ints as text
    if isinstance(value, (list, tuple)) and len(value) <= 1000 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e15 for v in value):
        return list(value)
    return str(value)[:2000]


def import_test_module(folder, name):
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


# ---------------------------------------------------------------------- errors and the sandbox loop

def describe_exception(exc, files=()):
    """Type, message and the student's own frames only (in `files`, or a public test's), innermost last."""
    import traceback  # only when something failed: a sandbox starts faster without it

    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        name = os.path.basename(frame.filename)
        if name in files or f"{os.sep}tests{os.sep}" in frame.filename:  # Windows paths have backslashes
            frames.append({"file": name[:200], "line": frame.lineno or 0, "function": frame.name[:200],
                           "code": (frame.line or "")[:300]})
    if isinstance(exc, SyntaxError) and exc.filename:
        text = (exc.text or "").rstrip("\r\n")
        code = text.strip()[:300]
        column = (exc.offset or 0) - (len(text) - len(text.lstrip()))  # where the caret goes, in `code`
        frames.append({"file": os.path.basename(exc.filename)[:200], "line": exc.lineno or 0, "function": "",
                       "code": code, "column": max(0, min(column, len(code)))})
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return {
        "type": type(exc).__name__[:100],
        "harness": isinstance(exc, WrongType),
        "message": message[:1000],
        "traceback": frames[-8:],
    }


class CappedOutput:
    """Stands in for sys.stdout/sys.stderr: keeps the first `limit` characters a call prints."""

    def __init__(self, limit):
        self.limit, self.parts, self.size = limit, [], 0

    def write(self, text):
        text = str(text)
        if self.size < self.limit:
            self.parts.append(text[: self.limit - self.size])
        self.size += len(text)
        return len(text)

    def flush(self):
        pass

    def take(self):
        text = "".join(self.parts)
        self.parts, self.size = [], 0
        return text


def load_commands(path):
    """The assignment's commands module from its file; `grader_harness` is this module for its imports."""
    sys.modules.setdefault("grader_harness", sys.modules[__name__])
    spec = importlib.util.spec_from_file_location("commands", path)
    commands = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(commands)
    return commands


def serve(code_dir, output_limit, files, variant=None):
    # The protocol gets private copies of stdin/stdout; fd 0 and 1 then lead nowhere, so nothing student code
    # prints (print, os.write(1, ...), a subprocess) can be taken for a reply.
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    output = CappedOutput(output_limit)
    sys.stdout = sys.stderr = output
    sys.path.insert(0, code_dir)

    def ask(kind, **payload):
        """One question to the grader inside the current request; its one-line answer comes back on stdin.
        The grader decides which questions a request may ask and refuses the rest."""
        replies.write(json.dumps({"ask": kind, **payload}) + "\n")
        replies.flush()
        answer = json.loads(requests.readline() or "null")
        if not isinstance(answer, dict) or "refused" in answer:
            why = answer.get("refused") if isinstance(answer, dict) else "no answer"
            raise WrongType(f"the grader could not answer ({why})")
        return answer

    commands = load_commands(os.path.join(os.path.dirname(os.path.abspath(__file__)), "commands.py"))
    session = Session(importlib.import_module, commands, code_dir, ask, variant, files)
    for line in requests:
        request = json.loads(line)
        try:
            reply = {"ok": True, "value": session.run(request["cmd"], request["args"])}
        except BaseException as exc:  # noqa: B036 - SystemExit and friends are the student's, not ours
            reply = {"ok": False, "error": describe_exception(exc, files)}
        reply["output"] = output.take()
        try:
            text = json.dumps(reply)
        except (TypeError, ValueError) as exc:
            text = json.dumps({"ok": False, "error": describe_exception(WrongType(str(exc))), "output": ""})
        replies.write(text + "\n")
        replies.flush()


if __name__ == "__main__":
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    code_dir, output_limit, files, *variant = sys.argv[1:]  # CODE_DIR OUTPUT_LIMIT FILES [VARIANT]
    serve(code_dir, int(output_limit), files.split(","), variant[0] if variant else None)
