"""Architectures for ``lowbit train``: dense widths, or convolutions, pools and dense layers.

Nothing here needs torch: the command line checks ``--arch`` before training starts."""

from __future__ import annotations

__all__ = ["parse_arch", "dataset_image"]


def dataset_image(dataset: str) -> tuple[int, int, int]:
    """``(channels, height, width)`` of one input of ``lowbit train``'s data sets: MNIST IDX
    files (``mnist-idx:DIR``) 1×28×28, scikit-learn's digits 1×8×8."""
    return (1, 28, 28) if dataset.startswith("mnist-idx:") else (1, 8, 8)


def parse_arch(tokens, image: tuple[int, int, int]) -> tuple[tuple, ...]:
    """The layers of an architecture: ``N`` or ``fN`` a dense layer of N, ``cN`` a 3×3
    convolution of N channels (stride 1, no padding), ``p`` a 2×2 max pool after the
    convolution before it. Returns ``((kind, N, map), …)``, kind ``"conv"``, ``"pool"`` or
    ``"fc"`` (N the channels or features; a pool's N its channels), ``map`` the ``(channels,
    height, width)`` after it (None after a dense layer); ValueError names the token that does
    not fit ``image`` ``(channels, height, width)``."""
    layers, (c, h, w), dense = [], image, False
    for token in tokens:
        t = str(token).strip().lower()
        if t == "p":
            if not layers or layers[-1][0] != "conv":
                raise ValueError(f"{t!r}: a pool must follow a convolution")
            if min(h, w) < 2:
                raise ValueError(f"{t!r}: the map is {h}×{w}, too small to pool")
            h, w = h // 2, w // 2
            layers.append(("pool", c, (c, h, w)))
            continue
        kind = "conv" if t.startswith("c") else "fc"
        digits = t[1:] if t[:1] in ("c", "f") else t
        if not digits.isdigit() or not 1 <= int(digits) <= 1 << 16:
            raise ValueError(f"{t!r}: expected N or fN (dense), cN (3×3 convolution) or p "
                             f"(2×2 max pool), N from 1 to 65536")
        if kind == "conv":
            if dense:
                raise ValueError(f"{t!r}: convolutions come before the dense layers")
            if min(h, w) < 3:
                raise ValueError(f"{t!r}: the map is {h}×{w}, too small for a 3×3 window")
            c, h, w = int(digits), h - 2, w - 2
        dense = dense or kind == "fc"
        layers.append((kind, int(digits), (c, h, w) if kind == "conv" else None))
    return tuple(layers)
