"""`grader similarity`: find copied solutions across a class, not the code every honest student shares.

What counts is what students wrote themselves:

1. Boilerplate is dropped by line: a line of a submission whose code (its tokens, whatever the spacing and
   comments) is a line of the course's student material (the skeletons in assignments/NAME/, the given files, the
   code in the notebook and the READMEs, where the course notes show code) is not the student's. Lines are matched
   as a set, so moving functions around does not turn skeleton code into written code. What is left, in runs of
   written lines (nothing but blank lines, comments and docstrings between them), are the written *segments*.
2. Each segment is tokenised with `tokenize` (never run, never imported): identifiers become one token class
   (keywords, builtins and attribute names such as `.grad` stay: renaming those would break the API), numbers and
   strings another each; comments, blank lines, indentation and docstrings are dropped. A file that `tokenize`
   cannot read falls back to a plain regular-expression tokeniser.
3. Fingerprints are hashes of the k-grams of those tokens inside one segment; the k-grams of the course material
   (normalised the same way), and those found in more than a share of the class (`common`, like MOSS's -m), are
   removed. Candidate pairs come from an inverted index of the winnowed fingerprints (Schleimer, Wilkerson and
   Aiken 2003, as MOSS does), so a class of thousands compares only pairs that share something; each candidate is
   then scored on all its shared k-grams.
4. A pair's similarity is containment: the share of one student's distinctive written tokens (those in stretches
   of at least MIN_RUN tokens covered by their kept k-grams, at least FLOOR of them) that the other's k-grams cover
   in stretches of at least MIN_RUN tokens, the larger of the two directions. A short line that any correct
   solution must contain (tanh's `self.grad += (1 - t**2) * out.grad`) is below MIN_RUN, so twenty such lines never add
   up to a copy; renaming, reordering, comments and whitespace change no k-gram, and inserted dead code only adds
   tokens on one side (containment takes the other). Students with too little written code to compare are listed,
   not paired.

Nothing of a submission is executed: it is read by `grader.submission.load_submission`, the same reader as grading
(zip bombs, links, notebooks), and only tokenised. The constants below were chosen on tests/similarity_corpus.py
(bench/similarity.py prints the measurements; the README has them).
"""
from __future__ import annotations

import builtins
import hashlib
import io
import json
import keyword
import re
import time
import tokenize
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Iterable, Iterator

from grader.course import Assignment
from grader.errors import UnusableInput
from grader.formats.escaping import _printable

K = 8  # tokens per k-gram
WINDOW = 4  # winnowing window (in k-grams); WINDOW <= K keeps the covered stretches of an exact copy contiguous
MIN_RUN = 20  # tokens: a matched stretch shorter than this is what any correct solution may share
FLOOR = 80  # tokens: containment is over at least this many, so a student who wrote little cannot score 1.0
MIN_WRITTEN = MIN_RUN  # distinctive written tokens below this: "nothing (or too little) written", not compared
DEFAULT_THRESHOLD = 0.55  # measured on tests/similarity_corpus.py: see bench/similarity.py and the README
DEFAULT_COMMON = 0.5  # a fingerprint in more than this share of the submissions is common code
MIN_COMMON = 10  # ... and in more than this many (MOSS's -m default): in a small class nothing is "common"
MAX_SOURCE_CHARS = 200_000  # of one file; the rest is not compared (real files are a few KiB)
SCHEMA_PATH = Path(__file__).parent / "schemas" / "similarity.schema.json"

_CODE_BLOCK = re.compile(r"^```(?:python|py)?[ \t]*\n(.*?)^```", re.M | re.S)
_FALLBACK_TOKEN = re.compile(r"""#[^\n]*|[rbuf]*(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'[^'\n]*'|"[^"\n]*")"""
                             r"""|\d[\w.]*|[A-Za-z_]\w*|\*\*=?|//=?|[-+*/%&|^<>!=]=|->|<<|>>|\S""")
_DROP = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
_STRING_PARTS = {getattr(tokenize, n) for n in ("FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)
_BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_"))


class SimilarityError(UnusableInput):
    """The class folder, the past corpus or an option cannot be used for a comparison (exit 2)."""


@dataclass(frozen=True)
class Token:
    kind: str  # the normalised token: "V" (identifier), "N" (number), "S" (string), ";" (end of statement), ...
    file: str
    line: int
    segment: int  # tokens of one segment are consecutive written lines of one file


@dataclass
class Fingerprinted:
    """One submission as compared: its written tokens and kept fingerprints (hash -> k-gram start positions)."""

    student: str
    source: str
    past: bool
    tokens: list[Token] = field(default_factory=list)
    grams: dict[int, list[int]] = field(default_factory=dict)  # every kept k-gram: hash -> start positions
    fingerprints: set[int] = field(default_factory=set)  # the winnowed ones, for finding candidate pairs
    kgram_at: dict[int, int] = field(default_factory=dict)  # start position -> hash of the kept k-grams
    # hash -> the tokens its k-grams cover, as bits of an int: token i is bit i + its segment number, so that a
    # gap bit lies between segments and a run of bits never crosses one
    masks: dict[int, int] = field(default_factory=dict)
    token_at_bit: dict[int, int] = field(default_factory=dict)
    weight: int = 0  # distinctive written tokens: in self-covered stretches of at least MIN_RUN
    written: int = 0  # the same before common code is removed: under MIN_WRITTEN, "nothing written"
    fallback: list[str] = field(default_factory=list)  # files read with the fallback tokeniser
    files: dict[str, str] = field(default_factory=dict)  # the submission's files, for the matched regions


@dataclass(frozen=True)
class Match:
    a_file: str
    a_lines: tuple[int, int]
    b_file: str
    b_lines: tuple[int, int]
    tokens: int  # matched tokens in this region (on the side the similarity is measured on)


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    similarity: float
    matched_tokens: int
    past: bool  # b is a past term's submission
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class Skipped:
    student: str
    source: str
    reason: str
    past: bool = False


@dataclass
class SimilarityResult:
    assignment: str
    threshold: float
    common: float
    pairs: list[Pair]  # at or above the threshold, most similar first
    clusters: list[list[str]]  # connected groups of three or more students among the pairs
    compared: list[str]  # the students (and past submissions) compared
    nothing_written: list[str]  # too little of their own code to compare: the skeleton, or little more
    skipped: list[Skipped]  # could not be read
    near: list[Pair] = field(default_factory=list)  # the closest pairs below the threshold (up to NEAR_SHOWN)
    files: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # student -> file -> lines (for pages)
    duration_s: float = 0.0
    past_students: set[str] = field(default_factory=set)

    def to_dict(self) -> dict:
        def pair(p: Pair) -> dict:
            return {"a": p.a, "b": p.b, "similarity": round(p.similarity, 4), "matched_tokens": p.matched_tokens,
                    "past": p.past,
                    "matches": [{"a_file": m.a_file, "a_lines": list(m.a_lines), "b_file": m.b_file,
                                 "b_lines": list(m.b_lines), "tokens": m.tokens} for m in p.matches]}

        return {
            "assignment": self.assignment, "threshold": self.threshold, "common": self.common,
            "settings": {"k": K, "window": WINDOW, "min_run": MIN_RUN, "floor": FLOOR},
            "pairs": [pair(p) for p in self.pairs], "clusters": self.clusters, "near": [pair(p) for p in self.near],
            "compared": sorted(s for s in self.compared if s not in self.past_students),
            "past": sorted(s for s in self.compared if s in self.past_students),
            "nothing_written": self.nothing_written,
            "skipped": [{"student": s.student, "source": s.source, "reason": s.reason, "past": s.past}
                        for s in self.skipped],
            "duration_s": round(self.duration_s, 3),
        }


NEAR_SHOWN = 10


# --- tokens ----------------------------------------------------------------------------------------------------

def _name(text: str, previous: str) -> str:
    """An identifier's token: keywords, builtins and attribute names (`.grad`, `.append`: the API, which renaming
    cannot change without breaking it) stay themselves; every other name is "V"."""
    return text if keyword.iskeyword(text) or text in _BUILTINS or previous == "." else "V"


def _kind(tok_type: int, text: str) -> str | None:
    if tok_type == tokenize.NAME:
        return text
    if tok_type == tokenize.NUMBER:
        return "N"
    if tok_type == tokenize.STRING or tok_type == _FSTRING_START:
        return "S"
    if tok_type == tokenize.NEWLINE:
        return ";"
    if tok_type == tokenize.OP:
        return text
    return None


def _python_tokens(source: str) -> Iterator[tuple[str, int, str]]:
    """(normalised token, line) of `source` by `tokenize`; docstrings (a string alone as a statement) and the
    inside of f-strings are dropped. Raises tokenize.TokenError, SyntaxError on what it cannot read."""
    pending: tuple[str, int, str] | None = None  # a string that may be a docstring
    previous = ""
    statement_start = True
    in_fstring = 0
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == _FSTRING_START:
            in_fstring += 1
            if in_fstring > 1:
                continue
        elif tok.type in _STRING_PARTS or in_fstring:
            if tok.type == getattr(tokenize, "FSTRING_END", -2):
                in_fstring -= 1
            continue
        if tok.type in _DROP:
            continue
        kind = _kind(tok.type, tok.string)
        if kind is None:
            continue
        if tok.type == tokenize.NAME:
            kind = _name(kind, previous)
        previous = kind
        if pending is not None:
            if kind != ";":
                yield pending
            pending = None
        if kind == "S" and statement_start:
            pending = ("S", tok.start[0], tok.string)
            statement_start = False
            continue
        statement_start = kind in (";", ":") or tok.string == ";"
        yield kind, tok.start[0], tok.string


def _fallback_tokens(source: str) -> Iterator[tuple[str, int, str]]:
    """For a file `tokenize` cannot read (an unclosed bracket or string): the same classes, by regular expression."""
    previous = ""
    for match in _FALLBACK_TOKEN.finditer(source):
        text = match.group()
        line = source.count("\n", 0, match.start()) + 1
        if text.startswith("#"):
            continue
        if text[0] in "'\"" or (text[0] in "rbufRBUF" and len(text) > 1 and text[-1] in "'\""):
            kind = "S"
        elif text[0].isdigit():
            kind = "N"
        elif text[0].isalpha() or text[0] == "_":
            kind = _name(text, previous)
        else:
            kind = text
        previous = kind
        yield kind, line, text


def tokens_of(source: str) -> tuple[list[tuple[str, int, str]], bool]:
    """The normalised tokens of `source` with their lines and own text, and whether the fallback tokeniser read
    it."""
    source = source[:MAX_SOURCE_CHARS]
    try:
        return list(_python_tokens(source)), False
    except (tokenize.TokenError, SyntaxError, ValueError):
        return list(_fallback_tokens(source)), True


# --- fingerprints ----------------------------------------------------------------------------------------------

def _hash(kinds: Iterable[str]) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(kinds).encode(), digest_size=8).digest(), "big")


def kgrams(tokens: list[Token]) -> list[tuple[int, int]]:
    """(hash, start) of every k-gram that lies inside one segment."""
    out = []
    kinds = [t.kind for t in tokens]
    for start in range(len(tokens) - K + 1):
        if tokens[start].segment == tokens[start + K - 1].segment:
            out.append((_hash(kinds[start:start + K]), start))
    return out


def winnow(grams: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The smallest hash of every window of WINDOW consecutive k-grams (the rightmost on ties), each once."""
    if len(grams) <= WINDOW:
        return list(grams)
    chosen: dict[int, tuple[int, int]] = {}
    for start in range(len(grams) - WINDOW + 1):
        window = grams[start:start + WINDOW]
        low = min(h for h, _ in window)
        index = max(i for i, (h, _) in enumerate(window) if h == low)
        chosen[start + index] = window[index]
    return [chosen[i] for i in sorted(chosen)]


def _line_keys(found: list[tuple[str, int, str]]) -> dict[int, str]:
    """Each line's code as its tokens' own text, one space apart: the same whatever the spacing and comments."""
    parts: dict[int, list[str]] = defaultdict(list)
    for _, line, text in found:
        parts[line].append(text)
    return {line: " ".join(texts) for line, texts in parts.items()}


def course_material(assignment: Assignment) -> list[str]:
    """The code every student is given: the skeletons and given files, the notebook's code (its cells and the
    ```python blocks of its notes) and the READMEs' code blocks (notebook magics left out)."""
    folder = assignment.folder
    texts: list[str] = []
    for name in assignment.files + assignment.given:
        path = folder / name
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    for notebook in sorted(folder.glob("*.ipynb")):
        try:
            cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError, AttributeError):
            continue
        for cell in cells:
            source = cell.get("source", "") if isinstance(cell, dict) else ""
            source = "".join(source) if isinstance(source, list) else str(source)
            texts.extend(_CODE_BLOCK.findall(source) if cell.get("cell_type") == "markdown" else [source])
    for readme in sorted(folder.glob("README*.md")):
        texts.extend(_CODE_BLOCK.findall(readme.read_text(encoding="utf-8", errors="replace")))
    return ["\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!"))) for text in texts]


@dataclass(frozen=True)
class Boilerplate:
    """The course material's lines (as _line_keys) and k-gram hashes: never the student's own."""

    lines: frozenset[str]
    grams: frozenset[int]

    @classmethod
    def of(cls, texts: Iterable[str]) -> Boilerplate:
        lines: set[str] = set()
        grams: set[int] = set()
        for text in texts:
            found, _ = tokens_of(text)
            lines.update(_line_keys(found).values())
            grams.update(h for h, _ in kgrams([Token(kind, "", line, 0) for kind, line, _ in found]))
        return cls(frozenset(lines), frozenset(grams))


def written_tokens(files: dict[str, str], boilerplate: Boilerplate) -> tuple[list[Token], list[str]]:
    """The tokens of the lines a student wrote (lines that are not lines of the course material, whatever their
    spacing and comments), in segments: runs of written lines with nothing but blank lines, comments and
    docstrings between them."""
    tokens: list[Token] = []
    fallback = []
    segment = 0
    for name in sorted(files):
        found, used_fallback = tokens_of(files[name])
        if used_fallback:
            fallback.append(name)
        keys = _line_keys(found)
        inside = False
        for kind, line, _ in found:
            if keys[line] in boilerplate.lines:
                inside = False
                continue
            if not inside:
                segment += 1
                inside = True
            tokens.append(Token(kind, name, line, segment))
        segment += 1  # never across files
    return tokens, fallback


def _long_runs(covered: int) -> int:
    """The bits of `covered` that lie in runs of at least MIN_RUN consecutive set bits."""
    starts, width = covered, 1
    while width < MIN_RUN:  # starts: bits i such that bits i .. i + width - 1 are all set
        step = min(width, MIN_RUN - width)
        starts &= starts >> step
        width += step
    runs, width = starts, 1
    while width < MIN_RUN:
        step = min(width, MIN_RUN - width)
        runs |= runs << step
        width += step
    return runs


def _stretches(item: Fingerprinted, runs: int) -> list[tuple[int, int]]:
    """The runs of bits of `runs` as [start, end) token positions of `item`."""
    bits = bin(runs)[2:][::-1]
    return [(item.token_at_bit[m.start()], item.token_at_bit[m.end() - 1] + 1) for m in re.finditer("1+", bits)]


# --- the class ---------------------------------------------------------------------------------------------------

def fingerprint(student: str, source: str, past: bool, files: dict[str, str], boilerplate: Boilerplate
                ) -> Fingerprinted:
    """A submission's written tokens and its winnowed fingerprints, those of the course material left out."""
    tokens, fallback = written_tokens(files, boilerplate)
    grams: dict[int, list[int]] = defaultdict(list)
    every = [(h, start) for h, start in kgrams(tokens) if h not in boilerplate.grams]
    for h, start in every:
        grams[h].append(start)
    chosen = {h for h, _ in winnow(every)}
    masks: dict[int, int] = defaultdict(int)
    for h, start in every:
        masks[h] |= ((1 << K) - 1) << (start + tokens[start].segment)
    return Fingerprinted(student, source, past, tokens, dict(grams), chosen, {start: h for h, start in every},
                         dict(masks), {i + t.segment: i for i, t in enumerate(tokens)}, fallback=fallback,
                         files=files)


def _weigh(item: Fingerprinted) -> None:
    item.weight = _contained(item, item.masks).bit_count()


def _contained(x: Fingerprinted, shared: Iterable[int]) -> int:
    """x's tokens in stretches of at least MIN_RUN covered by the shared k-grams (as bits)."""
    covered = 0
    for h in shared:
        covered |= x.masks[h]
    return _long_runs(covered)


def compare_pair(a: Fingerprinted, b: Fingerprinted, shared: set[int], regions: bool = True) -> Pair:
    """Similarity of a and b over their shared k-grams: the larger containment, and (with `regions`) the matched
    regions, measured on that side."""
    runs_a, runs_b = _contained(a, shared), _contained(b, shared)
    tokens_a, tokens_b = runs_a.bit_count(), runs_b.bit_count()
    share_a = tokens_a / max(a.weight, FLOOR)
    share_b = tokens_b / max(b.weight, FLOOR)
    if share_a >= share_b:
        matches = [_region(a, b, run, shared, flip=False) for run in _stretches(a, runs_a)] if regions else []
        similarity, matched = share_a, tokens_a
    else:
        matches = [_region(b, a, run, shared, flip=True) for run in _stretches(b, runs_b)] if regions else []
        similarity, matched = share_b, tokens_b
    return Pair(a.student, b.student, min(1.0, similarity), matched, b.past,
                tuple(sorted(matches, key=lambda m: (m.a_file, m.a_lines))))


def _region(x: Fingerprinted, y: Fingerprinted, run: tuple[int, int], shared: set[int], flip: bool) -> Match:
    """The lines of x's stretch `run`, and the lines of y where most of its fingerprints are."""
    start, end = run
    hits: list[int] = []
    by_segment: dict[int, float] = {}
    for position in range(start, end - K + 1):
        h = x.kgram_at.get(position)
        if h in shared:
            hits.extend(y.grams[h])
            for i in y.grams[h]:  # a k-gram found in one place of y says more than one found in many
                by_segment[y.tokens[i].segment] = by_segment.get(y.tokens[i].segment, 0.0) + 1 / len(y.grams[h])
    segment = max(by_segment, key=by_segment.__getitem__) if by_segment else -1
    places = [i for i in hits if y.tokens[i].segment == segment]
    y_lines = (y.tokens[min(places)].line, y.tokens[min(max(places) + K - 1, len(y.tokens) - 1)].line) \
        if places else (0, 0)
    y_file = y.tokens[min(places)].file if places else ""
    x_file, x_lines = x.tokens[start].file, (x.tokens[start].line, x.tokens[end - 1].line)
    if flip:
        return Match(y_file, y_lines, x_file, x_lines, end - start)
    return Match(x_file, x_lines, y_file, y_lines, end - start)


def clusters_of(pairs: list[Pair]) -> list[list[str]]:
    """Connected groups of three or more among the pairs, largest first."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        parent[root(p.a)] = root(p.b)
    groups: dict[str, list[str]] = defaultdict(list)
    for x in parent:
        groups[root(x)].append(x)
    return sorted((sorted(g) for g in groups.values() if len(g) >= 3), key=lambda g: (-len(g), g))


def compare(items: list[Fingerprinted], threshold: float, common: float) -> tuple[list[Pair], list[Pair]]:
    """Every pair at or above the threshold (and the closest below it). Candidates are the pairs that share a
    winnowed fingerprint (an inverted index), checked on all their k-grams; common k-grams are dropped first;
    past-vs-past pairs are not compared."""
    frequency: Counter[int] = Counter(h for item in items for h in item.grams)
    limit = max(common * len(items), MIN_COMMON)
    frequent = {h for h, count in frequency.items() if count > limit}
    postings: dict[int, list[int]] = defaultdict(list)
    for number, item in enumerate(items):
        _weigh(item)
        item.written = item.weight
        for h in frequent & item.grams.keys():
            del item.grams[h]
            del item.masks[h]
        item.fingerprints -= frequent
        _weigh(item)
        for h in item.fingerprints:
            postings[h].append(number)
    candidates: set[tuple[int, int]] = set()
    for who in postings.values():
        for i, x in enumerate(who):
            candidates.update((x, y) for y in who[i + 1:] if not (items[x].past and items[y].past))
    scored: list[tuple[Pair, Fingerprinted, Fingerprinted, set[int]]] = []
    for x, y in candidates:
        a, b = (items[x], items[y]) if not items[x].past else (items[y], items[x])
        if not (a.weight and b.weight):
            continue
        shared = a.grams.keys() & b.grams.keys()
        if len(shared) < MIN_RUN - K + 1:  # too few k-grams for even one stretch of MIN_RUN tokens
            continue
        pair = compare_pair(a, b, shared, regions=False)
        if pair.similarity > 0:
            scored.append((pair, a, b, shared))
    scored.sort(key=lambda entry: (-entry[0].similarity, entry[0].a, entry[0].b))
    flagged = [compare_pair(a, b, shared) for pair, a, b, shared in scored if pair.similarity >= threshold]
    near = [compare_pair(a, b, shared) for pair, a, b, shared in scored if pair.similarity < threshold][:NEAR_SHOWN]
    return flagged, near


def compare_class(folder: Path, assignment: Assignment, *, past: Iterable[Path] = (),
                  threshold: float = DEFAULT_THRESHOLD, common: float = DEFAULT_COMMON) -> SimilarityResult:
    """Compare every submission in `folder` (any layout `grader batch` reads) with every other one and with the
    submissions of the `past` folders; never runs any of it."""
    from grader.batch import BatchError, discover

    if not 0.0 <= threshold <= 1.0:
        raise SimilarityError(f"threshold {threshold:g} is not between 0 and 1")
    if not 0.0 < common <= 1.0:
        raise SimilarityError(f"common {common:g} is not a share above 0 and at most 1")
    started = time.perf_counter()
    boilerplate = Boilerplate.of(course_material(assignment))
    sources: list[tuple[str, Path, bool]] = []
    try:
        # times do not matter here: a time without a zone (which stops `grader batch`) is read as UTC
        sources += [(e.student, e.path, False) for e in discover(folder, timezone.utc)]
        for extra in past:
            sources += [(f"{extra.name}/{e.student}", e.path, True) for e in discover(extra, timezone.utc)]
    except BatchError as exc:
        raise SimilarityError(str(exc)) from None
    seen: set[str] = set()
    items: list[Fingerprinted] = []
    skipped: list[Skipped] = []
    shown: dict[str, Fingerprinted] = {}
    for student, path, is_past in sources:
        if student in seen:  # the same past folder given twice
            continue
        seen.add(student)
        item, unread = _read(student, path, is_past, assignment, boilerplate)
        if unread is not None:
            skipped.append(unread)
            continue
        assert item is not None
        items.append(item)
        shown[student] = item
    pairs, near = compare(items, threshold, common)
    compared = [item.student for item in items if item.written >= MIN_WRITTEN]
    nothing = [item.student for item in items if item.written < MIN_WRITTEN]
    pairs, near = ([p for p in found if p.a not in nothing and p.b not in nothing] for found in (pairs, near))
    involved = {s for p in pairs + near for s in (p.a, p.b)}
    result = SimilarityResult(assignment.name, threshold, common, pairs, clusters_of(pairs), compared, nothing,
                              skipped, near, past_students={i.student for i in items if i.past})
    for student in involved:
        result.files[student] = _lines_of(shown[student])
    result.duration_s = time.perf_counter() - started
    return result


def _read(student: str, path: Path, past: bool, assignment: Assignment, boilerplate: Boilerplate
          ) -> tuple[Fingerprinted | None, Skipped | None]:
    from grader.submission import SubmissionError, load_submission

    try:
        submission = load_submission(path, assignment, student)
    except (SubmissionError, OSError, UnicodeError) as exc:
        reason = exc.one_line() if isinstance(exc, SubmissionError) else f"{type(exc).__name__}: {exc}"
        return None, Skipped(student, str(path), _printable(reason), past)
    try:
        return fingerprint(student, str(path), past, submission.files, boilerplate), None
    except (ValueError, RecursionError, MemoryError) as exc:  # a tokeniser's limit: this student only
        return None, Skipped(student, str(path), _printable(f"cannot be tokenised: {type(exc).__name__}: {exc}"),
                             past)


def _lines_of(item: Fingerprinted) -> dict[str, list[str]]:
    return {name: text[:MAX_SOURCE_CHARS].splitlines() for name, text in item.files.items()}


# --- outputs -----------------------------------------------------------------------------------------------------

MAX_LINES_SHOWN = 80  # of one side of a matched region
MAX_PAIRS_SHOWN = 200  # pairs whose regions the page shows side by side (pairs.json has every pair's)


def similarity_json(result: SimilarityResult) -> str:
    """pairs.json: validated against grader/schemas/similarity.schema.json (a SimilarityError if it is not)."""
    data = result.to_dict()
    validate_similarity(data)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def validate_similarity(data: dict) -> None:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "."
        raise SimilarityError(f"similarity JSON {where}: {error.message}")


def similarity_page(result: SimilarityResult) -> str:
    """The self-contained page: pairs ranked, groups, each pair's matched regions side by side (all escaped)."""
    from grader.pages import _css, _page

    def lines(student: str, file: str, span: list[int]) -> tuple[list[str], int]:
        text = result.files.get(student, {}).get(file, [])
        first, last = max(span[0], 1), min(span[1], span[0] + MAX_LINES_SHOWN - 1)
        return text[first - 1:last], first

    data = result.to_dict()
    sides = [[(m, lines(p["a"], m["a_file"], m["a_lines"]), lines(p["b"], m["b_file"], m["b_lines"]))
              for m in p["matches"]] for p in data["pairs"][:MAX_PAIRS_SHOWN]]
    return _page("similarity.html.j2", f"{result.assignment} · similarity", "en",
                 _css("base.css", "feedback.css", "similarity.css"), data=data, sides=sides,
                 past=result.past_students, min_common=MIN_COMMON)


def write_outputs(result: SimilarityResult, html: Path | None, json_path: Path | None) -> None:
    """Write the page and pairs.json (each atomically); the JSON is validated first."""
    from grader.formats import write_text_atomic

    text = similarity_json(result) if json_path is not None else None
    if html is not None:
        write_text_atomic(html, similarity_page(result))
    if json_path is not None and text is not None:
        write_text_atomic(json_path, text)
