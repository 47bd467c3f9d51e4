"""The sample submissions in submissions/ are what submissions/README.md says they are.

Checked without the grader: each sample's modules are loaded in this process under private names (see
`load_modules`) and run on the same computations as the reference:

* alice_correct agrees with the reference on every computation;
* each buggy sample differs from the reference on at least one computation in the area of its bug, and the
  exact set of computations it gets wrong is pinned down in `EXPECTED_DIFFERENCES` (a bug in the engine also
  shows in nn and training computations that backpropagate: the hidden tests' authors need to know that);
* grace_hostile is never imported or run here: it is checked by reading its source (AST);
* heidi_syntax_error's nn.py fails to import with a SyntaxError, her engine.py and train.py work.
"""
from __future__ import annotations

import ast
import csv
import gc
import math
import random
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Sequence

import pytest

from grader.runner import import_modules

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / "reference" / "micrograd"
SUBMISSIONS_DIR = ROOT / "submissions" / "micrograd"
MODULE_NAMES = ("engine", "nn", "train")
DUE = datetime.fromisoformat("2026-12-20T23:59:00+08:00")  # reference/assignment.toml, [late] due

SAMPLES = (
    "alice_correct", "bob_tanh_bug", "carol_overwrite_grad", "dave_no_topo", "erin_bias_missing",
    "frank_no_zero_grad", "grace_hostile", "heidi_syntax_error",
)
RUNNABLE_SAMPLES = SAMPLES[:6]  # safe to import in this process; grace is hostile, heidi does not import


# ====================================================================== loading modules in isolation


def load_modules(folder: Path, prefix: str, names: Sequence[str] = MODULE_NAMES) -> SimpleNamespace:
    """folder/<name>.py for each name as private modules, the grader's own way (sys.modules left as it was)."""
    return SimpleNamespace(**import_modules(folder, tuple(names)))


@contextmanager
def random_state_preserved(seed: int = 0) -> Iterator[None]:
    """nn.py draws initial weights from the global `random`: seed it, and leave it as it was."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


REFERENCE = load_modules(REFERENCE_DIR, "_samples_reference")


@pytest.fixture(scope="module")
def samples() -> dict[str, SimpleNamespace]:
    return {name: load_modules(SUBMISSIONS_DIR / name, f"_sample_{name}") for name in RUNNABLE_SAMPLES}


# ====================================================================== computations to compare
#
# Each computation takes a set of modules (engine, nn, train) and returns a flat list of numbers. A sample
# "differs" on a computation if its list has another length, a number is not close to the reference's, or
# the computation raises.

Numbers = list[float]
XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
YS = [1.0, -1.0, -1.0, 1.0]


def _grads_of(build: Callable[..., Any], m: SimpleNamespace, point: Sequence[float]) -> Numbers:
    leaves = [m.engine.Value(x) for x in point]
    out = build(*leaves)
    out.backward()
    return [out.data] + [leaf.grad for leaf in leaves]


SINGLE_OPERATIONS: list[tuple[Callable[..., Any], tuple[float, ...]]] = [
    (lambda a, b: a + b, (1.5, -2.0)),
    (lambda a, b: a * b, (1.5, -2.0)),
    (lambda a: a + a, (1.5,)),
    (lambda a: a * a, (1.5,)),
    (lambda a: a ** 3, (-1.5,)),
    (lambda a: a ** -1, (0.5,)),
    (lambda a: a ** 0.5, (2.0,)),
    (lambda a: a.exp(), (0.7,)),
    (lambda a: a.log(), (0.7,)),
    (lambda a: a.relu(), (1.5,)),
    (lambda a: a.relu(), (-1.5,)),
    (lambda a: a.relu(), (0.0,)),
    (lambda a: a.tanh(), (0.5,)),
    (lambda a: a.tanh(), (-2.0,)),
    (lambda a: a.sigmoid(), (0.5,)),
    (lambda a: -a, (1.5,)),
    (lambda a, b: a - b, (1.5, -2.0)),
    (lambda a, b: a / b, (1.5, -2.0)),
    (lambda a: 2 + a, (1.5,)),
    (lambda a: 3 * a, (1.5,)),
    (lambda a: 2 - a, (1.5,)),
    (lambda a: 2 / a, (1.5,)),
    (lambda a: a * 3 + (a - 2) + a / 4, (1.5,)),
]


def operation_gradients(m: SimpleNamespace) -> Numbers:
    """Every operation on fresh leaves (plus x + x and x * x): output and leaf gradients."""
    return [n for build, point in SINGLE_OPERATIONS for n in _grads_of(build, m, point)]


def every_operation_graph(x: Any, y: Any, z: Any) -> Any:
    a = x * y + 2
    b = a.tanh() * a  # a is used twice
    c = (z ** 2 + 1).log()
    d = (b - c).relu() + (c - 3).relu()  # one relu on, one off
    e = d.exp() / (1 + y.sigmoid())
    return 2 - e ** 0.5 + 3 / (c + 1) - (-x) * 4 + x * x


def graph_gradients(m: SimpleNamespace) -> Numbers:
    """A graph over every operation with shared nodes: d(out)/d(x, y, z)."""
    return _grads_of(every_operation_graph, m, (0.7, -1.3, 0.4))


def chain_gradients(m: SimpleNamespace) -> Numbers:
    """A chain 500 operations deep (shallow enough for a recursive topological sort)."""
    x = m.engine.Value(1.0)
    y = x
    for i in range(500):
        y = y * 1.001 if i % 2 else y + 0.01
    y.backward()
    return [y.data, x.grad]


def accumulation(m: SimpleNamespace) -> Numbers:
    """backward() twice: gradients add up, in leaves and in intermediate nodes."""
    x = m.engine.Value(2.0)
    y = x * 3
    y.backward()
    first = x.grad
    y.backward()
    u = m.engine.Value(2.0)
    v = u * u
    w = v + u
    w.backward()
    w.backward()
    return [first, x.grad, v.grad, u.grad]


def _injected_mlp(m: SimpleNamespace, nin: int = 3, nouts: Sequence[int] = (4, 4, 1)) -> Any:
    """An MLP whose weights and biases are set through its structure (layers -> neurons -> w, b), not
    through parameters(), so a wrong parameters() does not change the network itself."""
    with random_state_preserved():
        model = m.nn.MLP(nin, list(nouts))
    values = random.Random(7)
    for layer in model.layers:
        for neuron in layer.neurons:
            for w in neuron.w:
                w.data = values.uniform(-1, 1)
            neuron.b.data = values.uniform(-0.5, 0.5)
    return model


def _structure(model: Any) -> list[Any]:
    return [p for layer in model.layers for neuron in layer.neurons for p in [*neuron.w, neuron.b]]


def mlp_parameters(m: SimpleNamespace) -> Numbers:
    """MLP(3, [4, 4, 1]).parameters(): how many, and their values in order."""
    params = _injected_mlp(m).parameters()
    return [float(len(params))] + [p.data for p in params]


def mlp_forward(m: SimpleNamespace) -> Numbers:
    model = _injected_mlp(m)
    return [model(x).data for x in XS]


def mlp_backward(m: SimpleNamespace) -> Numbers:
    """Gradients of every weight and bias (found through the structure) of a sum over the 4 inputs."""
    model = _injected_mlp(m)
    total = model(XS[0])
    for x in XS[1:]:
        total = total + model(x) * 0.5
    total.backward()
    return [total.data] + [p.grad for p in _structure(model)]


def loss_functions(m: SimpleNamespace) -> Numbers:
    """mse_loss, l2_penalty and sgd_step on hand-made values, with the gradients of the two losses."""
    Value = m.engine.Value
    ypred = [Value(1.0), Value(-0.5), Value(2.0)]
    mse = m.train.mse_loss(ypred, [0.0, 0.5, 2.5])
    mse.backward()
    params = [Value(1.0), Value(-2.0), Value(3.0)]
    l2 = m.train.l2_penalty(params, 0.1)
    l2.backward()
    p = Value(1.0)
    p.grad = 0.5
    m.train.sgd_step([p], 0.1)
    return [mse.data, *(v.grad for v in ypred), l2.data, *(v.grad for v in params), p.data, p.grad]


def train_trajectory(m: SimpleNamespace) -> Numbers:
    """train() for 20 epochs from an injected start: the losses and the final weights and biases."""
    model = _injected_mlp(m)
    losses = m.train.train(model, XS, YS, epochs=20, lr=0.05, lam=0.01)
    return list(losses) + [p.data for p in _structure(model)]


@dataclass(frozen=True)
class Computation:
    area: str  # the hidden-test group it belongs to: ops, backprop, nn or training
    run: Callable[[SimpleNamespace], Numbers]


COMPUTATIONS: dict[str, Computation] = {
    "operation_gradients": Computation("ops", operation_gradients),
    "graph_gradients": Computation("backprop", graph_gradients),
    "chain_gradients": Computation("backprop", chain_gradients),
    "accumulation": Computation("backprop", accumulation),
    "mlp_parameters": Computation("nn", mlp_parameters),
    "mlp_forward": Computation("nn", mlp_forward),
    "mlp_backward": Computation("nn", mlp_backward),
    "loss_functions": Computation("training", loss_functions),
    "train_trajectory": Computation("training", train_trajectory),
}

# Where each sample's bug is, and every computation on which it differs from the reference. Engine bugs
# leak: anything that backpropagates through a reused node (carol) or more than one level (dave) sees them.
BUG_AREA = {
    "bob_tanh_bug": "ops", "carol_overwrite_grad": "ops", "dave_no_topo": "backprop",
    "erin_bias_missing": "nn", "frank_no_zero_grad": "training",
}
EXPECTED_DIFFERENCES: dict[str, set[str]] = {
    "alice_correct": set(),
    "bob_tanh_bug": {"operation_gradients", "graph_gradients"},  # nn and training use relu, not tanh
    "carol_overwrite_grad": {
        "operation_gradients", "graph_gradients", "accumulation", "mlp_backward", "train_trajectory",
    },
    "dave_no_topo": {
        "operation_gradients", "graph_gradients", "chain_gradients", "accumulation", "mlp_backward",
        "loss_functions", "train_trajectory",
    },
    "erin_bias_missing": {"mlp_parameters", "train_trajectory"},
    "frank_no_zero_grad": {"train_trajectory"},
}


def _close(a: Numbers, b: Numbers) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a, b))


def differs_from_reference(m: SimpleNamespace, name: str) -> bool:
    want = COMPUTATIONS[name].run(REFERENCE)
    try:
        got = COMPUTATIONS[name].run(m)
    except Exception:  # e.g. an overflow after a diverging training run
        return True
    return not _close(got, want)


# ====================================================================== the runnable samples


@pytest.mark.parametrize("computation", list(COMPUTATIONS))
def test_alice_matches_the_reference(samples: dict[str, SimpleNamespace], computation: str) -> None:
    want = COMPUTATIONS[computation].run(REFERENCE)
    got = COMPUTATIONS[computation].run(samples["alice_correct"])
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("sample", list(BUG_AREA))
def test_buggy_sample_differs_from_the_reference_in_the_area_of_its_bug(
    samples: dict[str, SimpleNamespace], sample: str,
) -> None:
    own_area = [name for name, c in COMPUTATIONS.items() if c.area == BUG_AREA[sample]]
    assert any(differs_from_reference(samples[sample], name) for name in own_area)


@pytest.mark.parametrize("sample", RUNNABLE_SAMPLES)
def test_sample_differs_from_the_reference_exactly_where_expected(
    samples: dict[str, SimpleNamespace], sample: str,
) -> None:
    differing = {name for name in COMPUTATIONS if differs_from_reference(samples[sample], name)}
    assert differing == EXPECTED_DIFFERENCES[sample]


def test_the_computations_themselves_are_deterministic() -> None:
    for name, computation in COMPUTATIONS.items():
        assert _close(computation.run(REFERENCE), computation.run(REFERENCE)), name


def test_alice_uses_the_recursive_topological_sort_of_the_course_notes(samples: dict[str, SimpleNamespace]) -> None:
    """So a graph deeper than the recursion limit (1000 by default) is too deep for her backward(): the
    hidden tests must keep graphs shallower than that, or the harness must raise the limit, or alice and
    every student who follows the course notes loses points for correct code."""
    Value = samples["alice_correct"].engine.Value
    was_enabled = gc.isenabled()
    gc.disable()  # Values sit in reference cycles; pausing the collector keeps this quick
    try:
        x = Value(1.0)
        y = x
        for _ in range(5_000):
            y = y + 1.0
        with pytest.raises(RecursionError):
            y.backward()
    finally:
        if was_enabled:
            gc.enable()


def test_loading_samples_leaves_sys_modules_untouched(samples: dict[str, SimpleNamespace]) -> None:
    loaded = {id(module) for modules in samples.values() for module in vars(modules).values()}
    assert all(id(sys.modules.get(name)) not in loaded for name in MODULE_NAMES)
    assert not any(name.startswith("_sample_") for name in sys.modules)
    for modules in samples.values():
        assert modules.nn.Value is modules.engine.Value
        assert modules.train.Value is modules.engine.Value


# ====================================================================== heidi: a syntax error in nn.py


def test_heidi_nn_fails_to_import_with_a_syntax_error() -> None:
    before = {name: sys.modules.get(name) for name in MODULE_NAMES}
    with pytest.raises(SyntaxError) as excinfo:
        load_modules(SUBMISSIONS_DIR / "heidi_syntax_error", "_sample_heidi")
    assert Path(excinfo.value.filename).name == "nn.py"
    assert {name: sys.modules.get(name) for name in MODULE_NAMES} == before


@pytest.mark.parametrize("computation", ["operation_gradients", "graph_gradients", "accumulation", "loss_functions"])
def test_heidi_engine_and_train_still_match_the_reference(computation: str) -> None:
    heidi = load_modules(SUBMISSIONS_DIR / "heidi_syntax_error", "_sample_heidi", names=("engine", "train"))
    assert COMPUTATIONS[computation].run(heidi) == pytest.approx(COMPUTATIONS[computation].run(REFERENCE))


# ====================================================================== grace: hostile, read but never run


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _definitions(tree: ast.Module) -> dict[str, str]:
    """Top-level classes and functions, as AST dumps (comments, and so the solution markers, are ignored)."""
    return {node.name: ast.dump(node) for node in tree.body if isinstance(node, ast.ClassDef | ast.FunctionDef)}


def test_grace_engine_is_the_reference_engine() -> None:
    grace = _parse(SUBMISSIONS_DIR / "grace_hostile" / "engine.py")
    assert ast.dump(grace) == ast.dump(_parse(REFERENCE_DIR / "engine.py"))


def test_grace_nn_has_the_reference_classes_plus_import_time_attacks() -> None:
    path = SUBMISSIONS_DIR / "grace_hostile" / "nn.py"
    tree = _parse(path)
    assert _definitions(tree) == _definitions(_parse(REFERENCE_DIR / "nn.py"))
    source = path.read_text()
    assert '"ok": True' in source and '"score": 100' in source  # forged protocol reply and score report
    assert '"../autotests"' in source and '"/root"' in source  # attempts to read the hidden tests and /root
    top_level_calls = [node for node in tree.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    assert any(isinstance(node.value.func, ast.Name) and node.value.func.id == "print" for node in top_level_calls)


def test_grace_train_loops_forever_and_the_rest_of_train_py_is_the_reference() -> None:
    tree = _parse(SUBMISSIONS_DIR / "grace_hostile" / "train.py")
    grace = _definitions(tree)
    reference = _definitions(_parse(REFERENCE_DIR / "train.py"))
    assert {k: v for k, v in grace.items() if k != "train"} == {k: v for k, v in reference.items() if k != "train"}
    train = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "train")
    endless = [
        loop for loop in ast.walk(train)
        if isinstance(loop, ast.While) and isinstance(loop.test, ast.Constant) and loop.test.value is True
        and not any(isinstance(n, ast.Break | ast.Return) for n in ast.walk(loop))
    ]
    assert endless


# ====================================================================== the folder itself


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_folder_holds_the_three_files_without_solution_markers(sample: str) -> None:
    folder = SUBMISSIONS_DIR / sample
    names = {p.name for p in folder.iterdir()}
    assert names == {"engine.py", "nn.py", "train.py"}  # no time inside: it comes from times.csv
    for name in MODULE_NAMES:
        text = (folder / f"{name}.py").read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text


def test_readme_describes_every_sample() -> None:
    readme = (SUBMISSIONS_DIR / "README.md").read_text()
    for sample in SAMPLES:
        assert f"`{sample}`" in readme


def _times() -> dict[str, datetime]:
    """submissions/times.csv: the times course staff give, beside (never inside) the submissions."""
    with open(SUBMISSIONS_DIR / "times.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert all(row["submitted_at"].endswith("+08:00") for row in rows)
    return {row["student"]: datetime.fromisoformat(row["submitted_at"]) for row in rows}


def _submitted_at(sample: str) -> datetime:
    return _times()[sample]


def test_two_samples_carry_a_submission_time_one_on_time_and_one_two_days_late() -> None:
    dated = sorted(s for s in SAMPLES if s in _times())
    assert dated == ["alice_correct", "erin_bias_missing"]
    assert _submitted_at("alice_correct") <= DUE
    late_by = _submitted_at("erin_bias_missing") - DUE
    assert timedelta(days=1) < late_by <= timedelta(days=2)  # the second started day: 2 days late
