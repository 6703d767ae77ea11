"""Small torch models the import tests trace as ``import_models:NAME`` (a user's own module)."""

from __future__ import annotations

import torch
from torch import nn


class Tiny(nn.Module):
    """conv (bias-free) + batch norm → residual conv → global pool → fc: 3 weighted layers."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.body = nn.Conv2d(width, width, 3, padding=2, dilation=2)
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = x + self.body(x)
        return self.fc(x.mean(dim=(2, 3)))


class WithTransposed(nn.Module):
    """A conv, then a transposed convolution the importer cannot express."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.up(self.conv(x)).mean(dim=(2, 3)))


def not_a_module() -> int:
    return 3


class Tied(nn.Module):
    """One linear layer applied twice: its weights are shared."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(self.conv(x).mean(dim=(2, 3))))
