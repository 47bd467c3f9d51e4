"""Public tests for train.py. The model's weights are set by hand, so the losses below are exact."""
from checks import covers, expect_close, expect_equal
from engine import Value
from nn import MLP
from train import l2_penalty, mse_loss, sgd_step, train

XS = [[1.0, 0.5], [-0.5, 1.0], [0.8, -1.2], [0.0, 0.3]]
YS = [1.0, -0.5, 0.3, 0.0]
WEIGHTS = [0.5, -0.4, 0.1,  0.3, 0.8, -0.2,  -0.6, 0.2, 0.05,  1.0, -0.7, 0.5, 0.2]


def small_model():
    model = MLP(2, [3, 1])
    params = model.parameters()
    expect_equal(len(params), len(WEIGHTS), "MLP(2, [3, 1]): number of parameters")
    for p, w in zip(params, WEIGHTS):
        p.data = w
    return model


@covers("mse_loss")
def test_mse_loss_value():
    loss = mse_loss([Value(1.0), Value(-0.5), Value(2.0)], [0.5, 0.5, 1.0])
    expect_equal(type(loss).__name__, "Value", "type of mse_loss's result")
    expect_close(loss.data, 0.75, "mse_loss", ypred=[1.0, -0.5, 2.0], ys=[0.5, 0.5, 1.0])


@covers("mse_loss")
def test_mse_loss_gradient():
    ypred = [Value(1.0), Value(-0.5), Value(2.0)]
    mse_loss(ypred, [0.5, 0.5, 1.0]).backward()
    expect_close([y.grad for y in ypred], [1 / 3, -2 / 3, 2 / 3],
                 "after mse_loss(...).backward(), the list of the predictions' grads",
                 ypred=[1.0, -0.5, 2.0], ys=[0.5, 0.5, 1.0])


@covers("l2_penalty")
def test_l2_penalty():
    params = [Value(1.0), Value(-2.0), Value(0.5)]
    penalty = l2_penalty(params, 0.01)
    expect_equal(type(penalty).__name__, "Value", "type of l2_penalty's result")
    expect_close(penalty.data, 0.0525, "l2_penalty", params=[1.0, -2.0, 0.5], lam=0.01)
    penalty.backward()
    expect_close([p.grad for p in params], [0.02, -0.04, 0.01],
                 "after l2_penalty(...).backward(), the list of the parameters' grads",
                 params=[1.0, -2.0, 0.5], lam=0.01)


@covers("sgd_step")
def test_sgd_step():
    params = [Value(1.0), Value(-2.0)]
    params[0].grad, params[1].grad = 0.5, -4.0
    sgd_step(params, 0.1)
    expect_close([p.data for p in params], [0.95, -1.6], "after one sgd_step, the list of the parameters' data",
                 data=[1.0, -2.0], grads=[0.5, -4.0], lr=0.1)
    expect_close([p.grad for p in params], [0.5, -4.0], "after one sgd_step (which must not change grad), "
                 "the list of the parameters' grads", grads=[0.5, -4.0])


@covers("train")
def test_train_losses():
    losses = train(small_model(), XS, YS, epochs=4, lr=0.05)
    expect_close(losses, [0.45600725, 0.4021460855189513, 0.35910519222519505, 0.32387266564899286],
                 "the list of losses from train(MLP(2, [3, 1]), epochs=4, lr=0.05)", lam=0.0)


@covers("train")
def test_train_with_l2():
    losses = train(small_model(), XS, YS, epochs=4, lr=0.05, lam=0.01)
    expect_close(losses, [0.48973225, 0.43416194970090327, 0.38996940059685964, 0.35396229510688615],
                 "the list of losses from train(MLP(2, [3, 1]), epochs=4, lr=0.05, lam=0.01)", lam=0.01)
