"""The grader's own feedback messages, in English and Chinese (each assignment brings its own in messages.toml).

Tests and stages produce {"id", "params"}; `render` words them."""
from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    # ------------------------------------------------------------------ any test
    "not_implemented": {
        "en": "{function} is not written yet (it raises NotImplementedError{at})",
        "zh": "{function} 还没有实现（抛出了 NotImplementedError{at}）",
    },
    "exception": {
        "en": "{function} raised {type}{colon}{detail}{at}",
        "zh": "{function} 抛出了异常 {type}{colon}{detail}{at}",
    },
    "cannot_import": {
        "en": "{function} could not run: {file} does not import ({type}{colon}{detail}{at})",
        "zh": "{function} 无法运行：{file} 导入失败（{type}{colon}{detail}{at}）",
    },
    "wrong_type": {
        "en": "{function}: {detail}{at}",
        "zh": "{function}：返回值类型不对：{detail}{at}",
    },
    "timeout": {
        "en": "{function} did not finish: {detail} (an infinite loop?)",
        "zh": "{function} 没有在限定时间内结束：{detail}（是否有死循环？）",
    },
    "crashed": {
        "en": "{function} crashed the Python process: {detail}",
        "zh": "{function} 使 Python 进程崩溃：{detail}",
    },
    "internal_error": {
        "en": "the grader failed on this test; course staff have been told (this is not your fault)",
        "zh": "评分程序在这个测试上出错了，与你的代码无关，请联系助教",
    },
    "given_code_changed": {
        "en": "{function} is given code, but your {file} changes it: put back the skeleton's version "
              "(this test counts with {covers})",
        "zh": "{function} 是课程给出的代码，但你的 {file} 修改了它：请恢复骨架中的版本（这个测试计入 {covers}）",
    },
    # ------------------------------------------------------------------ public tests (grader check)
    "public.mismatch": {
        "en": "{what} is wrong: for {inputs} expected {expected}, got {got}",
        "zh": "{what} 不对：输入 {inputs} 时应为 {expected}，实际为 {got}",
    },
    "public.mismatch_no_inputs": {
        "en": "{what} is wrong: expected {expected}, got {got}",
        "zh": "{what} 不对：应为 {expected}，实际为 {got}",
    },
    "public.failed": {"en": "{text}", "zh": "{text}"},
    "check_summary": {
        "en": "{functions_done} of {functions} functions done, {checks_passed} of {checks} public checks passed "
              "(not a grade: the hidden tests check more)",
        "zh": "已完成 {functions_done}/{functions} 个函数，通过 {checks_passed}/{checks} 项公开检查"
              "（这不是成绩：正式评分的隐藏测试会检查更多情况）",
    },
    "depends_on": {
        "en": "not checked: it depends on {dependency}, which fails: fix {dependency} first",
        "zh": "未检查：它依赖的 {dependency} 有错误，请先修正 {dependency}",
    },
    "depends_on_todo": {
        "en": "not checked: it depends on {dependency}, which is not written yet",
        "zh": "未检查：它依赖的 {dependency} 尚未实现",
    },
    "blocked_by_import": {
        "en": "not checked: {file} does not import (see the error above)",
        "zh": "未检查：{file} 无法导入（见上方的错误）",
    },
    "not_run_after_timeout": {
        "en": "not checked further: an earlier check of {function} did not finish",
        "zh": "未继续检查：{function} 之前的一项检查没有在限定时间内结束",
    },
    # ------------------------------------------------------------------ submission-level errors
    "syntax_error": {
        "en": "{file}, line {line}: {type}: {detail}\n    {code}\n    {caret}",
        "zh": "{file} 第 {line} 行：{type}：{detail}\n    {code}\n    {caret}",
    },
    "import_failed": {
        "en": "{file} does not import: {type}{colon}{detail}{at}",
        "zh": "{file} 无法导入：{type}{colon}{detail}{at}",
    },
    "missing_names": {
        "en": "{file} defines no {names}: the tests need these names (was something renamed?)",
        "zh": "{file} 中没有定义 {names}：测试需要这些名字（是否改了名？）",
    },
    "import_timeout": {
        "en": "importing {file} did not finish: {detail}",
        "zh": "导入 {file} 没有在限定时间内结束：{detail}",
    },
    "missing_file": {
        "en": "{file} is missing from the submission: its tests get 0 points",
        "zh": "提交中缺少 {file}：相关测试计 0 分",
    },
    "encoding_gbk": {
        "en": "{file} is not UTF-8; it was read as GBK (save your files as UTF-8)",
        "zh": "{file} 不是 UTF-8 编码，已按 GBK 读取（请将文件保存为 UTF-8）",
    },
    "encoding_bad": {
        "en": "{file} is not UTF-8 text: byte {byte} at offset {offset}; it was replaced by \ufffd",
        "zh": "{file} 不是 UTF-8 文本：偏移 {offset} 处的字节 {byte} 无法解码，已替换为 \ufffd",
    },
}

def _nested(value: object, lang: str, texts: Mapping[str, Mapping[str, str]], depth: int = 0) -> object:
    """A parameter that is itself a message ({"id", "params"}: a test's description of its inputs) is worded in
    the same language; the depth is bounded because params may come from a report file."""
    if isinstance(value, dict) and isinstance(value.get("id"), str) and isinstance(value.get("params", {}), dict) \
            and depth < 4:
        inner = _Params({k: _nested(v, lang, texts, depth + 1) for k, v in (value.get("params") or {}).items()})
        template = texts.get(value["id"], {}).get(lang)
        return str(inner.get("text") or value["id"]) if template is None else template.format_map(inner)
    return value


class _Params(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(message: dict, lang: str = "en", catalogue: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """One message in one language, from the assignment's catalogue (its messages.toml) or the grader's own;
    unknown ids and missing parameters never raise. A `hint` parameter adds the text of "<id>.<hint>"."""
    texts = {**MESSAGES, **(catalogue or {})}
    lang = lang if lang in LANGUAGES else "en"
    params = _Params({k: _nested(v, lang, texts) for k, v in (message.get("params") or {}).items()})
    if params.get("where"):
        params["at"] = f" at {params['where']}" if lang == "en" else f"，位置：{params['where']}"
    if params.get("detail"):
        params["colon"] = ": "
    hint = texts.get(f"{message.get('id')}.{params.get('hint')}")
    if hint:
        params["hint_text"] = hint.get(lang, hint.get("en", ""))
    template = texts.get(str(message.get("id")), {}).get(lang)
    if template is None:  # an id from elsewhere (a public test's own feedback): shown as it is, never formatted
        return str(params.get("text") or message.get("id"))
    return template.format_map(params)
