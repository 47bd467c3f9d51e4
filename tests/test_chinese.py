"""Chinese that reads as Chinese: every text in both languages with the same parameters, Chinese punctuation,
group titles in Chinese, and reports in Chinese without English fragments where the hidden tests describe their
inputs (nested messages) or the sandbox says why a call timed out."""
import html
import json
import re
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest

from grader import messages
from grader.course import find_course
from grader.formats import render_gradescope
from grader.messages import LANGUAGES, load_catalogue, render
from grader.pages import feedback_page

ROOT = Path(__file__).resolve().parents[1]
CATALOGUES = [ROOT / "grader" / "messages.toml", *sorted(ROOT.glob("assignments/*/messages.toml")),
              *sorted(ROOT.glob("reference/*/messages.toml"))]
FULL_WIDTH = "，。：；（）、？！【】“”"
CHINESE = "\u4e00-\u9fff"
TYPOGRAPHY = {
    "an ASCII space beside full-width punctuation": re.compile(f" [{FULL_WIDTH}]|[{FULL_WIDTH}] "),
    "ASCII punctuation beside Chinese": re.compile(f"[{CHINESE}][,;:?!]|[,;:?!][{CHINESE}]"),
    "ASCII parentheses around Chinese": re.compile(f"\\([^()]*[{CHINESE}][^()]*\\)"),
}


def grader(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def parameters(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def english_fragments(text: str) -> list[str]:
    """Runs of two or more English words ("on both sides", "(a float)"): code such as `sum(p ** 2 for p in
    model.parameters())`, names and numbers are no words, nor is a single term such as "epoch" in Chinese."""
    found, run = [], []
    for token in re.findall(f"[^\\s{FULL_WIDTH}]+|[{FULL_WIDTH}]", text) + [""]:  # full-width marks end a run
        word = token.strip("()[]{}'\"`,.;:!?")
        if re.fullmatch("[A-Za-z]{2,}|a", word):
            run.append(word)
            continue
        if len(run) >= 2:
            found.append(" ".join(run))
        run = []
    return found


def typography_problems(text: str) -> list[str]:
    return [f"{what}: {m.group()!r} in {text!r}" for what, rx in TYPOGRAPHY.items() for m in rx.finditer(text)]


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_id_has_every_language_with_the_same_parameters(path):
    problems = []
    for message_id, texts in load_catalogue(path).items():
        missing = [lang for lang in LANGUAGES if not texts.get(lang, "").strip()]
        if missing:
            problems.append(f"[{message_id}] has no {', '.join(missing)}")
        elif len({frozenset(parameters(texts[lang])) for lang in LANGUAGES}) > 1:
            named = ", ".join(f"{lang} {sorted(parameters(texts[lang]))}" for lang in LANGUAGES)
            problems.append(f"[{message_id}]: {named}")
    assert not problems, f"{path}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_chinese_punctuation(path):
    problems = [f"[{message_id}] {p}" for message_id, texts in load_catalogue(path).items()
                for p in typography_problems(texts.get("zh", ""))]
    assert not problems, f"{path}:\n" + "\n".join(problems)


def test_the_checks_catch_what_they_are_for():
    assert typography_problems("已完成 20/21 个函数 （仅公开测试）") and typography_problems("梯度不对,应为 1")
    assert typography_problems("输入 (浮点数)") and not typography_problems("backward() 在图上：f(x) 应为 1")
    assert english_fragments("x = 1.5 on both sides (x * x)") == ["on both sides"]
    assert english_fragments("z = 1.5 (a float)、y = 1") == ["a float"]
    assert not english_fragments("loss = 平均值 + lam * sum(p ** 2 for p in model.parameters())（lam = 0.05）")
    assert not english_fragments("train_loss 从第 0 个 epoch 起不对（MLP(2, [3, 1])、epochs = 4）")


def test_every_group_has_a_chinese_title():
    course = find_course(ROOT)
    for name in course.names():
        for group in course.assignment(name).groups:
            assert group.title_zh and not typography_problems(group.title_zh), (name, group.name)


def test_nested_messages_and_timeouts_are_worded_in_the_report_language():
    catalogue = {"setting": {"en": "{model}, lr = {lr}", "zh": "{model}、lr = {lr}"}}
    message = {"id": "classifier_final_parameters",
               "params": {"setting": {"id": "setting", "params": {"model": "MLP(2, [3])", "lr": "0.3"}}}}
    catalogue["classifier_final_parameters"] = {"en": "wrong ({setting})", "zh": "不对（{setting}）"}
    assert render(message, "en", catalogue) == "wrong (MLP(2, [3]), lr = 0.3)"
    assert render(message, "zh", catalogue) == "不对（MLP(2, [3])、lr = 0.3）"
    timeout = {"id": "timeout", "params": {"function": "train", "detail": {"id": "timeout.call",
                                                                           "params": {"seconds": "2"}}}}
    assert render(timeout, "zh") == "train 没有在限定时间内结束：2 秒内没有返回（是否有死循环？）"
    assert render({"id": "timeout", "params": {"detail": {"id": "timeout.call", "params": "…"}}}, "zh")  # cut


def test_the_report_words_are_the_catalogue_in_both_languages():
    for prefix in ("report", "page", "check"):
        english, chinese = messages.labels(prefix, "en"), messages.labels(prefix, "zh")
        assert english and english.keys() == chinese.keys()
    with pytest.raises(ValueError):
        messages.labels("report", "fr")


def test_grader_check_in_chinese_on_a_bug(tmp_path):
    """`grader check --lang zh`: the function states, the public tests' findings, the progress and isolation
    lines, in Chinese with Chinese typography."""
    student = tmp_path / "erin"
    shutil.copytree(ROOT / "submissions" / "micrograd" / "erin_bias_missing", student)
    result = grader("check", "--lang", "zh", str(student))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    states = [line for line in lines if line[:1] in "✓✗·"]
    assert any("有错误" in line for line in states) and all("wrong" not in line for line in states)
    assert re.fullmatch(r"已完成 \d+/21 个函数，通过 \d+/35 项公开检查（这不是成绩：正式评分的隐藏测试会检查更多情况）",
                        lines[-1]), lines[-1]
    # the public tests word their findings from the catalogue too, and the isolation line is Chinese
    assert not re.search(r"\b(is|are|wrong|expected|got|depends|missing|not)\b", result.stdout), result.stdout
    assert result.stderr.startswith("隔离方式：")


# The samples whose bugs fail only the hidden tests written with nested messages (nn, training, micrograd-classify)
CONVERTED = [("micrograd", "erin_bias_missing"), ("micrograd", "frank_no_zero_grad"), ("micrograd", "grace_hostile"),
             ("micrograd-classify", "eva_dropout_no_scaling"), ("micrograd-classify", "gus_no_l2"),
             ("micrograd-classify", "fei_restores_last")]


@pytest.mark.parametrize("fmt", ["text", "markdown"])
@pytest.mark.parametrize("assignment, sample", CONVERTED)
def test_grade_in_chinese_has_no_english_fragments(assignment, sample, fmt):
    result = grader("grade", "--lang", "zh", "--format", fmt, "--assignment", assignment,
                    str(ROOT / "submissions" / assignment / sample))
    assert result.returncode == 0, result.stderr
    assert "未通过" in result.stdout or "超时" in result.stdout
    assert not english_fragments(result.stdout), result.stdout
    # what a line says, apart from the columns that align it (two spaces or more; Markdown's |)
    pieces = [piece for line in result.stdout.splitlines()
              for piece in re.split(r" *\| *| {2,}" if fmt == "markdown" else " {2,}", line.strip())]
    problems = [p for piece in pieces for p in typography_problems(piece)]
    assert not problems, problems


def test_a_timeout_and_a_group_title_in_chinese():
    grace = str(ROOT / "submissions" / "micrograd" / "grace_hostile")
    result = grader("grade", "--lang", "zh", "--format", "text", grace)
    assert "2 秒内没有返回" in result.stdout and "no reply" not in result.stdout
    assert "training：损失、正则化、梯度下降与训练循环" in result.stdout
    english = grader("grade", "--format", "text", grace)
    assert "did not finish: no reply within 2 s" in english.stdout
    assert "training: Loss, regularisation, gradient descent, training loop" in english.stdout


def test_pages_and_gradescope_in_chinese():
    erin = str(ROOT / "submissions" / "micrograd" / "erin_bias_missing")
    report = json.loads(grader("grade", "--lang", "zh", "--format", "json", erin).stdout)
    assert report["groups"][2]["title"] == "Neuron, Layer, MLP"  # the report keeps the English title
    page = feedback_page(report, None, "zh")
    lines = [html.unescape(line).strip() for line in re.split("<[^>]+>", page.split("<main>")[1])]
    assert {"作业：micrograd v1", "Neuron、Layer、MLP", "损失、正则化、梯度下降与训练循环"} <= set(lines)
    assert not [line for line in lines if english_fragments(line) or typography_problems(line)]
    output = json.loads(render_gradescope(report, "zh"))["output"]
    assert output.startswith("得分：92 / 100\n  各运算的梯度（_backward）：40 / 40\n"), output
