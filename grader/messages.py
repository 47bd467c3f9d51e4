"""The grader's own texts, in English and Chinese (grader/messages.toml; each assignment brings the feedback of its
hidden tests in its messages.toml), and `render`, which words a message {"id", "params"} in one language.

Tests and stages produce {"id", "params"}; `render` words them. Words of the report formats, pages and `grader
check` are looked up by id too (`text`, `labels`)."""
from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

LANGUAGES = ("en", "zh")
CATALOGUE_PATH = Path(__file__).with_name("messages.toml")


def load_catalogue(path: Path) -> dict[str, dict[str, str]]:
    """[id] tables of format strings, one per language; a ValueError (TOMLDecodeError, UnicodeDecodeError, or
    one that names the malformed id) otherwise."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for key, texts in data.items():
        if not (isinstance(texts, dict) and all(isinstance(t, str) for t in texts.values())):
            raise ValueError(f"[{key}] must hold texts, one per language (en = \"...\", zh = \"...\")")
    return data


MESSAGES: dict[str, dict[str, str]] = load_catalogue(CATALOGUE_PATH)


def text(message_id: str, lang: str, **params: object) -> str:
    """One of the grader's own texts in `lang`, formatted with `params`."""
    return render({"id": message_id, "params": params}, lang)


def labels(prefix: str, lang: str) -> dict[str, str]:
    """The grader's texts whose id starts with `prefix` + ".", by the rest of their id, unformatted; an unknown
    language is a ValueError (a renderer asked for it)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    start = prefix + "."
    return {key[len(start):]: texts[lang] for key, texts in MESSAGES.items() if key.startswith(start)}


def _nested(value: object, lang: str, texts: Mapping[str, Mapping[str, str]], depth: int = 0) -> object:
    """A parameter that is itself a message ({"id", "params"}: a test's description of its inputs) is worded in
    the same language; the depth is bounded because params may come from a report file."""
    if isinstance(value, dict) and isinstance(value.get("id"), str) and depth < 4:
        params = value.get("params")
        inner = _Params({k: _nested(v, lang, texts, depth + 1)
                         for k, v in (params.items() if isinstance(params, dict) else ())})
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
        params["at"] = texts["at"][lang].format(where=params["where"])
    if params.get("detail"):
        params["colon"] = ": "
    hint = texts.get(f"{message.get('id')}.{params.get('hint')}")
    if hint:
        params["hint_text"] = hint.get(lang, hint.get("en", ""))
    template = texts.get(str(message.get("id")), {}).get(lang)
    if template is None:  # an id from elsewhere (a public test's own feedback): shown as it is, never formatted
        return str(params.get("text") or message.get("id"))
    return template.format_map(params)
