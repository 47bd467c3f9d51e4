"""Hidden tests, group `training`: mse_loss, l2_penalty, sgd_step and the train() loop.

train() is run on a linear model that the harness builds from the engine's own operations, with the same
injected start for student and reference, and its loss trajectory compared epoch by epoch. When it differs,
the trajectory is matched against the classic mistakes to say which one it is. As in `nn`, a test failing
on the student's engine runs again over the reference engine.
"""
from functools import lru_cache

import diagnosis
import pytest

from grader.testing import Feedback, all_close, close, message

pytestmark = pytest.mark.group("training")

XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]  # the course notes' example
YS = [1.0, -1.0, -1.0, 1.0]


def values(rng, n, scale=1.0):
    return [round(scale * rng.uniform(-1, 1), 3) for _ in range(n)]


def check_scalar_loss(code, reference, fn, inputs):
    got, want = code.call_beside(reference, fn, **inputs)
    described = message(f"inputs.{fn}", **inputs)  # "ypred = [...], ys = [...]", with the language's comma
    if not close(got["data"], want["data"]):
        raise Feedback("loss_value", function=fn, call=fn, inputs=described, expected=want["data"], got=got["data"])
    if not all_close(got["grads"], want["grads"]):
        raise Feedback("loss_gradients", function=fn, call=fn, inputs=described, expected=want["grads"],
                       got=got["grads"])


@pytest.mark.covers("mse_loss")
def test_mse_loss_value_and_gradients_match_reference(on_any_engine, reference, rng):
    cases = [{"ypred": [0.5, -0.2, 0.9], "ys": [1.0, -1.0, 0.0]}, {"ypred": values(rng, 4), "ys": values(rng, 4)}]
    for inputs in cases:
        on_any_engine(lambda code, inputs=inputs: check_scalar_loss(code, reference, "mse_loss", inputs))


@pytest.mark.covers("l2_penalty")
@pytest.mark.parametrize("lam", [0.1, 0.0, 2.5])
def test_l2_penalty_value_and_gradients_match_reference(on_any_engine, reference, rng, lam):
    for params in ([0.5, -1.5, 0.25, 2.0, -0.75], values(rng, 5)):  # fixed, then an extra, random case
        inputs = {"params": params, "lam": lam}
        on_any_engine(lambda code, inputs=inputs: check_scalar_loss(code, reference, "l2_penalty", inputs))


@pytest.mark.covers("sgd_step")
def test_sgd_step_moves_against_the_gradient(on_any_engine, reference, rng):
    fixed = [[0.5, 2.0], [-0.25, -1.5], [1.0, 0.75], [-0.8, -3.0]]
    random_params = [[d, g] for d, g in zip(values(rng, 4), values(rng, 4, scale=3))]

    def check(code, params):
        got, want = code.call_beside(reference, "sgd_step", params=params, lr=0.1)
        found = diagnosis.sgd_step(params, 0.1, got, [data for data, _ in want])
        if found is not None:
            raise Feedback(found["id"], **found["params"])

    for params in (fixed, random_params):
        on_any_engine(lambda code, params=params: check(code, params))


# ---------------------------------------------------------------------- train()

@lru_cache(maxsize=64)  # the student's run and the correct-engine run ask the same question
def mistaken_losses(reference, params, epochs, lr, lam, mistake):
    """The loss trajectory of train() with one classic mistake, computed with the reference."""
    value, train = reference.modules["engine"].Value, reference.modules["train"]
    model = reference.commands.LinearModel(value, params)
    losses = []
    for _ in range(epochs):
        ypred = [model(x) for x in XS]
        data_loss = (sum((yp - y) ** 2 for yp, y in zip(ypred, YS)) if mistake == "sum_not_mean"
                     else train.mse_loss(ypred, YS))
        loss = data_loss if mistake == "no_l2" else data_loss + train.l2_penalty(model.parameters(), lam)
        if mistake not in ("no_zero_grad", "zero_grad_after_backward"):
            model.zero_grad()
        loss.backward()
        if mistake == "zero_grad_after_backward":
            model.zero_grad()
        losses.append(loss.data)
        sign = 1 if mistake == "ascent" else -1
        for p in model.parameters():
            p.data += sign * lr * p.grad
    return losses


def check_train(code, reference, params, epochs, lr, lam):
    request = {"params": params, "xs": XS, "ys": YS, "epochs": epochs, "lr": lr, "lam": lam}
    got, want = code.call_beside(reference, "train", **request)
    mistakes = {} if all_close(got["losses"], want["losses"]) else {
        mistake: mistaken_losses(reference, tuple(params), epochs, lr, lam, mistake)
        for mistake in diagnosis.TRAIN_MISTAKES}
    found = diagnosis.train(epochs, want["losses"], got["losses"], want["params"], got["params"], mistakes)
    if found is not None:
        raise Feedback(found["id"], **found["params"])


@pytest.mark.covers("train")
@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_train_loss_trajectory_matches_reference(on_any_engine, reference, rng, lam):
    for params in ([0.3, -0.2, 0.5, 0.2], values(rng, 3) + [0.2]):  # fixed, then an extra, random case
        on_any_engine(lambda code, params=params: check_train(code, reference, params, epochs=15, lr=0.02, lam=lam))
