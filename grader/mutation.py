"""Mutants of the reference: small, deliberate bugs in its solution regions, for `grader selftest`.

Each mutation operator finds AST nodes inside a `### BEGIN SOLUTION` .. `### END SOLUTION` region and proposes
a replacement for the node's source text. Only that span of text changes, so the rest of the file stays byte
for byte the same and the diff of a mutant is one or two lines. A mutant that does not compile is dropped, and
so is one whose text another mutant already produced.
"""
from __future__ import annotations

import ast
import difflib
import hashlib
from dataclasses import dataclass
from typing import Callable, Iterator

from grader.errors import UnusableInput
from grader.generate import qualified_name, solution_regions

OPERATORS = ("augassign", "drop_term", "drop_factor", "swap_operands", "constant", "negate", "comparison",
             "delete_statement", "return_early", "reorder")

TERMS = (ast.Add, ast.Sub)
FACTORS = (ast.Mult, ast.Div, ast.Pow)
NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
# How tightly each operator binds (Python's table, higher binds tighter): where parentheses are needed.
BINDING = {ast.Add: 11, ast.Sub: 11, ast.Mult: 12, ast.Div: 12, ast.FloorDiv: 12, ast.Mod: 12, ast.MatMult: 12,
           ast.Pow: 14}
UNARY, ATOM = 13, 20
SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
           ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!=",
           ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
# Each comparison becomes its off-by-one neighbour and its opposite.
COMPARISONS = {">": (">=", "<"), ">=": (">", "<"), "<": ("<=", ">"), "<=": ("<", ">"), "==": ("!=",),
               "!=": ("==",), "in": ("not in",), "not in": ("in",), "is": ("is not",), "is not": ("is",)}
CONSTANTS = (0, 1, 2, -1)


class MutationError(UnusableInput):
    """A reference file cannot be mutated (no group for one of its functions); the message names file:line."""


@dataclass(frozen=True)
class Mutant:
    id: str  # short hex, stable while the reference text around the mutation does not change
    file: str
    line: int
    operator: str
    description: str  # e.g. "self.grad = 1.0  ->  self.grad = 0.0" or "delete `topo.append(node)`"
    function: str  # e.g. "Value.tanh: _backward"
    group: str  # the hidden-test group that must catch it
    files: dict[str, str]  # every module of the submission, this one mutation applied to `file`
    diff: str


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] (one whole node, or two adjacent statements) with `replacement`."""

    start: int
    end: int
    replacement: str
    operator: str
    description: str  # "" for an expression: the changed line describes it


def generate_mutants(files: dict[str, str], group_of: Callable[[str], str | None]) -> list[Mutant]:
    """All mutants of the solution regions of `files` (name -> source text), file by file, in source order."""
    mutants: list[Mutant] = []
    for name, text in files.items():
        seen = {text}
        occurrences: dict[tuple, int] = {}
        tree = ast.parse(text, filename=name)
        for edit in sorted(find_edits(text, tree, solution_regions(text, name)), key=lambda e: (e.start, e.end)):
            mutated = text[:edit.start] + edit.replacement + text[edit.end:]
            if mutated in seen or not compiles(mutated, name):
                continue
            seen.add(mutated)
            # The whole lines around the edit: ids then survive edits elsewhere and rarely need the occurrence.
            first, last = text.rfind("\n", 0, edit.start) + 1, text.find("\n", edit.end)
            shift = len(mutated) - len(text)
            key = (name, edit.operator, text[first:last].strip(), mutated[first:last + shift].strip())
            occurrences[key] = occurrences.get(key, 0) + 1
            line = text.count("\n", 0, edit.start) + 1
            function = qualified_name(tree, line, name)
            group = group_of(function)
            if group is None:
                raise MutationError(f"{name}:{line}: no group of assignment.toml lists {function} in its functions")
            mutants.append(Mutant(
                id=mutant_id(*key, occurrences[key]), file=name, line=line, operator=edit.operator,
                description=edit.description or describe_line(text, mutated, line),
                function=function, group=group, files={**files, name: mutated},
                diff="".join(difflib.unified_diff(text.splitlines(keepends=True), mutated.splitlines(keepends=True),
                                                  f"a/{name}", f"b/{name}", n=1))))
    return mutants


def mutant_id(file: str, operator: str, original: str, replacement: str, occurrence: int) -> str:
    key = "\0".join([file, operator, original, replacement, str(occurrence)])
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def one_line(code: str, width: int = 60) -> str:
    """The first line of some code, shortened, for a description."""
    first = code.strip().split("\n")[0].strip()
    return first if len(first) <= width else first[: width - 3] + "..."


def describe_line(text: str, mutated: str, line: int) -> str:
    """An expression mutant in context: the line before and after."""
    before, after = text.split("\n")[line - 1], mutated.split("\n")[line - 1]
    return f"{one_line(before, 70)}  ->  {one_line(after, 70)}"


def compiles(text: str, name: str) -> bool:
    try:
        compile(text, name, "exec")
    except SyntaxError:
        return False
    return True


# ---------------------------------------------------------------------- finding the edits


Positioned = ast.expr | ast.stmt  # the nodes that edits touch: they have a line and column


class Source:
    """The text of one file, with AST positions (line, UTF-8 byte column) turned into string offsets."""

    def __init__(self, text: str):
        self.text = text
        self.line_starts = [0]
        for line in text.split("\n"):
            self.line_starts.append(self.line_starts[-1] + len(line) + 1)

    def offset(self, line: int, byte_col: int) -> int:
        start = self.line_starts[line - 1]
        line_text = self.text[start:self.line_starts[line] - 1]
        return start + len(line_text.encode("utf-8")[:byte_col].decode("utf-8"))

    def start(self, node: Positioned) -> int:
        return self.offset(node.lineno, node.col_offset)

    def end(self, node: Positioned) -> int:
        assert node.end_lineno is not None and node.end_col_offset is not None  # ast.parse sets them
        return self.offset(node.end_lineno, node.end_col_offset)

    def code(self, node: Positioned) -> str:
        return self.text[self.start(node):self.end(node)]

    def operand(self, node: Positioned, binding: int) -> str:
        """The node's code, in parentheses if it binds less tightly than where it is put needs."""
        return self.code(node) if binds(node) >= binding else f"({self.code(node)})"

    def indent(self, node: Positioned) -> str | None:
        """The whitespace before a statement that starts its own line; None after a `;`."""
        before = self.text[self.line_starts[node.lineno - 1]:self.start(node)]
        return before if not before.strip() else None

    def replace(self, node: Positioned, replacement: str, operator: str) -> Edit:
        return Edit(self.start(node), self.end(node), replacement, operator, "")

    def replace_symbol(self, node: Positioned, left: Positioned, right: Positioned, old: str, new: str,
                       operator: str) -> Edit | None:
        """Replace the operator symbol `old` that stands between `left` and `right`, e.g. `+=` or `>`."""
        start, end = self.end(left) - self.start(node), self.start(right) - self.start(node)
        code = self.code(node)
        gap = code[start:end]
        if gap.count(old) != 1:  # a comment in between makes it ambiguous: leave it alone
            return None
        return self.replace(node, code[:start] + gap.replace(old, new) + code[end:], operator)


def binds(node: ast.AST) -> int:
    """How tightly an expression binds, on the scale of BINDING."""
    if isinstance(node, ast.BinOp):
        return BINDING[type(node.op)]
    if isinstance(node, ast.UnaryOp):
        return 5 if isinstance(node.op, ast.Not) else UNARY  # `not` binds looser than a comparison
    if isinstance(node, (ast.Compare, ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr, ast.Await, ast.Starred)):
        return 7  # all of them bind no tighter than a comparison
    return ATOM


def find_edits(text: str, tree: ast.Module, regions: list[tuple[int, int]]) -> list[Edit]:
    source = Source(text)

    def inside(node: Positioned) -> bool:
        assert node.end_lineno is not None  # ast.parse sets it
        return any(begin < node.lineno and node.end_lineno < end for begin, end in regions)

    edits: list[Edit | None] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.expr, ast.stmt)) and inside(node):
            edits.extend(expression_edits(source, node))
        for block in ("body", "orelse", "finalbody"):
            body = getattr(node, block, None)  # an IfExp's body is an expression, not a block
            statements = [s for s in body if isinstance(s, ast.stmt) and inside(s)] if isinstance(body, list) else []
            edits.extend(statement_edits(source, statements))
    return [e for e in edits if e is not None]


def expression_edits(source: Source, node: ast.AST) -> Iterator[Edit | None]:
    code = source.operand
    if isinstance(node, ast.AugAssign):
        yield source.replace_symbol(node, node.target, node.value, SYMBOLS[type(node.op)] + "=", "=", "augassign")
        yield source.replace(node.value, f"-{code(node.value, UNARY)}", "negate")
    elif isinstance(node, ast.BinOp):
        binding = BINDING[type(node.op)]
        if isinstance(node.op, TERMS + FACTORS):
            operator = "drop_term" if isinstance(node.op, TERMS) else "drop_factor"
            yield source.replace(node, code(node.left, binding), operator)
            yield source.replace(node, code(node.right, binding), operator)
        if type(node.op) in NON_COMMUTATIVE:  # both sides strictly tighter: right for `-` `/`, left for `**`
            swapped = f"{code(node.right, binding + 1)} {SYMBOLS[type(node.op)]} {code(node.left, binding + 1)}"
            yield source.replace(node, swapped, "swap_operands")
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield source.replace(node, repr(not node.value), "negate")
    elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):  # bool is handled above
        for value in CONSTANTS:
            if value != node.value:
                yield source.replace(node, repr(type(node.value)(value)), "constant")
    elif isinstance(node, ast.Return) and node.value is not None:
        yield source.replace(node.value, f"-{code(node.value, UNARY)}", "negate")
    elif isinstance(node, (ast.If, ast.IfExp, ast.While)):
        yield source.replace(node.test, f"not {code(node.test, ATOM)}", "negate")  # `not (a > b)` reads best
    elif isinstance(node, ast.Compare):
        for left, op, right in zip([node.left, *node.comparators], node.ops, node.comparators):
            old = SYMBOLS[type(op)]
            for new in COMPARISONS[old]:
                yield source.replace_symbol(node, left, right, f" {old} ", f" {new} ", "comparison")


def statement_edits(source: Source, statements: list[ast.stmt]) -> Iterator[Edit]:
    """Delete a statement, return just before it, or swap it with the next one of the same block."""
    own_line = [s for s in statements if source.indent(s) is not None]
    for statement in own_line:
        code = source.code(statement)
        yield Edit(source.start(statement), source.end(statement), "pass", "delete_statement",
                   f"delete `{one_line(code)}`")
        if not isinstance(statement, ast.Return):
            yield Edit(source.start(statement), source.end(statement), f"return\n{source.indent(statement)}{code}",
                       "return_early", f"return before `{one_line(code)}`")
    for first, second in zip(own_line, own_line[1:]):
        if statements.index(second) == statements.index(first) + 1:
            gap = source.text[source.end(first):source.start(second)]
            yield Edit(source.start(first), source.end(second), source.code(second) + gap + source.code(first),
                       "reorder", f"swap `{one_line(source.code(first))}` and `{one_line(source.code(second))}`")
