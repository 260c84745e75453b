"""Small torch utilities shared by the demo models, the --unique panel and the benchmark zoo."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from .types import FloatArray, LabelArray


def train(
    model: nn.Module,
    x: FloatArray,
    y: LabelArray,
    *,
    seed: int,
    epochs: int = 15,
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    only: Sequence[nn.Parameter] | None = None,
) -> nn.Module:
    """Train with Adam and cross-entropy, seeded; ``only`` limits training to those parameters.

    On a trained model this fine-tunes (all layers, or ``only`` e.g. the last layer's). Parameters'
    ``requires_grad`` flags are restored afterwards. Returns the model in eval mode.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    flags = {id(p): p.requires_grad for p in model.parameters()}
    trainable = list(only) if only is not None else list(model.parameters())
    chosen = {id(p) for p in trainable}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in chosen)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(trainable, lr=learning_rate)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs))
        for start in range(0, len(inputs), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(inputs[batch]), targets[batch])
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    for parameter in model.parameters():
        parameter.requires_grad_(flags[id(parameter)])
    return model.eval()


def magnitude_pruned(model: nn.Module, fraction: float) -> nn.Module:
    """A weight-pruned copy: the smallest ``fraction`` of each weight tensor (rank ≥ 2) set to zero."""
    import torch

    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in copy_.parameters():
            if parameter.dim() > 1:
                cutoff = parameter.abs().flatten().kthvalue(max(1, int(fraction * parameter.numel()))).values
                parameter[parameter.abs() <= cutoff] = 0.0
    return copy_.eval()
