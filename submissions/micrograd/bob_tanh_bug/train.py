"""Training: a loss to minimise, a penalty on large weights, and gradient descent."""
from engine import Value


def mse_loss(ypred, ys):
    """Mean squared error: the average of (prediction - target) ** 2."""
    return sum((yp - y) ** 2 for yp, y in zip(ypred, ys)) / len(ys)


def l2_penalty(params, lam):
    """L2 regularisation: lam times the sum of the squared parameters."""
    return lam * sum((p ** 2 for p in params), Value(0.0))


def sgd_step(params, lr):
    """One step of gradient descent: move every parameter against its gradient."""
    for p in params:
        p.data -= lr * p.grad


def train(model, xs, ys, epochs, lr, lam=0.0):
    """Fit model to (xs, ys) by full-batch gradient descent; return the loss of every epoch."""
    losses = []
    for _ in range(epochs):
        ypred = [model(x) for x in xs]
        loss = mse_loss(ypred, ys) + l2_penalty(model.parameters(), lam)
        model.zero_grad()
        loss.backward()
        losses.append(loss.data)
        sgd_step(model.parameters(), lr)
    return losses
