"""Oracle tests for the reference of the second assignment, reference/micrograd-classify/.

The hidden tests grade students by comparing them with this reference, so it is checked here against
independent oracles: the textbook float formulas where they are finite, central finite differences, the
closed-form gradients (sigmoid(z) - y, softmax - onehot), and hand-traced draw orders and stopping epochs.

The reference modules are loaded under private names and ``sys.modules`` is left exactly as it was.
The sandbox side of the hidden tests (harness.py) is run here too, on the reference, through a stand-in for
the grader's ``grader_harness`` helpers.
"""
from __future__ import annotations

import ast
import importlib.util
import math
import random
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FOLDER = Path(__file__).resolve().parent.parent / "reference" / "micrograd-classify"
MODULE_NAMES = ("engine", "nn", "losses", "classify")


def load_modules(folder: Path, prefix: str) -> SimpleNamespace:
    """engine, nn, losses, classify from folder as private modules; sys.modules left as it was."""
    names = (*MODULE_NAMES, "grader_harness", "harness")
    saved = {name: sys.modules.get(name) for name in names}
    modules: dict[str, ModuleType] = {}
    try:
        sys.modules["grader_harness"] = grader_harness_stand_in()
        for name in (*MODULE_NAMES, "harness"):
            spec = importlib.util.spec_from_file_location(f"{prefix}.{name}", folder / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            modules[name] = module
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return SimpleNamespace(**modules)


def grader_harness_stand_in() -> ModuleType:
    """What the sandbox offers as `grader_harness`: WrongType, number, numbers (from grader/harness.py)."""
    from grader import harness as grader_harness

    module = ModuleType("grader_harness")
    module.WrongType = grader_harness.WrongType  # type: ignore[attr-defined]
    module.number = grader_harness.number  # type: ignore[attr-defined]
    module.numbers = grader_harness.numbers  # type: ignore[attr-defined]
    return module


REF = load_modules(FOLDER, "_reference_classify")
Value = REF.engine.Value
L, C = REF.losses, REF.classify
LOGIT = st.floats(-1000, 1000, allow_nan=False)


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def numeric_derivative(f, x: float, h: float = 1e-6) -> float:
    return (f(x + h) - f(x - h)) / (2 * h)


def test_loading_leaves_sys_modules_untouched_and_shares_one_value_class() -> None:
    before = {name: sys.modules.get(name) for name in (*MODULE_NAMES, "grader_harness")}
    again = load_modules(FOLDER, "_reference_classify_again")
    assert {name: sys.modules.get(name) for name in before} == before
    assert again.losses.Value is again.engine.Value and again.classify.Value is again.engine.Value


def test_given_files_are_the_first_assignments_reference_without_markers() -> None:
    first = FOLDER.parent / "micrograd"
    for name in ("engine.py", "nn.py"):
        stripped = [line for line in (first / name).read_text().splitlines(keepends=True)
                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
        assert (FOLDER / name).read_text() == "".join(stripped), name


def test_public_test_helpers_are_the_first_assignments() -> None:
    """checks.py (covers, expect, the English text for plain pytest) is one file in two places: each assignment's
    public tests are a folder a student runs on its own."""
    first = FOLDER.parent / "micrograd"
    assert (FOLDER / "tests" / "checks.py").read_text() == (first / "tests" / "checks.py").read_text()


# ====================================================================== bce_with_logits


def bce_float(z: float, y: int) -> float:
    """The textbook -[y log s + (1 - y) log(1 - s)], in floats; finite only where s is not rounded to 0 or 1."""
    s = sigmoid(z)
    return -(y * math.log(s) + (1 - y) * math.log(1 - s))


def bce(z: float, y: int) -> tuple[float, float]:
    zv = Value(z)
    loss = L.bce_with_logits(zv, y)
    loss.backward()
    return loss.data, zv.grad


@given(z=st.floats(-15, 15, allow_nan=False), y=st.sampled_from([0, 1]))
def test_bce_equals_the_textbook_formula_and_its_gradient_is_sigmoid_minus_y(z: float, y: int) -> None:
    data, grad = bce(z, y)
    assert data == pytest.approx(bce_float(z, y), rel=1e-8, abs=1e-12)  # the textbook form loses digits
    assert grad == pytest.approx(sigmoid(z) - y, rel=1e-9, abs=1e-12)


@given(z=LOGIT, y=st.sampled_from([0, 1]))
def test_bce_is_finite_up_to_1000_and_matches_the_stable_float_formula(z: float, y: int) -> None:
    data, grad = bce(z, y)
    assert math.isfinite(data) and math.isfinite(grad)
    assert data == pytest.approx(max(z, 0) - z * y + math.log1p(math.exp(-abs(z))), rel=1e-12, abs=1e-12)
    assert grad == pytest.approx(sigmoid(z) - y, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("z", [-1000.0, -709.5, -50.0, -1.0, 0.0, 1e-9, 1.0, 50.0, 709.5, 1000.0])
@pytest.mark.parametrize("y", [0, 1])
def test_bce_gradient_against_finite_differences(z: float, y: int) -> None:
    data, grad = bce(z, y)
    assert math.isfinite(data)
    assert grad == pytest.approx(numeric_derivative(lambda t: L.bce_with_logits(Value(t), y).data, z), abs=1e-6)
    assert grad == pytest.approx(sigmoid(z) - y, abs=1e-15)


def test_bce_extremes_exactly() -> None:
    assert bce(1000.0, 0) == (1000.0, 1.0)
    assert bce(1000.0, 1) == (0.0, 0.0)
    assert bce(-1000.0, 1) == (1000.0, -1.0)
    assert bce(-1000.0, 0) == (0.0, 0.0)
    assert bce(0.0, 1) == (pytest.approx(math.log(2)), pytest.approx(-0.5))


# ====================================================================== softmax and cross_entropy


def softmax_float(xs: list[float]) -> list[float]:
    m = max(xs)
    es = [math.exp(x - m) for x in xs]
    return [e / sum(es) for e in es]


LOGITS = st.lists(LOGIT, min_size=1, max_size=6)


@given(LOGITS)
def test_softmax_sums_to_one_is_finite_and_matches_floats(xs: list[float]) -> None:
    probs = [p.data for p in L.softmax([Value(x) for x in xs])]
    assert all(math.isfinite(p) and 0 <= p <= 1 for p in probs)
    assert math.fsum(probs) == pytest.approx(1.0, abs=1e-12)
    assert probs == pytest.approx(softmax_float(xs), rel=1e-9, abs=1e-15)


@given(st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=5))
def test_softmax_equals_the_naive_formula_where_it_is_finite(xs: list[float]) -> None:
    naive = [math.exp(x) / sum(math.exp(t) for t in xs) for x in xs]
    assert [p.data for p in L.softmax([Value(x) for x in xs])] == pytest.approx(naive, rel=1e-9, abs=1e-15)


@given(st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=5), st.data())
def test_softmax_gradient_is_its_jacobian(xs: list[float], data: st.DataObject) -> None:
    upstream = data.draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=len(xs), max_size=len(xs)))
    vs = [Value(x) for x in xs]
    probs = L.softmax(vs)
    total = sum((p * u for p, u in zip(probs, upstream)), Value(0.0))
    total.backward()
    s = softmax_float(xs)
    want = [s[j] * (upstream[j] - sum(u * si for u, si in zip(upstream, s))) for j in range(len(xs))]
    assert [v.grad for v in vs] == pytest.approx(want, rel=1e-7, abs=1e-12)


def cross_entropy(xs: list[float], label: int) -> tuple[float, list[float]]:
    vs = [Value(x) for x in xs]
    loss = L.cross_entropy(vs, label)
    loss.backward()
    return loss.data, [v.grad for v in vs]


@given(st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=5), st.data())
def test_cross_entropy_equals_the_naive_formula_where_it_is_finite(xs: list[float], data: st.DataObject) -> None:
    label = data.draw(st.integers(0, len(xs) - 1))
    naive = -math.log(math.exp(xs[label]) / sum(math.exp(x) for x in xs))
    assert cross_entropy(xs, label)[0] == pytest.approx(naive, rel=1e-9, abs=1e-9)


@given(LOGITS, st.data())
def test_cross_entropy_is_finite_and_its_gradient_is_softmax_minus_onehot(xs: list[float],
                                                                           data: st.DataObject) -> None:
    label = data.draw(st.integers(0, len(xs) - 1))
    loss, grads = cross_entropy(xs, label)
    m = max(xs)
    assert math.isfinite(loss) and loss >= -1e-9
    assert loss == pytest.approx(m + math.log(math.fsum(math.exp(x - m) for x in xs)) - xs[label], rel=1e-9,
                                 abs=1e-9)
    onehot = [1.0 if j == label else 0.0 for j in range(len(xs))]
    assert grads == pytest.approx([s - o for s, o in zip(softmax_float(xs), onehot)], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("xs, label", [([1000.0, -1000.0, 999.0], 1), ([-1000.0, -1000.0], 0),
                                       ([0.3, -1.2, 2.0], 2), ([1000.0, 0.0], 0)])
def test_cross_entropy_against_finite_differences(xs: list[float], label: int) -> None:
    _, grads = cross_entropy(xs, label)
    for j in range(len(xs)):
        def f(t: float, j: int = j) -> float:
            return L.cross_entropy([Value(t if k == j else x) for k, x in enumerate(xs)], label).data
        assert grads[j] == pytest.approx(numeric_derivative(f, xs[j], 1e-4), abs=1e-6)


def test_cross_entropy_extremes() -> None:
    assert cross_entropy([1000.0, -1000.0], 1)[0] == 2000.0
    assert cross_entropy([1000.0, -1000.0], 0) == (0.0, [0.0, 0.0])
    assert cross_entropy([-1000.0, -1000.0], 0)[0] == pytest.approx(math.log(2))


def test_losses_accept_plain_numbers_too() -> None:
    assert [p.data for p in L.softmax([0.0, 0.0])] == [0.5, 0.5]
    assert L.cross_entropy([0.0, 0.0], 1).data == pytest.approx(math.log(2))
    assert L.bce_with_logits(0.0, 0).data == pytest.approx(math.log(2))


# ====================================================================== accuracy


@pytest.mark.parametrize("rows, labels, want", [
    ([[1.0, 1.0], [1.0, 1.0]], [0, 1], 0.5),  # a tie: the first largest is the prediction
    ([[0.0, 2.0, 2.0]], [1], 1.0),
    ([[0.0, 2.0, 2.0]], [2], 0.0),
    ([[3.0, -1.0], [-1.0, 3.0], [0.0, 1.0]], [0, 1, 0], 2 / 3),
    ([0.0, 1e-12, -3.0, 2.0], [0, 1, 0, 0], 0.75),  # one logit: > 0 is class 1, exactly 0 is class 0
    ([[0.0], [0.5]], [1, 1], 0.5),  # a list of one logit is the same
])
def test_accuracy(rows: list, labels: list[int], want: float) -> None:
    assert L.accuracy(rows, labels) == pytest.approx(want)
    as_values = [[Value(x) for x in r] if isinstance(r, list) else Value(r) for r in rows]
    assert L.accuracy(as_values, labels) == pytest.approx(want)


@given(st.lists(st.lists(st.integers(-2, 2).map(float), min_size=2, max_size=4), min_size=1, max_size=8), st.data())
def test_accuracy_agrees_with_a_first_index_argmax(rows: list[list[float]], data: st.DataObject) -> None:
    labels = [data.draw(st.integers(0, len(r) - 1)) for r in rows]
    want = sum(r.index(max(r)) == y for r, y in zip(rows, labels)) / len(rows)
    assert L.accuracy(rows, labels) == pytest.approx(want)


# ====================================================================== Dropout


class CountingRandom:
    def __init__(self, seed: int):
        self.rng, self.draws = random.Random(seed), []

    def random(self) -> float:
        self.draws.append(self.rng.random())
        return self.draws[-1]


def test_dropout_draws_once_per_element_in_order_keeps_at_or_above_p_and_scales() -> None:
    p, xs = 0.4, [1.0, -2.0, 3.0, 0.5, -1.5, 2.5]
    rng = CountingRandom(7)
    vs = [Value(x) for x in xs]
    out = C.Dropout(p)(vs, True, rng)
    assert len(rng.draws) == len(xs)
    want = [x / (1 - p) if d >= p else 0.0 for x, d in zip(xs, rng.draws)]
    assert [o.data for o in out] == pytest.approx(want)
    assert 0 < sum(d >= p for d in rng.draws) < len(xs)  # the seed gives both kinds
    sum(out, Value(0.0)).backward()
    assert [v.grad for v in vs] == pytest.approx([1 / (1 - p) if d >= p else 0.0 for d in rng.draws])


def test_dropout_keeps_an_element_whose_draw_equals_p() -> None:
    class Fixed:
        def __init__(self, draws: list[float]):
            self.draws = list(draws)

        def random(self) -> float:
            return self.draws.pop(0)

    out = C.Dropout(0.5)([Value(2.0), Value(3.0)], True, Fixed([0.5, 0.4999]))
    assert [o.data for o in out] == [4.0, 0.0]


def test_dropout_of_a_single_value_is_a_single_value() -> None:
    rng = CountingRandom(0)  # first draw 0.844: kept
    out = C.Dropout(0.5)(Value(2.0), True, rng)
    assert isinstance(out, Value) and out.data == 4.0 and len(rng.draws) == 1


@pytest.mark.parametrize("p, training", [(0.0, True), (0.5, False), (0.0, False)])
def test_dropout_returns_x_and_draws_nothing_when_off(p: float, training: bool) -> None:
    rng = CountingRandom(1)
    xs = [Value(1.0), Value(2.0)]
    assert C.Dropout(p)(xs, training, rng) is xs
    assert rng.draws == []
    assert C.Dropout(p).parameters() == []


# ====================================================================== train_classifier


def tiny_problem(seed: int = 0, n: int = 24) -> tuple[list, list]:
    return C.split(C.make_moons(n, 0.1, seed), 0.75, seed)


def model_with(sizes: list[int], seed: int) -> object:
    rng = random.Random(seed)
    model = REF.nn.MLP(sizes[0], sizes[1:])
    for p in model.parameters():
        p.data = rng.uniform(-1, 1)
    return model


def test_make_moons_and_split() -> None:
    data = C.make_moons(10, 0.0, 3)
    assert sorted(label for _, label in data) == [0] * 5 + [1] * 5
    for x, label in data:
        if label == 0:
            assert math.hypot(x[0], x[1]) == pytest.approx(1.0) and x[1] >= -1e-12
        else:
            assert math.hypot(x[0] - 1, x[1] - 0.5) == pytest.approx(1.0) and x[1] <= 0.5 + 1e-12
    assert C.make_moons(10, 0.1, 3) == C.make_moons(10, 0.1, 3) != C.make_moons(10, 0.1, 4)
    train, val = C.split(data, 0.8, 0)
    assert len(train) == 8 and len(val) == 2 and sorted(train + val) == sorted(data)


def naive_run(model, train, val, epochs, lr, lam=0.0, dropout=None, rng=None):
    """train_classifier without early stopping, written out step by step: the losses and, per epoch, the
    parameters after its step."""
    params = model.parameters()
    train_loss, val_loss, snapshots = [], [], []
    for _ in range(epochs):
        losses = []
        for x, label in train:
            h = x
            for i, layer in enumerate(model.layers):
                h = layer(h)
                if dropout is not None and i < len(model.layers) - 1:
                    h = dropout(h, True, rng)
            losses.append(L.cross_entropy(h, label) if isinstance(h, list) else L.bce_with_logits(h, label))
        loss = sum(losses, Value(0.0)) / len(train) + lam * sum((p * p for p in params), Value(0.0))
        train_loss.append(loss.data)
        for p in params:
            p.grad = 0.0
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
        snapshots.append([p.data for p in params])
        outs = [model(x) for x, _ in val]
        val_loss.append(sum((L.cross_entropy(o, y) if isinstance(o, list) else L.bce_with_logits(o, y)).data
                            for o, (_, y) in zip(outs, val)) / len(val))
    return train_loss, val_loss, snapshots


@pytest.mark.parametrize("sizes", [[2, 6, 2], [2, 6, 1], [2, 4, 4, 2]])
def test_train_classifier_lowers_the_loss_on_moons(sizes: list[int]) -> None:
    train, val = tiny_problem()
    model = model_with(sizes, 1)
    history = C.train_classifier(model, train, val, epochs=25, lr=0.2)
    assert set(history) == {"train_loss", "val_loss", "best_epoch"}
    assert len(history["train_loss"]) == len(history["val_loss"]) == 25
    assert history["train_loss"][-1] < 0.8 * history["train_loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert history["best_epoch"] == history["val_loss"].index(min(history["val_loss"]))


@pytest.mark.parametrize("lam, p", [(0.0, None), (0.01, None), (0.05, 0.3)])
def test_train_classifier_matches_the_step_by_step_run(lam: float, p: float | None) -> None:
    train, val = tiny_problem(2)
    run = naive_run(model_with([2, 5, 2], 3), train, val, 12, 0.3, lam,
                    C.Dropout(p) if p else None, random.Random(5))
    model = model_with([2, 5, 2], 3)
    rng = CountingRandom(5)
    history = C.train_classifier(model, train, val, 12, 0.3, lam=lam, dropout=C.Dropout(p) if p else None, rng=rng)
    assert history["train_loss"] == pytest.approx(run[0], rel=1e-9)
    assert history["val_loss"] == pytest.approx(run[1], rel=1e-9)
    assert [q.data for q in model.parameters()] == pytest.approx(run[2][-1], rel=1e-9)  # nothing restored
    assert len(rng.draws) == (12 * len(train) * 5 if p else 0)  # hidden layer only, training only


def test_l2_is_in_train_loss_and_not_in_val_loss() -> None:
    train, val = tiny_problem(4)
    lam = 0.1
    model = model_with([2, 4, 2], 6)
    penalty = lam * sum(q.data ** 2 for q in model.parameters())
    data_loss = sum(L.cross_entropy(model(x), y).data for x, y in train) / len(train)
    history = C.train_classifier(model, train, val, 1, 0.1, lam=lam)
    assert history["train_loss"][0] == pytest.approx(data_loss + penalty)
    assert history["val_loss"][0] == pytest.approx(sum(L.cross_entropy(model(x), y).data for x, y in val) / len(val))


def first_stop(val_loss: list[float], patience: int) -> int:
    """The last epoch run: after `patience` epochs in a row without a strictly lower val_loss."""
    best, waited = math.inf, 0
    for i, v in enumerate(val_loss):
        if v < best:
            best, waited = v, 0
        else:
            waited += 1
            if waited >= patience:
                return i
    return len(val_loss) - 1


@pytest.mark.parametrize("patience", [1, 2, 3, 5])
@pytest.mark.parametrize("lr", [0.5, 2.5])  # 2.5 overshoots: val_loss goes up and down
def test_early_stopping_stops_at_best_epoch_plus_patience_and_restores_the_best(patience: int, lr: float) -> None:
    train, val = tiny_problem(5, n=16)
    epochs = 30
    full = naive_run(model_with([2, 4, 2], 8), train, val, epochs, lr)
    stop = first_stop(full[1], patience)
    model = model_with([2, 4, 2], 8)
    history = C.train_classifier(model, train, val, epochs, lr, patience=patience)
    best = history["best_epoch"]
    assert history["val_loss"] == pytest.approx(full[1][:stop + 1], rel=1e-9)
    assert best == full[1].index(min(full[1][:stop + 1]))
    assert stop == min(best + patience, epochs - 1)
    assert [q.data for q in model.parameters()] == pytest.approx(full[2][best], rel=1e-12)


def test_the_overshooting_run_really_stops_early_and_restores_something_else_than_the_last() -> None:
    train, val = tiny_problem(5, n=16)
    model = model_with([2, 4, 2], 8)
    full = naive_run(model_with([2, 4, 2], 8), train, val, 30, 2.5)
    history = C.train_classifier(model, train, val, 30, 2.5, patience=2)
    assert len(history["val_loss"]) < 30
    assert full[2][history["best_epoch"]] != full[2][len(history["val_loss"]) - 1]


def test_best_epoch_is_the_first_of_equal_losses() -> None:
    train, val = tiny_problem(1, n=8)
    model = model_with([2, 3, 2], 2)
    history = C.train_classifier(model, train, val, 4, 0.0, patience=2)  # lr 0: every val_loss is equal
    assert history["best_epoch"] == 0 and len(history["val_loss"]) == 3
    model = model_with([2, 3, 2], 2)
    assert C.train_classifier(model, train, val, 4, 0.0)["best_epoch"] == 0


def test_without_patience_nothing_is_restored_even_when_val_loss_rose() -> None:
    train, val = tiny_problem(5, n=16)
    full = naive_run(model_with([2, 4, 2], 8), train, val, 30, 2.5)
    assert full[1].index(min(full[1])) < 29
    model = model_with([2, 4, 2], 8)
    C.train_classifier(model, train, val, 30, 2.5)
    assert [q.data for q in model.parameters()] == pytest.approx(full[2][-1], rel=1e-12)


# ====================================================================== the sandbox side (harness.py)


class FakeSession:
    def __init__(self, modules: SimpleNamespace):
        self.modules = modules

    def module(self, name: str) -> ModuleType:
        return getattr(self.modules, name)


def test_harness_imports_only_the_standard_library_and_the_grader_helpers() -> None:
    tree = ast.parse((FOLDER / "harness.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module}
    assert imported <= {"random", "grader_harness"}


def test_harness_commands_on_the_reference() -> None:
    h, s = REF.harness, FakeSession(REF)
    assert h.cmd_bce(s, z=-1000.0, y=1) == {"data": 1000.0, "grad": -1.0}
    soft = h.cmd_softmax(s, logits=[0.0, 0.0], upstream=[1.0, 0.0])
    assert soft == {"data": [0.5, 0.5], "grads": [0.25, -0.25]}
    ce = h.cmd_cross_entropy(s, logits=[1000.0, -1000.0], label=1)
    assert ce == {"data": 2000.0, "grads": [1.0, -1.0]}
    assert h.cmd_accuracy(s, rows=[[1.0, 1.0], 0.0], labels=[0, 0]) == {"accuracy": 1.0}
    assert h.cmd_accuracy(s, rows=[[1.0, 1.0], 0.0], labels=[0, 0], as_values=True) == {"accuracy": 1.0}
    off = h.cmd_dropout(s, p=0.5, x=[1.0, 2.0], training=False, seed=0)
    assert off == {"out": [1.0, 2.0], "grads": [1.0, 1.0], "draws": 0, "form_kept": True}
    on = h.cmd_dropout(s, p=0.5, x=[3.0], training=True, seed=0, single=True)
    assert on == {"out": [6.0], "grads": [2.0], "draws": 1, "form_kept": True}
    train, val = tiny_problem(5, n=16)
    model = model_with([2, 4, 2], 8)
    params = [p.data for p in model.parameters()]
    reply = h.cmd_train(s, sizes=[2, 4, 2], params=params, train=[[x, y] for x, y in train],
                        val=[[x, y] for x, y in val], epochs=30, lr=2.5, lam=0.0, patience=2, dropout_p=0.2,
                        seed=3)
    assert set(reply) == {"train_loss", "val_loss", "best_epoch", "params", "draws"}
    assert reply["draws"] == len(reply["train_loss"]) * len(train) * 4
    assert len(reply["params"]) == len(params)


def test_harness_reports_wrong_types() -> None:
    h = REF.harness
    broken = SimpleNamespace(engine=REF.engine, nn=REF.nn, classify=REF.classify,
                             losses=SimpleNamespace(bce_with_logits=lambda z, y: z.data))
    with pytest.raises(sys.modules["grader.harness"].WrongType):
        h.cmd_bce(FakeSession(broken), z=1.0, y=0)


@settings(max_examples=30, deadline=None)
@given(p=st.sampled_from([0.1, 0.5, 0.9]), n=st.integers(1, 6), seed=st.integers(0, 1000))
def test_harness_dropout_counts_draws_and_gradients(p: float, n: int, seed: int) -> None:
    reply = REF.harness.cmd_dropout(FakeSession(REF), p=p, x=[float(i + 1) for i in range(n)], training=True,
                                    seed=seed)
    rng = random.Random(seed)
    draws = [rng.random() for _ in range(n)]
    assert reply["draws"] == n
    assert reply["grads"] == pytest.approx([1 / (1 - p) if d >= p else 0.0 for d in draws])
