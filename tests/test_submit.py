"""`grader submit`: what a student (or their CI) runs to hand in work to `grader serve` and read its verdict."""
import subprocess
import sys

import pytest

from tests.test_service import ROOT, Server, users

SAMPLES = ROOT / "submissions" / "micrograd"


def submit(server: Server, token: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "submit", *args, "--server", server.url, "--token", token],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture
def service(tmp_path):
    data = tmp_path / "data"
    tokens = users(data, None, ["bob", "eve"])
    server = Server(data, None)
    yield server, tokens
    server.stop()


@pytest.mark.slow
def test_submit_and_wait_prints_the_hidden_tests_feedback(service):
    server, tokens = service
    result = submit(server, tokens["bob"], str(SAMPLES / "bob_tanh_bug"), "--wait")
    assert result.returncode == 0, result.stderr
    assert "tanh backward is wrong" in result.stdout
    assert result.stderr.splitlines()[0].startswith("submission 1 accepted: queued, position ")
    assert "graded" in result.stderr.splitlines()[-1]


@pytest.mark.slow
def test_submit_of_a_notebook_as_json_and_fail_under(service):
    server, tokens = service
    notebook = SAMPLES / "notebook_student" / "micrograd.ipynb"
    result = submit(server, tokens["eve"], str(notebook), "--wait", "--format", "json", "--fail-under", "100")
    assert result.returncode == 1 and "is below --fail-under 100" in result.stderr
    import json

    report = json.loads(result.stdout)
    assert report["submission"]["kind"] == "notebook" and report["score"] < 100


@pytest.mark.slow
def test_without_wait_it_only_says_where_it_is_in_the_queue(service):
    server, tokens = service
    result = submit(server, tokens["bob"], str(SAMPLES / "alice_correct"))
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr.startswith("submission 1 accepted: queued")


@pytest.mark.slow
def test_what_cannot_be_submitted_is_one_line_and_exit_2(service, tmp_path):
    server, tokens = service
    refused = submit(server, "not-a-token", str(SAMPLES / "alice_correct"))
    assert refused.returncode == 2 and refused.stderr.startswith("Error: the token was refused")
    assert len(refused.stderr.splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = submit(server, tokens["bob"], str(empty), "--assignment", "micrograd")
    assert nothing.returncode == 2 and nothing.stderr.startswith("Error: ") and "Traceback" not in nothing.stderr


def test_an_unreachable_service_is_exit_1_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "grader", "submit", str(SAMPLES / "alice_correct"), "--server",
                             "http://127.0.0.1:9", "--token", "x"], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: http://127.0.0.1:9 did not answer: ConnectionError")
