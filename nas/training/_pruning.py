"""Global magnitude pruning of a model during training (the ``prune_sparsity`` key).

The weights pruned are the model's ``prunable_parameters()`` when it has that method, else
every parameter with two or more dimensions; :func:`nas.training.train` updates the masks to
:func:`~nas.training.prune_schedule` after each epoch and re-applies them after every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["_Pruner"]


class _Pruner:
    """Global magnitude pruning with masks re-applied after every optimiser step."""

    def __init__(self, model: torch.nn.Module) -> None:
        chooser = getattr(model, "prunable_parameters", None)
        candidates = list(chooser()) if callable(chooser) else list(model.parameters())
        self.params = [p for p in candidates if p.requires_grad and p.dim() >= 2]
        self.masks: list[torch.Tensor] | None = None

    def update(self, sparsity: float) -> None:
        import torch

        if sparsity <= 0 or not self.params:
            return
        with torch.no_grad():
            flat = torch.cat([p.detach().abs().reshape(-1) for p in self.params])
            k = int(sparsity * flat.numel())
            if k < 1:
                return
            threshold = torch.kthvalue(flat.float().cpu(), k).values.item()
            self.masks = [(p.detach().abs() > threshold).to(p.dtype) for p in self.params]
        self.apply()

    def apply(self) -> None:
        import torch

        if self.masks is None:
            return
        with torch.no_grad():
            for p, m in zip(self.params, self.masks):
                p.mul_(m)

    def sparsity(self) -> float:
        n = sum(p.numel() for p in self.params)
        if n == 0:
            return 0.0
        zeros = sum(int((p.detach() == 0).sum().item()) for p in self.params)
        return zeros / n
