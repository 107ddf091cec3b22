"""Building blocks shared by the restorers: the plain-PyTorch attention references and norms."""

from swintormer.layers.attention import (
    channel_attention,
    continuous_position_bias,
    relative_coords_table,
    relative_position_index,
    shift_window_mask,
    softmax_one,
    window_attention,
    window_partition,
    window_reverse,
)
from swintormer.layers.norms import ChannelLayerNorm, GroupNorm32, RestormerLayerNorm

__all__ = [
    "ChannelLayerNorm",
    "GroupNorm32",
    "RestormerLayerNorm",
    "channel_attention",
    "continuous_position_bias",
    "relative_coords_table",
    "relative_position_index",
    "shift_window_mask",
    "softmax_one",
    "window_attention",
    "window_partition",
    "window_reverse",
]
