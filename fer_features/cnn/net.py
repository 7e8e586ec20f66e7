"""The CNN for 48x48 grey faces, in plain PyTorch (no torchvision on CPU here)."""

from __future__ import annotations

import torch
from torch import nn


class FERNet(nn.Module):
    """VGG-style network for small grey faces, with a named embedding layer.

    Four stages of ``convs_per_stage`` x (3x3 conv → batch norm → ReLU) followed by 2x2 max
    pooling (48 → 24 → 12 → 6 → 3), global average pooling, a fully connected embedding layer
    (linear → batch norm → ReLU), dropout and the linear classifier. It follows the VGG design
    (Simonyan & Zisserman 2015) as adapted to FER2013 by Khaireddin & Chen (2021), with global
    average pooling in place of their large fully connected layers to keep it small.

    Parameters
    ----------
    widths : tuple of 4 int
        Channels of each stage.
    convs_per_stage : int or tuple of int
        3x3 convolutions per stage (one number for all stages, or one per stage).
    embedding_dim : int
        Size of the embedding (the penultimate layer).
    dropout : float
        Dropout before the classifier.
    n_classes : int, default=7
    stem_stride : {1, 2}, default=1
        Stride of the first convolution. 2 computes the first stage at half resolution and
        replaces its max pooling (with one conv in that stage): the 48-pixel stage is the
        costliest part of int8 inference here (BENCHMARKS.md, section "Int8 inference").

    References
    ----------
    .. [1] Simonyan, K. and Zisserman, A. "Very deep convolutional networks for large-scale
           image recognition." ICLR 2015. arXiv:1409.1556
    .. [2] Khaireddin, Y. and Chen, Z. "Facial emotion recognition: State of the art
           performance on FER2013." arXiv:2105.03588, 2021.
    """

    def __init__(
        self, widths=(32, 64, 128, 256), convs_per_stage=1, embedding_dim=256, dropout=0.3, n_classes=7, stem_stride=1
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        per_stage = (convs_per_stage,) * len(widths) if isinstance(convs_per_stage, int) else tuple(convs_per_stage)
        if len(per_stage) != len(widths):
            raise ValueError(f"convs_per_stage has {len(per_stage)} entries for {len(widths)} stages")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        for stage, (width, n_convs) in enumerate(zip(widths, per_stage)):
            for i in range(n_convs):
                stride = stem_stride if stage == 0 and i == 0 else 1
                layers += [
                    nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                c_in = width
            if not (stage == 0 and stem_stride == 2 and n_convs == 1):  # a strided stem conv is the first stage's pooling
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.embedding = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in, embedding_dim, bias=False), nn.BatchNorm1d(embedding_dim), nn.ReLU(inplace=True)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embedding_dim, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 1, h, w)`` float images → ``(n, embedding_dim)`` embeddings."""
        return self.embedding(self.pool(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 1, h, w)`` float images → ``(n, n_classes)`` logits."""
        return self.classifier(self.dropout(self.embed(x)))


def build_net(config: dict) -> FERNet:
    """A :class:`FERNet` from a config dict (a preset's, plus ``n_classes``)."""
    return FERNet(**config)
