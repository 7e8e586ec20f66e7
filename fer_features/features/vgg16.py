"""VGG16 convolutional bottleneck features, in plain PyTorch, from a local weights file."""

from __future__ import annotations

import numpy as np

from fer_features.cnn.estimators import _TorchModuleMixin
from fer_features.features.base import FaceImageTransformer

# torchvision's VGG16 'features' configuration: channels, or 'M' for 2x2 max pooling.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_features():
    """The convolutional part of VGG16 with torchvision's layer indices (``features.0`` …)."""
    from torch import nn

    layers, c_in = [], 3
    for v in _VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = v
    return nn.Sequential(*layers)


class VGG16Features(_TorchModuleMixin, FaceImageTransformer):
    """ImageNet VGG16 bottleneck (last convolutional block, after pooling) of face crops.

    The grey crop is resized to ``input_size`` (bilinear), copied to three channels,
    normalised with ImageNet's mean and standard deviation and passed through VGG16's 13
    convolutional layers (Simonyan & Zisserman [1]_); the final 512-channel map is flattened.
    Weights come from a **local** file in torchvision's state-dict format (``vgg16-397923af.pth``
    as torchvision publishes it; only its ``features.*`` tensors are used). Nothing is downloaded.

    Parameters
    ----------
    weights : str or path-like
        The state-dict file.
    input_size : int, default=48
        Side the crop is resized to, in pixels, at least 32; the five poolings leave a
        ``input_size // 32`` square map. 48 gives a 1x1 map
        (512 features), 96 a 3x3 map (4,608), 224 a 7x7 map (25,088).
    batch_size : int, default=64
    device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'
    n_jobs : None
        Unused (torch parallelises inside each batch).

    Notes
    -----
    Output: ``(n_samples, 512 * (input_size // 32) ** 2)`` float32, columns ``vgg16_0 …``.
    Pickles with the weights on the CPU.

    References
    ----------
    .. [1] Simonyan, K. and Zisserman, A. "Very deep convolutional networks for large-scale
           image recognition." ICLR 2015. arXiv:1409.1556
    """

    _feature_prefix = "vgg16_"
    _min_size = 8

    def __init__(self, *, weights=None, input_size=48, batch_size=64, device="auto", n_jobs=None):
        self.weights = weights
        self.input_size = input_size
        self.batch_size = batch_size
        self.device = device
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        import os

        import torch

        from fer_features.cnn.net import resolve_device

        if self.weights is None or not os.path.isfile(self.weights):
            where = "no weights file given" if self.weights is None else f"{self.weights}: no such file"
            raise FileNotFoundError(
                f"VGG16 needs ImageNet weights and {where}. Nothing is downloaded at run time: fetch "
                "torchvision's vgg16-397923af.pth on a machine with internet access (e.g. "
                "`torchvision.models.vgg16(weights='IMAGENET1K_V1')` saves it under ~/.cache/torch), "
                "copy it here and pass --weights PATH"
            )
        if int(self.input_size) != self.input_size or self.input_size < 32:
            raise ValueError(f"input_size must be an integer of at least 32 pixels, got {self.input_size!r}")
        try:
            state = torch.load(self.weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise ValueError(f"{self.weights}: not a readable state-dict file ({exc.__class__.__name__}: {exc})") from None
        features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        module = vgg16_features()
        try:
            module.load_state_dict(features, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{self.weights}: not VGG16 weights in torchvision's format ({exc})") from None
        self.device_ = resolve_device(self.device)
        self.module_ = module.to(self.device_).eval()

    def _make_module(self):
        return vgg16_features()

    def _n_features(self, image_shape):
        return 512 * (int(self.input_size) // 32) ** 2

    def _extract(self, X):
        import torch
        import torch.nn.functional as F

        from fer_features.cnn.train import batched_forward

        mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1).to(self.device_)
        std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1).to(self.device_)

        def forward(xb):  # uint8 (b, h, w) on the device → (b, 512 * k * k)
            xb = F.interpolate(xb.float().div_(255.0).unsqueeze(1), size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
            return self.module_((xb.expand(-1, 3, -1, -1) - mean) / std).flatten(1)

        # a copy: X may be a read-only memory map (joblib workers), which torch will not wrap
        xt = torch.from_numpy(np.array(X, dtype=np.uint8, copy=True))
        out = batched_forward(forward, xt, self.device_, self.batch_size, net=self.module_, precision="fp32", channels_last=False)
        return out.numpy().astype(np.float32)
