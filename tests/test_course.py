"""assignment.toml: every malformed setting is a one-line CourseError naming the file and the key."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.course import Course, CourseError, LatePolicy, find_course

ROOT = Path(__file__).resolve().parent.parent
DUE = datetime.fromisoformat("2026-12-20T23:59:00+08:00")
SECTIONS = {
    "assignment": 'name = "micrograd"\nversion = "1"\nfiles = ["engine.py", "nn.py"]',
    "groups.ops": 'visibility = "hidden"\nfunctions = { "Value.tanh" = 15, "Value.__add__" = 25 }',
    "groups.nn": 'functions = { "Neuron.__call__" = 60 }',
    "limits": "call_timeout_s = 2.0\ntotal_timeout_s = 60.0\nmemory_mb = 512\nprocesses = 16\noutput_kb = 64\n"
              "file_size_kb = 1024",
    "late": 'due = "2026-12-20T23:59:00+08:00"\npercent_per_day = 10\nmax_days = 5\nafter_max_days = "zero"',
}


def settings(top: str = "", **sections: str | None) -> str:
    """assignment.toml from SECTIONS, with `sections` replaced (None: left out) and `top` before every table."""
    chosen = {**SECTIONS, **{k.replace("__", "."): v for k, v in sections.items()}}
    return top + "\n" + "".join(f"\n[{name}]\n{body}\n" for name, body in chosen.items() if body is not None)


def course_with(tmp_path: Path, text: str | bytes, name: str = "micrograd") -> Course:
    folder = tmp_path / "assignments" / name
    folder.mkdir(parents=True)
    path = folder / "assignment.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return Course(tmp_path)


def test_the_course_and_a_complete_file_parse():
    assignment = find_course(ROOT).assignment("micrograd")
    assert assignment.files == ("engine.py", "nn.py", "train.py") and assignment.max_score == 100
    assert assignment.late == LatePolicy(DUE, 10.0, 5, "zero")


def test_a_native_toml_date_time_is_a_due_date_and_a_missing_cutoff_is_none(tmp_path):
    late = "due = 2026-12-20T23:59:00+08:00\npercent_per_day = 10\n"
    assignment = course_with(tmp_path, settings(late=late)).assignment("micrograd")
    assert assignment.late == LatePolicy(DUE, 10.0, None)
    assert [(g.name, g.points, g.title, g.visibility) for g in assignment.groups] == [
        ("ops", 40.0, "ops", "hidden"), ("nn", 60.0, "nn", "visible")]
    assert assignment.limits.output_bytes == 64 * 1024 and isinstance(assignment.limits.memory_mb, int)


def test_no_late_table_means_no_penalty_and_whole_floats_are_integers(tmp_path):
    assert course_with(tmp_path / "a", settings(late=None)).assignment("micrograd").late == LatePolicy(None, 0.0, None)
    late = course_with(tmp_path / "b", settings(late='max_days = 2.0\nafter_max_days = "cap"')).assignment("micrograd")
    late = late.late
    assert late.max_days == 2 and isinstance(late.max_days, int)


LIMITS = SECTIONS["limits"]
NO_GROUPS = {"groups__ops": None, "groups__nn": None}
FILES = "assignment.files: must be a non-empty list of file names"
DUE_MUST = "late.due: must be a date and time with a time zone, e.g. 2026-12-20T23:59:00+08:00"
BAD = {
    "invalid TOML": (settings(top="x = "), "Invalid value"),
    "late not a table": (settings(top='late = "x"', late=None), "late: must be a table ([late])"),
    "groups not a table": (settings(top="groups = 5", **NO_GROUPS), "groups: must be a table of one or more groups"),
    "a group not a table": (settings(top="[groups]\nops = 40", **NO_GROUPS),
                            "groups.ops: must be a table ([groups.NAME])"),
    "no groups": (settings(top="[groups]", **NO_GROUPS),
                  "groups: must be a table of one or more groups ([groups.NAME]), not {}"),
    "files a string": (settings(assignment='name = "m"\nversion = "1"\nfiles = "engine.py"'), FILES),
    "files empty": (settings(assignment='name = "m"\nversion = "1"\nfiles = []'), f"{FILES}, e.g. "),
    "files not strings": (settings(assignment='name = "m"\nversion = "1"\nfiles = [1]'),
                          f'{FILES}, e.g. ["solution.py"], not [1]'),
    "no name": (settings(assignment='version = "1"\nfiles = ["engine.py"]'),
                "assignment.name: missing; it must be a non-empty string"),
    "points a string": (settings(groups__ops='functions = { "Value.tanh" = "40" }'),
                        'groups.ops.functions.Value.tanh: must be a finite number >= 0, not "40"'),
    "points negative": (settings(groups__ops='functions = { "Value.tanh" = -1 }'),
                        "groups.ops.functions.Value.tanh: must be a finite number >= 0"),
    "no functions": (settings(groups__ops='title = "Ops"'), "groups.ops.functions: missing"),
    "no function": (settings(groups__ops="functions = {}"), "groups.ops.functions: must be a table of student-written "
                    "functions and their points"),
    "a function that is no name": (settings(groups__ops='functions = { "Value.*" = 5 }'),
                                   "groups.ops.functions: must be a table of student-written functions"),
    "the old group points": (settings(groups__ops='points = 40\nfunctions = { "Value.tanh" = 40 }'),
                             "groups.ops.points: unknown key (known: title, title_zh, visibility, functions)"),
    "a function in two groups": (settings(groups__nn='functions = { "Value.tanh" = 60 }'),
                                 "groups.nn.functions: Value.tanh has points in groups ops and nn"),
    "bad visibility": (settings(groups__ops='visibility = "public"\nfunctions = { "Value.tanh" = 40 }'),
                       "groups.ops.visibility: must be one of visible, hidden, after_due_date, after_published"),
    "nan timeout": (settings(limits=LIMITS.replace("call_timeout_s = 2.0", "call_timeout_s = nan")),
                    "limits.call_timeout_s: must be a finite number > 0 (seconds), not nan"),
    "zero timeout": (settings(limits=LIMITS.replace("total_timeout_s = 60.0", "total_timeout_s = 0")),
                     "limits.total_timeout_s: must be a finite number > 0"),
    "infinite memory": (settings(limits=LIMITS.replace("memory_mb = 512", "memory_mb = inf")),
                        "limits.memory_mb: must be a whole number >= 1, not inf"),
    "half a process": (settings(limits=LIMITS.replace("processes = 16", "processes = 1.5")),
                       "limits.processes: must be a whole number >= 1, not 1.5"),
    "boolean output": (settings(limits=LIMITS.replace("output_kb = 64", "output_kb = true")),
                       "limits.output_kb: must be a whole number >= 1, not true"),
    "missing limit": (settings(limits=LIMITS.replace("memory_mb = 512", "")), "limits.memory_mb: missing"),
    "no limits": (settings(limits=None), "limits: missing; it must be a table ([limits])"),
    "due without zone": (settings(late='due = "2026-12-20T23:59:00"'), f'{DUE_MUST}, '
                         'not "2026-12-20T23:59:00"'),
    "native due without zone": (settings(late="due = 2026-12-20T23:59:00"), f"{DUE_MUST}, "
                                "not 2026-12-20T23:59:00"),
    "due a date only": (settings(late="due = 2026-12-20"), f"{DUE_MUST}, not 2026-12-20"),
    "due not a date": (settings(late='due = "tomorrow"'), f'{DUE_MUST}, not "tomorrow"'),
    "due in month 13": (settings(late='due = "2026-13-20T23:59:00Z"'), f'{DUE_MUST}, '
                        'not "2026-13-20T23:59:00Z"'),
    "fractional max_days": (settings(late='max_days = 1.5\nafter_max_days = "zero"'),
                            "late.max_days: must be a whole number >= 0 (default: no cutoff), not 1.5"),
    "negative max_days": (settings(late='max_days = -1\nafter_max_days = "zero"'),
                          "late.max_days: must be a whole number >= 0"),
    "percent a string": (settings(late='percent_per_day = "10"'),
                         'late.percent_per_day: must be a finite number >= 0 (default: 0), not "10"'),
    "a typo": (settings(late="max_day = 5"),
               "late.max_day: unknown key (known: due, percent_per_day, max_days, after_max_days)"),
    "max_days without after_max_days": (settings(late="max_days = 5"), 'late.after_max_days: missing; it must be '
                                        '"zero" (more than max_days late scores 0) or "cap" (the penalty stops growing '
                                        'at max_days × percent_per_day); required with max_days'),
    "after_max_days not zero or cap": (settings(late='max_days = 5\nafter_max_days = "half"'),
                                       'late.after_max_days: must be "zero" (more than max_days late scores 0) or '
                                       '"cap"'),
    "an unknown table": (settings(top="[limit]\nmemory_mb = 1"),
                         "limit: unknown key (known: assignment, contract, variants, groups, limits, late, "
                         "submissions)"),
    "no burst": (settings(top="[submissions]\nper_hour = 6"), "submissions.burst: missing; it must be a whole "
                 "number >= 1 (uploads a student may make at once)"),
    "counts neither latest nor best": (settings(top='[submissions]\ncounts = "worst"'),
                                       'submissions.counts: must be "latest" (default) or "best" (the highest score, '
                                       'the latest of equal ones), not "worst"'),
    "no uploads per hour": (settings(top="[submissions]\nper_hour = 0\nburst = 3"),
                            "submissions.per_hour: must be a finite number > 0 (uploads a student gets back per "
                            "hour), not 0"),
}


@pytest.mark.parametrize("text, words", BAD.values(), ids=BAD.keys())
def test_malformed_settings_are_one_line_errors_naming_file_and_key(tmp_path, text, words):
    course = course_with(tmp_path, text)
    with pytest.raises(CourseError) as error:
        course.assignment("micrograd")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'assignments/micrograd/assignment.toml'}: ") and "\n" not in message
    assert words in message


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    course = course_with(tmp_path, settings().encode("utf-8").replace(b'"1"', b'"\xff"'))
    with pytest.raises(CourseError, match=r"assignment\.toml: not UTF-8 text \(invalid start byte at byte \d+\)"):
        course.assignment("micrograd")


def test_an_unknown_assignment_lists_the_folders_of_known_ones(tmp_path):
    course = course_with(tmp_path, settings())
    (tmp_path / "assignments" / "notes").mkdir()  # no assignment.toml: not an assignment
    for name in ("nope", "../assignments/micrograd", ".."):
        with pytest.raises(CourseError) as error:
            course.assignment(name)
        assert str(error.value).endswith("(known: micrograd)"), str(error.value)


def test_the_cli_reports_a_bad_setting_in_one_line(tmp_path):
    course_with(tmp_path, settings(late='max_days = 1.5\nafter_max_days = "zero"'))
    bob = ROOT / "submissions" / "micrograd" / "bob_tanh_bug"
    result = CliRunner().invoke(main, ["grade", str(bob), "--course", str(tmp_path)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: ") and "late.max_days: must be a whole number" in result.output


def test_the_assignment_schema_is_draft_2020_12_and_the_one_description_of_the_keys():
    import json

    import jsonschema

    from grader.course import SCHEMA_PATH

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # Every settings file of the course matches it, both as parsed and in the validators' own eyes.
    for toml in (ROOT / "reference/micrograd/assignment.toml", ROOT / "assignments/micrograd/assignment.toml"):
        import tomllib

        from grader.course import _json_model

        jsonschema.Draft202012Validator(schema).validate(_json_model(tomllib.loads(toml.read_text(encoding="utf-8"))))


def test_a_due_date_in_utc_and_a_whole_float_limit_are_accepted(tmp_path):
    late = 'due = "2026-12-20T15:59:00Z"\npercent_per_day = 10\n'
    limits = LIMITS.replace("memory_mb = 512", "memory_mb = 512.0")
    assignment = course_with(tmp_path, settings(late=late, limits=limits)).assignment("micrograd")
    assert assignment.late.due == DUE and assignment.limits.memory_mb == 512
    assert isinstance(assignment.limits.memory_mb, int)


def test_generate_reads_the_reference_settings_through_the_course(tmp_path):
    import shutil

    from grader.generate import build_assignment

    shutil.copytree(ROOT / "reference", tmp_path / "reference", ignore=shutil.ignore_patterns("__pycache__"))
    toml = tmp_path / "reference" / "micrograd" / "assignment.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("percent_per_day = 10", "percent_per_day = -10"),
                    encoding="utf-8")
    with pytest.raises(CourseError, match=rf"^{toml}: late\.percent_per_day: must be a finite number >= 0"):
        build_assignment(tmp_path, "micrograd")


def test_points_are_set_per_function_and_a_group_holds_their_sum(tmp_path):
    assignment = course_with(tmp_path, settings()).assignment("micrograd")
    assert assignment.function_points() == {"Value.tanh": 15.0, "Value.__add__": 25.0, "Neuron.__call__": 60.0}
    assert assignment.group("ops").points == 40 and assignment.max_score == 100
    assert assignment.group_of_function("Value.tanh: _backward") == "ops"
    assert assignment.group_of_function("Value.relu") is None


def test_an_edit_of_one_copy_of_assignment_toml_alone_is_an_error_not_ignored(tmp_path):
    course = course_with(tmp_path, settings())
    source = tmp_path / "reference" / "micrograd" / "assignment.toml"
    source.parent.mkdir(parents=True)
    source.write_text(settings(groups__nn='functions = { "Neuron.__call__" = 50 }'), encoding="utf-8")
    with pytest.raises(CourseError, match="assignment.toml differs from .*reference/micrograd/assignment.toml, which "
                                          "it is generated from: edit the one in reference/, then run `grader "
                                          "generate`"):
        course.assignment("micrograd")
    source.write_text(settings(), encoding="utf-8")
    assert course.assignment("micrograd").max_score == 100


@pytest.mark.parametrize("after, hours_late, days, penalty", [
    ("zero", 0, 0, 0.0), ("zero", 1, 1, 10.0), ("zero", 5 * 24, 5, 50.0), ("zero", 5 * 24 + 1, 6, 100.0),
    ("cap", 5 * 24 + 1, 6, 50.0), ("cap", 40 * 24, 40, 50.0), (None, 40 * 24, 40, 100.0)])
def test_after_max_days_zero_or_cap(after, hours_late, days, penalty):
    from datetime import timedelta

    from grader.scoring import late_penalty

    policy = LatePolicy(DUE, 10.0, 5 if after else None, after)
    late = late_penalty(policy, DUE + timedelta(hours=hours_late), 80.0)
    assert (late.days_late, late.penalty_percent, late.final_score) == (days, penalty, 80.0 * (1 - penalty / 100))


def test_extra_days_move_the_due_date():
    from datetime import timedelta

    from grader.scoring import late_penalty

    policy = LatePolicy(DUE, 10.0, 5, "zero")
    late = late_penalty(policy, DUE + timedelta(days=2, hours=1), 50.0, extra_days=2)
    assert late.days_late == 1 and late.final_score == 45.0 and late.due == (DUE + timedelta(days=2)).isoformat()
