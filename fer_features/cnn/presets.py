"""The CNN's sizes by name (``--preset``): plain data, so the command line's choices need no torch."""

from __future__ import annotations

#: Network sizes. ``small`` trains on 2 CPU cores in about half an hour (fp32; a few minutes of
#: it in bf16); ``medium`` (VGG-style, one conv at 48x48 then two per stage, 2.8 M parameters)
#: in about 1.5 hours in bf16 on 2 Zen 4 cores; ``large`` (Khaireddin & Chen's VGG widths with
#: global pooling) is for a GPU. ``compact`` (small's first two stages, wider last two, two
#: convs at 6x6: ~74 M multiply-adds a face against small's ~33 M and medium's ~216 M) is sized
#: for int8 inference at several thousand faces/s on 2 cores (BENCHMARKS.md), trained
#: by distillation from a medium network. Speeds: BENCHMARKS.md, section "CNNs trained on the CPU".
PRESETS: dict[str, dict] = {
    "small": {"widths": (32, 64, 128, 256), "convs_per_stage": 1, "embedding_dim": 256, "dropout": 0.3},
    "compact": {"widths": (32, 64, 160, 320), "convs_per_stage": (1, 1, 1, 2), "embedding_dim": 320, "dropout": 0.3},
    "medium": {"widths": (48, 96, 192, 384), "convs_per_stage": (1, 2, 2, 2), "embedding_dim": 384, "dropout": 0.4},
    "large": {"widths": (64, 128, 256, 512), "convs_per_stage": 2, "embedding_dim": 512, "dropout": 0.4},
}
