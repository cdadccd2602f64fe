"""The training form trains: gradients reach every branch and one step lowers the loss."""
from __future__ import annotations

import torch

import fastvit
from helpers import image


def test_one_optimizer_step_changes_the_loss():
    torch.manual_seed(0)
    model = fastvit.create_model("t8", num_classes=10, drop_path_rate=0.1).train()
    x, target = image(64, batch=4), torch.tensor([1, 2, 3, 4])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loss = torch.nn.functional.cross_entropy(model(x), target)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, no_grad[:5]
    optimizer.step()
    model.eval()
    with torch.no_grad():
        before = loss.item()
        after = torch.nn.functional.cross_entropy(model(x), target).item()
    assert after != before


def test_drop_path_is_identity_in_eval_and_random_in_train():
    drop = fastvit.layers.DropPath(0.5)
    x = torch.ones(64, 4, 2, 2)
    assert torch.equal(drop.eval()(x), x)
    out = drop.train()(x)
    kept = out[:, 0, 0, 0]
    assert set(kept.tolist()) <= {0.0, 2.0} and 0 < (kept == 0).sum() < 64
