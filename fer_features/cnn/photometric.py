"""Photometric augmentation: what a camera and a photo's compression do to a face, in batched torch ops.

One random transform per chosen image, from the families of the robustness benchmark's crop
shifts (:mod:`fer_features.benchmark.shifts`): brightness, contrast, gamma, Gaussian blur,
Gaussian noise, low resolution and JPEG compression, each at a random strength between near the
identity and the benchmark's strongest severity (:data:`PHOTOMETRIC_RANGES`). Called by
:func:`fer_features.cnn.recipe.augment` when ``TrainConfig.photometric`` is above 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Strength of each transform, ``(mildest, strongest)``, drawn uniformly per image in the
#: benchmark's units; the strongest is the benchmark's strongest severity
#: (``SHIFTS[name].levels``). brightness: ± grey levels; contrast: factor on the deviation from
#: the face's mean grey; gamma: exponent ``g`` or ``1 / g`` (half each); blur: sigma, px; noise:
#: sigma, grey levels; low_resolution: side the face is shrunk to, px of a 48-px face (scaled
#: with the face); jpeg: quality.
PHOTOMETRIC_RANGES: dict[str, tuple[float, float]] = {
    "brightness": (0.0, 100.0),
    "contrast": (1.0, 0.2),
    "gamma": (1.0, 2.8),
    "blur": (0.5, 2.0),
    "noise": (0.0, 30.0),
    "low_resolution": (32.0, 16.0),
    "jpeg": (60.0, 20.0),
}

#: JPEG's luminance quantisation table at quality 50 (ITU-T T.81 Annex K, Table K.1).
_JPEG_LUMA = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)


def photometric(
    x: torch.Tensor, p: float, generator: torch.Generator, *, mean: float = 0.0, std: float = 1.0
) -> torch.Tensor:
    """Apply one random photometric transform to each image with probability ``p``.

    Parameters
    ----------
    x : Tensor of shape (n, 1, h, w), float
        Standardised faces: grey level / 255 is ``x * std + mean``.
    p : float
        Probability per image of a transform; 0 returns ``x`` and draws nothing.
    generator : torch.Generator
        On x's device; makes the draws reproducible (three per image: chosen, which transform,
        strength; then a sign per image for brightness and gamma, a normal number per pixel
        for noise).
    mean, std : float, default=0.0, 1.0
        The standardisation of ``x`` (:func:`~fer_features.cnn.recipe.to_tensor`'s); the
        defaults take ``x`` as grey levels in [0, 1].

    Returns
    -------
    Tensor of shape (n, 1, h, w)
        Same dtype and device. Each transform clips to grey levels 0..255, as a photo would.

    Notes
    -----
    The transforms are the benchmark's, on float tensors: blur with replicated edges, low
    resolution by area averaging down and bilinear interpolation up (half-pixel centres, as
    Pillow's ``BOX`` and ``BILINEAR``), and JPEG as its lossy step only: 8x8 block DCT,
    quantisation with the standard luminance table scaled by quality as libjpeg does
    (``jpeg_quality_scaling``), inverse DCT, rounding to grey levels. The entropy coding is
    lossless and left out; libjpeg's integer DCT differs from this float one by about a grey
    level. Training on the benchmark's own shift families makes the benchmark an optimistic
    measure of them (Hendrycks & Dietterich [1]_ keep their corruptions out of training for
    this reason); the held-out faces of issue 32 are the test of whether it generalises. One
    transform per image, rather than AugMix's chains of several [2]_, keeps each image at one
    of the benchmark's kinds of damage.

    References
    ----------
    .. [1] Hendrycks, D. and Dietterich, T. "Benchmarking neural network robustness to common
           corruptions and perturbations." ICLR 2019. arXiv:1903.12261
    .. [2] Hendrycks, D. et al. "AugMix: A simple data processing method to improve robustness
           and uncertainty." ICLR 2020. arXiv:1912.02781
    """
    if p <= 0:
        return x
    n, dev = len(x), x.device
    chosen = torch.rand(n, device=dev, generator=generator) < p
    kind = torch.randint(len(PHOTOMETRIC_RANGES), (n,), device=dev, generator=generator)
    strength = torch.rand(n, device=dev, generator=generator)
    grey = x * std + mean
    out = grey.clone()
    for k, name in enumerate(PHOTOMETRIC_RANGES):
        index = torch.nonzero(chosen & (kind == k)).flatten()
        if len(index):
            lo, hi = PHOTOMETRIC_RANGES[name]
            out[index] = _TRANSFORMS[name](grey[index], lo + strength[index] * (hi - lo), generator).clamp(0.0, 1.0)
    return (out - mean) / std


def _brightness(g, delta, generator):
    sign = torch.where(torch.rand(len(g), device=g.device, generator=generator) < 0.5, -1.0, 1.0)
    return g + (sign * delta / 255.0)[:, None, None, None]


def _contrast(g, factor, generator):
    centre = g.mean(dim=(1, 2, 3), keepdim=True)
    return centre + (g - centre) * factor[:, None, None, None]


def _gamma(g, e, generator):
    lighter = torch.rand(len(g), device=g.device, generator=generator) < 0.5
    e = torch.exp(torch.log(e) * torch.where(lighter, -1.0, 1.0))
    return g.clamp(0.0, 1.0) ** e[:, None, None, None]


def _blur(g, sigma, generator):
    m, _, h, w = g.shape
    radius = math.ceil(3 * PHOTOMETRIC_RANGES["blur"][1])
    taps = torch.arange(-radius, radius + 1, device=g.device, dtype=g.dtype)
    kernel = torch.exp(-0.5 * (taps[None] / sigma[:, None]) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)  # (m, 2r+1), one per image
    y = F.pad(g.reshape(1, m, h, w), (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, kernel[:, None, None, :], groups=m)  # rows
    y = F.conv2d(y, kernel[:, None, :, None], groups=m)  # columns
    return y.reshape(m, 1, h, w)


def _noise(g, sigma, generator):
    noise = torch.randn(g.shape, device=g.device, generator=generator, dtype=g.dtype)
    return g + noise * (sigma / 255.0)[:, None, None, None]


def _low_resolution(g, side, generator):
    h, w = g.shape[-2:]
    sides = torch.round(side * h / 48.0).clamp(1, h).long()
    out = torch.empty_like(g)
    for s in torch.unique(sides).tolist():
        rows = torch.nonzero(sides == s).flatten()
        small = F.interpolate(g[rows], size=(s, max(1, round(s * w / h))), mode="area")
        out[rows] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def _dct_matrix(size: int, device, dtype) -> torch.Tensor:
    """The orthonormal DCT-II matrix: JPEG's forward transform of a block B is ``D @ B @ D.T``."""
    k = torch.arange(size, device=device, dtype=torch.float64)[:, None]
    i = torch.arange(size, device=device, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    d[0] /= math.sqrt(2.0)
    return d.to(dtype)


def jpeg_quantise(g: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG compression's loss on grey faces (see :func:`photometric`'s Notes).

    Parameters
    ----------
    g : Tensor of shape (m, 1, h, w), float
        Grey levels / 255, in [0, 1]; h and w need not be multiples of 8 (edges replicated).
    quality : Tensor of shape (m,)
        JPEG quality per image, 1..100 (rounded to an integer, as libjpeg takes it).

    Returns
    -------
    Tensor of shape (m, 1, h, w)
        The decoded faces, grey levels / 255 on the 0..255 grid.
    """
    m, _, h, w = g.shape
    ph, pw = -h % 8, -w % 8
    v = F.pad(g, (0, pw, 0, ph), mode="replicate") * 255.0 - 128.0
    bh, bw = (h + ph) // 8, (w + pw) // 8
    blocks = v.reshape(m, bh, 8, bw, 8).permute(0, 1, 3, 2, 4)  # (m, bh, bw, 8, 8)
    d = _dct_matrix(8, g.device, g.dtype)
    q = torch.round(quality).clamp(1, 100)
    scale = torch.where(q < 50, torch.floor(5000.0 / q), 200.0 - 2.0 * q)  # libjpeg's jpeg_quality_scaling
    base = torch.tensor(_JPEG_LUMA, device=g.device, dtype=g.dtype)
    table = torch.floor((base * scale[:, None, None] + 50.0) / 100.0).clamp(1, 255)[:, None, None]  # (m, 1, 1, 8, 8)
    coef = torch.round((d @ blocks @ d.T) / table) * table
    v = (d.T @ coef @ d).permute(0, 1, 3, 2, 4).reshape(m, 1, bh * 8, bw * 8)[..., :h, :w]
    return torch.round(v + 128.0).clamp(0.0, 255.0) / 255.0


def _jpeg(g, quality, generator):
    return jpeg_quantise(g, quality)


_TRANSFORMS = {
    "brightness": _brightness,
    "contrast": _contrast,
    "gamma": _gamma,
    "blur": _blur,
    "noise": _noise,
    "low_resolution": _low_resolution,
    "jpeg": _jpeg,
}
