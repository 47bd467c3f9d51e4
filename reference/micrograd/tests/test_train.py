"""Public tests for train.py. train() runs on a small linear model written here (it needs nothing of nn.py), so
the losses below are exact; when they differ, they are compared with what the classic mistakes give."""
import diagnosis
from checks import covers, expect, expect_close, expect_equal
from engine import Value
from train import l2_penalty, mse_loss, sgd_step, train

ENGINE = ("Value.backward", "Value.__add__", "Value.__mul__", "Value.__pow__")  # what a loss's gradient needs


def check_loss(fn, values, rest, expected, expected_grads):
    inputs = [Value(v) for v in values]
    loss = fn(inputs, *rest)
    expect_equal(type(loss).__name__, "Value", "check.result_type", call=f"{fn.__name__}()")
    shown = {"values": values, "rest": list(rest)}
    expect_close(loss.data, expected, "check.loss_value", call=fn.__name__, **shown)
    loss.backward()
    expect_close([v.grad for v in inputs], expected_grads, "check.loss_gradients", call=fn.__name__, **shown)


@covers("mse_loss", uses=ENGINE)
def test_mse_loss_value_and_gradients():
    check_loss(mse_loss, [1.0, -0.5, 2.0], [[0.5, 0.5, 1.0]], 0.75, [1 / 3, -2 / 3, 2 / 3])


@covers("l2_penalty", uses=ENGINE)
def test_l2_penalty_value_and_gradients():
    check_loss(l2_penalty, [1.0, -2.0, 0.5], [0.01], 0.0525, [0.02, -0.04, 0.01])


@covers("l2_penalty")
def test_l2_penalty_is_a_value_when_there_is_nothing_to_penalise():
    for values, lam in (([], 0.1), ([2.0], 0.0)):
        penalty = l2_penalty([Value(v) for v in values], lam)
        call = f"l2_penalty({'[Value(2.0)]' if values else '[]'}, {lam})"
        expect_equal(type(penalty).__name__, "Value", "check.result_type", call=call)
        expect_close(penalty.data, 0.0, "check.loss_value", call="l2_penalty", values=values, rest=[lam])


@covers("sgd_step")
def test_sgd_step_moves_against_the_gradient():
    before = [[1.0, 0.5], [-2.0, -4.0]]
    params = []
    for data, grad in before:
        p = Value(data)
        p.grad = grad
        params.append(p)
    sgd_step(params, 0.1)
    expect(diagnosis.sgd_step(before, 0.1, [[p.data, p.grad] for p in params], [0.95, -1.6]))


class Linear:
    """y = w · x + b, made of the engine's operations; its own zero_grad (not nn.py's)."""

    def __init__(self, params):
        self.params = [Value(p) for p in params]  # the weights, then the bias

    def __call__(self, x):
        out = self.params[-1]
        for w, xi in zip(self.params, x):
            out = out + w * xi
        return out

    def parameters(self):
        return list(self.params)

    def zero_grad(self):
        for p in self.params:
            p.grad = 0.0


XS = [[1.0, 0.5], [-0.5, 1.0], [0.8, -1.2], [0.0, 0.3]]
YS = [1.0, -0.5, 0.3, 0.0]
START = [0.3, -0.2, 0.1]
# train(Linear(START), XS, YS, epochs=5, lr=0.1, lam): the losses, the parameters after it, and the losses of
# each classic mistake (diagnosis.TRAIN_MISTAKES) on the same run.
RUNS = {
    0.0: ([0.158125, 0.14482186693125, 0.1336581905455021, 0.12398256782032209, 0.11539345018260523],
          [0.43121904986021997, -0.10875822140775876, 0.10227123233270465],
          {"no_zero_grad": [0.158125, 0.14482186693125, 0.12269969952862084, 0.09779264708211595,
                            0.07422623638357878],
           "zero_grad_after_backward": [0.158125] * 5,
           "ascent": [0.158125, 0.17271571693125, 0.1903679932380271, 0.2123440607780093, 0.24053120511071832],
           "sum_not_mean": [0.6325, 0.4505518835999999, 0.3413338285237329, 0.2597808758672273,
                            0.19864474084935732]}),
    0.05: ([0.165125, 0.15277189580625003, 0.14258483170354103, 0.1339217293926632, 0.12638446202995113],
           [0.4175540380186096, -0.10399774129558127, 0.09991245218436402],
           {"no_zero_grad": [0.165125, 0.15277189580625003, 0.13259988712465975, 0.11078654935169079,
                             0.0917330014892295],
            "zero_grad_after_backward": [0.165125] * 5,
            "ascent": [0.165125, 0.17877574580625002, 0.195501026144066, 0.21654578395721694,
                       0.24377769710592714],
            "no_l2": [0.158125, 0.14482186693125, 0.1336581905455021, 0.12398256782032209, 0.11539345018260523],
            "sum_not_mean": [0.6395, 0.4617397956, 0.3573157469622928, 0.2811543254236108,
                             0.22537533200044788]}),
}


def check_train(lam):
    model = Linear(START)
    losses = train(model, XS, YS, epochs=5, lr=0.1, lam=lam)
    if not isinstance(losses, list):
        expect_equal(type(losses).__name__, "list", "check.result_type", call="train()")
    want_losses, want_params, mistakes = RUNS[lam]
    expect(diagnosis.train(5, want_losses, [float(v) for v in losses], want_params,
                           [p.data for p in model.parameters()], mistakes))


@covers("train", uses=ENGINE + ("mse_loss", "l2_penalty", "sgd_step"))
def test_train_losses():
    check_train(0.0)


@covers("train", uses=ENGINE + ("mse_loss", "l2_penalty", "sgd_step"))
def test_train_with_l2():
    check_train(0.05)
