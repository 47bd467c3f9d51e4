"""A burst against `grader serve`: 200 uploads from 50 students at once (a thread pool), every one acknowledged,
graded exactly once, none lost and none added. The course's own limit (`burst = 6` per student) lets 4 each
through. `bench/service.py` times the same burst."""
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from test_service import Server, jobs, users, wait_for, zipped

from grader.service.db import Database

SAMPLES = ("alice_correct", "bob_tanh_bug", "carol_overwrite_grad", "dave_no_topo", "erin_bias_missing",
           "frank_no_zero_grad")
STUDENTS = [f"s{n:02}" for n in range(50)]
PER_STUDENT = 4


@dataclass
class Sent:
    student: str
    sample: str
    sent_at: float  # time.time(), to compare with the server's finished_at
    status: int
    reply: dict
    acked_at: float


def plan() -> list[tuple[str, str]]:
    """(student, sample) of each upload: every student's first before anyone's second, as a class submits."""
    return [(student, SAMPLES[(i + round_) % len(SAMPLES)])
            for round_ in range(PER_STUDENT) for i, student in enumerate(STUDENTS)]


def burst(server: Server, tokens: dict[str, str], uploads: list[tuple[str, str]], threads: int = 16) -> list[Sent]:
    """Send every upload at once from `threads` clients; each one's reply and times."""
    bodies = {sample: zipped(sample) for sample in SAMPLES}

    def send(upload: tuple[str, str]) -> Sent:
        student, sample = upload
        sent_at = time.time()
        status, reply = server.upload(tokens[student], bodies[sample], f"{sample}.zip")
        return Sent(student, sample, sent_at, status, reply, time.time())

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(send, uploads))


@pytest.mark.slow
def test_a_burst_of_200_uploads_from_50_students_is_graded_exactly_once(tmp_path):
    data = tmp_path / "data"
    tokens = users(data, None, STUDENTS)
    server = Server(data, None, jobs=2)
    database = Database(data)
    try:
        started = time.monotonic()
        sent = burst(server, tokens, plan())
        sending_s = time.monotonic() - started
        assert [(s.status, s.reply.get("status")) for s in sent] == [(202, "queued")] * len(sent), \
            [s.reply for s in sent if s.status != 202][:3]
        assert sending_s < 10, f"the burst took {sending_s:.1f} s to send"
        wait_for(lambda: all(j.status in ("graded", "error") for j in jobs(database)), timeout=600, every=0.5)
        done = jobs(database)
    finally:
        database.close()
        server.stop()
    acknowledged = sorted(s.reply["id"] for s in sent)
    assert len(set(acknowledged)) == len(acknowledged) == 200  # no id acknowledged twice
    assert [j.id for j in done] == acknowledged  # none lost, none added
    by_id = {s.reply["id"]: s for s in sent}
    for job in done:
        assert (job.status, job.attempt, job.student) == ("graded", 1, by_id[job.id].student)  # graded once
        assert job.report is not None and (job.score == 100) == (by_id[job.id].sample == "alice_correct")
