"""The facts every stage shares (model, export, runtime), torch-free: the one place they are spelt.

- ``SIZE_MULTIPLE``: the network takes heights and widths that are multiples of 8 (three 2x
  poolings down to its 1/8-scale bottleneck).
- ``CHANNEL_ORDERS``: the colour orders a checkpoint's weights may expect (files are BGR).
"""

SIZE_MULTIPLE = 8
CHANNEL_ORDERS = ("BGR", "RGB")
