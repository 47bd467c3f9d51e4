"""grader similarity: copied solutions are found, through renaming, reordering, comments and dead code; honest
solutions written independently, the shared skeleton and the course notes' code are not."""
import json
import shutil
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

import similarity_corpus as corpus
from grader.cli import main
from grader.course import find_course
from grader.similarity import (DEFAULT_THRESHOLD, SCHEMA_PATH, SimilarityError, compare_class, similarity_json,
                               similarity_page, tokens_of, validate_similarity)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "submissions" / "micrograd"


@pytest.fixture(scope="module")
def assignment():
    return find_course(ROOT).assignment("micrograd")


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    """The whole test set as one class: six honest solutions and five plagiarised variants of each."""
    folder = tmp_path_factory.mktemp("class")
    copied, independent = corpus.write_class(folder)
    return folder, copied, independent


@pytest.fixture(scope="module")
def test_set_result(test_set, assignment):
    return compare_class(test_set[0], assignment)


def flagged(result) -> set[frozenset[str]]:
    return {frozenset((p.a, p.b)) for p in result.pairs}


def test_every_plagiarised_pair_is_above_the_threshold(test_set, test_set_result):
    _, copied, _ = test_set
    missed = copied - flagged(test_set_result)
    assert not missed, sorted(sorted(p) for p in missed)
    assert len(copied) == len(corpus.HONEST) * 15  # each original and its 5 variants: 6 * 5 / 2 pairs


def test_no_two_independent_solutions_are_above_the_threshold(test_set, test_set_result):
    _, _, independent = test_set
    assert not flagged(test_set_result) & independent
    assert all(p.similarity < DEFAULT_THRESHOLD for p in test_set_result.near)


def test_each_copied_solution_is_one_group(test_set_result):
    expected = sorted(sorted([name] + [f"{name}_{how}" for how in corpus.TRANSFORMS]) for name in corpus.HONEST)
    assert sorted(test_set_result.clusters) == expected


@pytest.mark.parametrize("how", corpus.TRANSFORMS)
def test_each_transformation_alone_keeps_the_copy_near_the_original(how, test_set_result):
    scores = {frozenset((p.a, p.b)): p.similarity for p in test_set_result.pairs}
    for name in corpus.HONEST:
        assert scores[frozenset((name, f"{name}_{how}"))] >= 0.75, (name, how)


def test_honest_solutions_alone_are_not_flagged(tmp_path, assignment):
    """A small class (where no code is common enough to be dropped): only the scoring keeps them apart."""
    corpus.write_class(tmp_path, transforms=())
    result = compare_class(tmp_path, assignment)
    assert result.pairs == []
    assert sorted(result.compared) == sorted(corpus.HONEST)
    assert max(p.similarity for p in result.near) < DEFAULT_THRESHOLD - 0.1  # a margin, not a near miss


def test_a_copy_with_every_transformation_is_found_in_a_pair_of_two(tmp_path, assignment):
    corpus.write(tmp_path, "original", corpus.honest("eve"))
    corpus.write(tmp_path, "copy", corpus.transform(corpus.honest("eve"), "combined"))
    result = compare_class(tmp_path, assignment)
    assert [(p.a, p.b) for p in result.pairs] == [("copy", "original")]
    pair = result.pairs[0]
    assert pair.similarity >= 0.75 and pair.matches
    for match in pair.matches:  # line ranges inside the files they name
        assert match.a_file in corpus.FILES and match.b_file in corpus.FILES
        assert 1 <= match.a_lines[0] <= match.a_lines[1] and 1 <= match.b_lines[0] <= match.b_lines[1]


def test_the_untouched_skeleton_is_nothing_written_not_a_copy(tmp_path, assignment):
    for student in ("sam", "tom"):
        corpus.write(tmp_path, student, corpus.skeleton())
    # the skeleton with comments, spacing and indentation changed is still only the skeleton
    corpus.write(tmp_path, "uma", corpus.comments(corpus.skeleton()))
    corpus.write(tmp_path, "alice", corpus.honest("alice"))
    result = compare_class(tmp_path, assignment)
    assert result.pairs == [] and result.near == []
    assert sorted(result.nothing_written) == ["sam", "tom", "uma"]
    assert result.compared == ["alice"]


def test_the_course_notes_code_is_not_evidence(tmp_path, assignment):
    """Two students who both paste the notebook's recursive build_topo and write the rest themselves."""
    notes_backward = ("topo = []\nvisited = set()\n\ndef build_topo(v):\n    if v not in visited:\n"
                      "        visited.add(v)\n        for child in v._prev:\n            build_topo(child)\n"
                      "        topo.append(v)\n\nbuild_topo(self)\nself.grad = 1.0\n"
                      "for node in reversed(topo):\n    node._backward()")
    for name in ("ben", "eve"):
        solution = dict(corpus.SOLUTIONS[name], **{"Value.backward": notes_backward})
        corpus.SOLUTIONS[f"{name}_notes"] = solution
        try:
            corpus.write(tmp_path, name, corpus.honest(f"{name}_notes"))
        finally:
            del corpus.SOLUTIONS[f"{name}_notes"]
    result = compare_class(tmp_path, assignment, threshold=0.0)
    assert all(p.similarity < 0.3 for p in result.pairs + result.near)


def test_the_sample_class(assignment):
    """alice and the notebook (her code, renamed) are a pair; the samples made from the reference with one bug
    each are one group; heidi's syntax error and grace's hostile code are compared like the rest."""
    result = compare_class(SAMPLES, assignment)
    pairs = flagged(result)
    assert frozenset(("alice_correct", "notebook_student")) in pairs
    clones = ["bob_tanh_bug", "carol_overwrite_grad", "dave_no_topo", "erin_bias_missing", "frank_no_zero_grad",
              "grace_hostile", "heidi_syntax_error"]
    assert result.clusters == [clones]
    assert not any("alice_correct" in p and p & set(clones) for p in pairs)
    assert result.skipped == [] and result.nothing_written == []


def test_code_tokenize_cannot_read_falls_back(tmp_path, assignment):
    files = corpus.honest("chloe")
    broken = dict(files, **{"nn.py": files["nn.py"] + "\nbroken = (1, 'unclosed\n"})
    assert tokens_of(broken["nn.py"])[1]  # tokenize refuses it: the fallback tokeniser read it
    corpus.write(tmp_path, "chloe", files)
    corpus.write(tmp_path, "copier", corpus.rename(files) | {"nn.py": broken["nn.py"]})
    result = compare_class(tmp_path, assignment)
    assert flagged(result) == {frozenset(("chloe", "copier"))}


def test_unreadable_submissions_are_listed_with_the_reason(tmp_path, assignment):
    corpus.write(tmp_path, "alice", corpus.honest("alice"))
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("notes.txt", "nothing here")
    with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as archive:  # a good zip is read like a folder
        for name, text in corpus.transform(corpus.honest("alice"), "rename").items():
            archive.writestr(f"zipped/{name}", text)
    result = compare_class(tmp_path, assignment)
    assert {s.student for s in result.skipped} == {"broken", "empty"}
    assert all(s.reason for s in result.skipped)
    assert flagged(result) == {frozenset(("alice", "zipped"))}


def test_student_code_is_never_run(tmp_path, assignment):
    marker = tmp_path / "ran"
    files = corpus.honest("ben")
    files["engine.py"] = f"open({str(marker)!r}, 'w').write('x')\n" + files["engine.py"]
    corpus.write(tmp_path / "class", "ben", files)
    corpus.write(tmp_path / "class", "ben2", files)
    assert len(compare_class(tmp_path / "class", assignment).pairs) == 1
    assert not marker.exists()


def test_past_terms(tmp_path, assignment):
    """A copy of a past submission is reported with the past one marked; past-vs-past pairs are not."""
    past = tmp_path / "2025"
    corpus.write(past, "old_farid", corpus.honest("farid"))
    corpus.write(past, "old_farid_twin", corpus.honest("farid"))
    corpus.write(tmp_path / "now", "new", corpus.transform(corpus.honest("farid"), "rename"))
    corpus.write(tmp_path / "now", "alice", corpus.honest("alice"))
    result = compare_class(tmp_path / "now", assignment, past=[past])
    assert [(p.a, p.b, p.past) for p in result.pairs] == [("new", "2025/old_farid", True),
                                                          ("new", "2025/old_farid_twin", True)]
    data = result.to_dict()
    assert data["past"] == ["2025/old_farid", "2025/old_farid_twin"] and data["compared"] == ["alice", "new"]


def test_json_matches_its_schema(test_set_result):
    data = json.loads(similarity_json(test_set_result))
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).validate(data)
    pair = data["pairs"][0]
    assert set(pair) >= {"a", "b", "similarity", "matches"} and 0 <= pair["similarity"] <= 1
    assert set(pair["matches"][0]) >= {"a_file", "a_lines", "b_file", "b_lines"}
    with pytest.raises(SimilarityError, match="similarity"):
        validate_similarity(dict(data, threshold=2))


def test_hostile_names_and_code_are_harmless_in_the_page(tmp_path, assignment):
    hostile = "<script>alert(1)<"
    files = corpus.honest("dmitri")
    files["engine.py"] = files["engine.py"].replace(
        "post = []", "post = []  # </pre></script><script>alert('x')</script>\n"
        "        _note = '</textarea><img src=x onerror=alert(1)>'")
    corpus.write(tmp_path, hostile, files)
    corpus.write(tmp_path, "dmitri", files)
    result = compare_class(tmp_path, assignment)
    assert result.pairs
    page = similarity_page(result)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Content-Security-Policy" in page and "script-src 'none'" in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from anywhere


def test_cli_writes_the_page_and_the_json(tmp_path, test_set):
    folder = test_set[0]
    out, pairs = tmp_path / "similarity.html", tmp_path / "pairs.json"
    result = CliRunner().invoke(main, ["similarity", str(folder), "--course", str(ROOT), "--out", str(out),
                                       "--json", str(pairs)])
    assert result.exit_code == 0, result.output
    assert "36 submissions" in result.output and "6 group(s)" in result.output
    data = json.loads(pairs.read_text(encoding="utf-8"))
    assert data["threshold"] == DEFAULT_THRESHOLD and len(data["pairs"]) == 90 and len(data["clusters"]) == 6
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_cli_options(tmp_path):
    corpus.write(tmp_path / "class", "a", corpus.honest("ben"))
    corpus.write(tmp_path / "class", "b", corpus.transform(corpus.honest("ben"), "combined"))
    out = tmp_path / "s.html"
    result = CliRunner().invoke(main, ["similarity", str(tmp_path / "class"), "--course", str(ROOT),
                                       "--out", str(out), "--threshold", "1"])
    assert result.exit_code == 0 and "0 pair(s) at or above 1" in result.output
    help_text = CliRunner().invoke(main, ["similarity", "--help"]).output
    for option in ("--assignment", "--out", "--json", "--threshold", "--common", "--past", "--course"):
        assert option in help_text


@pytest.mark.parametrize("args, message", [
    (["similarity", "/no/such/folder"], "no such file or folder"),
    (["similarity", "{class}", "--assignment", "nope"], "no assignment 'nope'"),
    (["similarity", "{class}", "--threshold", "1.5"], "--threshold 1.5: not between 0 and 1"),
    (["similarity", "{class}", "--threshold", "-0.1"], "not between 0 and 1"),
    (["similarity", "{class}", "--common", "0"], "--common 0: not a share"),
    (["similarity", "{class}", "--past", "/no/such/past"], "--past /no/such/past: not a folder"),
    (["similarity", "{class}", "--out", "/no/such/dir/s.html"], "does not exist"),
])
def test_cli_errors_are_one_line_with_exit_2(tmp_path, args, message):
    corpus.write(tmp_path / "class", "a", corpus.honest("ben"))
    args = [a.replace("{class}", str(tmp_path / "class")) for a in args] + ["--course", str(ROOT)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]


def test_a_file_instead_of_a_class_folder(tmp_path):
    (tmp_path / "x.txt").write_text("hi", encoding="utf-8")
    result = CliRunner().invoke(main, ["similarity", str(tmp_path / "x.txt"), "--course", str(ROOT),
                                       "--assignment", "micrograd"])
    assert result.exit_code == 2 and "is a file" in result.output  # click's usage error, as for `grader batch`


def test_batch_similarity_links_it_from_the_dashboard(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copytree(SAMPLES / "alice_correct", folder / "alice_correct")
    shutil.copytree(SAMPLES / "notebook_student", folder / "notebook_student")
    out = tmp_path / "reports"
    result = CliRunner().invoke(main, ["batch", str(folder), "--course", str(ROOT), "--out-dir", str(out),
                                       "--jobs", "2", "--similarity"])
    assert result.exit_code == 0, result.output
    assert "1 pair(s)" in result.output
    assert 'href="similarity.html"' in (out / "index.html").read_text(encoding="utf-8")
    data = json.loads((out / "similarity.json").read_text(encoding="utf-8"))
    assert [(p["a"], p["b"]) for p in data["pairs"]] == [("alice_correct", "notebook_student")]
    again = tmp_path / "plain"
    assert CliRunner().invoke(main, ["batch", str(folder), "--course", str(ROOT), "--out-dir", str(again),
                                     "--jobs", "2"]).exit_code == 0
    assert "similarity.html" not in (again / "index.html").read_text(encoding="utf-8")
    assert not (again / "similarity.html").exists()


CHECK = """
import random, sys
sys.path.insert(0, sys.argv[1])
import nn, train
from engine import Value
def grads(build):
    xs = [Value(v) for v in (0.7, -1.3, 2.1)]
    out = build(*xs)
    out.backward()
    return [round(x.grad, 9) for x in xs], round(out.data, 9)
print([grads(f) for f in (lambda a, b, c: (a * b + c).tanh() * a,
                          lambda a, b, c: (a ** 3 + b.exp() + c.log()).relu() + (a * b).sigmoid(),
                          lambda a, b, c: (a - b) / c + a * a, lambda a, b, c: (a + b + c) * (a + b))])
random.seed(3)
model = nn.MLP(3, [4, 4, 1])
random.seed(5)
xs = [[random.uniform(-1, 1) for _ in range(3)] for _ in range(4)]
print([round(loss, 9) for loss in train.train(model, xs, [1.0, -1.0, -1.0, 1.0], 15, 0.05, lam=0.01)])
print(len(model.parameters()))
"""


def run_solution(folder: Path) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CHECK, str(folder)], capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


@pytest.mark.parametrize("name", corpus.HONEST)
def test_the_honest_solutions_and_their_variants_are_correct(tmp_path, name):
    """The test set's own code (never a student's): each honest solution, and each variant, computes the
    reference's gradients and training losses."""
    expected = run_solution(ROOT / "reference" / "micrograd")
    assert "Traceback" not in expected
    files = corpus.honest(name)
    for how in ("original",) + corpus.TRANSFORMS:
        folder = corpus.write(tmp_path, how, files if how == "original" else corpus.transform(files, how))
        assert run_solution(folder) == expected, (name, how)
