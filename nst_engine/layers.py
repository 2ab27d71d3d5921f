"""VGG-19's layer names, in forward order, without any torch dependency.

Kept apart from the model so settings can be validated (by the server, for instance)
without building a network."""

from __future__ import annotations

# Output channels of each block's convolutions; every block ends with a pooling layer.
BLOCKS: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256, 256),
    (512, 512, 512, 512),
    (512, 512, 512, 512),
)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, convs in enumerate(BLOCKS, start=1):
        for index in range(1, len(convs) + 1):
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
        names.append(f"pool{block}")
    return tuple(names)


#: Every addressable layer, e.g. ``conv1_1``, ``relu1_1``, ``conv1_2``, ..., ``pool5``.
LAYER_NAMES: tuple[str, ...] = _layer_names()

#: The sixteen convolutions, in order; a weights file must provide exactly these.
CONV_NAMES: tuple[str, ...] = tuple(name for name in LAYER_NAMES if name.startswith("conv"))

#: torchvision's ``features.N`` index of each convolution (its ``Sequential`` also counts
#: the ReLU and pooling modules).
TORCHVISION_INDEX: dict[str, int] = {
    name: LAYER_NAMES.index(name) for name in CONV_NAMES
}


def depth(name: str) -> int:
    """Position of ``name`` in the forward order; the network is truncated after the deepest."""
    return LAYER_NAMES.index(name)
