"""The classification probe: L2-regularized multinomial logistic regression on cached features.

Solved to convergence with full-batch L-BFGS in torch (scikit-learn's objective, warm-started along the
regularization path), with the feature scaling folded into the returned weights, so the probe
loads into the network's linear head and the saved network predicts exactly what the probe did.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from headstart.metrics.classification import log_loss_from_proba
from headstart.tasks.base import ProbeResult, feature_scale

__all__ = ["fit_probe", "l2_linear_fit", "softmax_regression"]


def softmax_regression(
    z: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    c: float,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    class_weight: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-regularized multinomial logistic regression, solved to convergence with full-batch L-BFGS.

    Minimizes ``C * sum_i CE(W z_i + b, y_i) + ||W||^2 / 2`` (scikit-learn's objective, divided by
    ``C * n``); the bias is not penalized. ``class_weight`` (K,) scales each example's loss by its
    class's weight. Float32 (the features' own precision) halves the memory traffic, which bounds
    the speed here. Returns ``(W (K, D), b (K,))``.
    """
    x = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
    t = torch.from_numpy(np.asarray(y, dtype=np.int64))
    cw = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)

    def data_loss(logits: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits, t, weight=cw, reduction="sum") / len(t)

    return l2_linear_fit(x, num_classes, c, data_loss, init)


def l2_linear_fit(
    x: torch.Tensor,
    n_outputs: int,
    c: float,
    data_loss: Callable[[torch.Tensor], torch.Tensor],
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W (n_outputs, D), b (n_outputs,))`` minimizing ``data_loss(x @ W.T + b) + ||W||^2 / (2 C n)`` with
    full-batch L-BFGS (strong Wolfe line search) to convergence: the solver of every probe whose loss is a
    per-example sum divided by n (softmax, sigmoid). The bias is not penalized; ``init`` warm-starts."""
    w = torch.zeros(n_outputs, x.shape[1]) if init is None else init[0].clone()
    b = torch.zeros(n_outputs) if init is None else init[1].clone()
    w.requires_grad_(True)
    b.requires_grad_(True)
    penalty = 1.0 / (2.0 * c * x.shape[0])
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1,
        max_iter=1000,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = data_loss(x @ w.T + b) + penalty * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def _proba(z: np.ndarray, w: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return torch.softmax(torch.from_numpy(np.asarray(z, dtype=np.float32)) @ w.T + b, dim=1).double().numpy()


def fit_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    cs: list[float],
    patience: int = 2,
    class_weight: np.ndarray | None = None,
) -> ProbeResult:
    """Fit one logistic regression per C along the regularization path (strong to weak, warm-started).

    Features are centered and scaled by :func:`~headstart.tasks.base.feature_scale` first (folded into the
    returned weights).
    Best = highest validation accuracy, ties broken by lower validation log loss. The path stops
    after ``patience`` Cs without improvement: weak regularization is the slowest to fit and, once
    validation has turned, only overfits further.
    """
    from sklearn.metrics import f1_score

    mu, sd = feature_scale(x_train)
    ztr, zval = (x_train - mu) / sd, (x_val - mu) / sd
    labels = np.arange(num_classes)
    best: tuple[float, float] | None = None
    history, chosen, init, since_best = [], None, None, 0
    for c in sorted(cs):
        init = softmax_regression(ztr, y_train, num_classes, c, init, class_weight)
        p_val, p_tr = _proba(zval, *init), _proba(ztr, *init)
        acc = float((p_val.argmax(1) == y_val).mean())
        loss = log_loss_from_proba(y_val, p_val)
        history.append(
            {
                "C": c,
                "train_loss": log_loss_from_proba(y_train, p_tr),
                "val_loss": loss,
                "val_accuracy": acc,
                "val_macro_f1": float(
                    f1_score(y_val, p_val.argmax(1), average="macro", labels=labels, zero_division=0)
                ),
            }
        )
        if best is None or (acc, -loss) > best:
            best, chosen, since_best = (acc, -loss), (c, init), 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    assert chosen is not None
    c, (w, b) = chosen
    weight = w.double().numpy() / sd
    return ProbeResult(weight, b.double().numpy() - weight @ mu, c, history)
