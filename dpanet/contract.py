"""The facts every stage shares (model, export, runtime), torch-free: the one place they are spelt.

- ``SIZE_MULTIPLE``: the network takes heights and widths that are multiples of 8 (three 2x
  poolings down to its 1/8-scale bottleneck).
- ``CHANNEL_ORDERS``: the colour orders a checkpoint's weights may expect (files are BGR).
- The plugin flavour's custom nodes (docs/ops.md): ``PLUGINS`` (their op_types, which are the
  TensorRT plugin creator names), ``PLUGIN_NAMESPACE`` and ``PLUGIN_VERSION`` (how TensorRT's ONNX
  parser looks the creators up), ``PLUGIN_DOMAIN`` (the ONNX domain the nodes live in).
"""

SIZE_MULTIPLE = 8
CHANNEL_ORDERS = ("BGR", "RGB")

CORRELATION = "DPANetCorrelation"
DEFORM_CONV = "DPANetModulatedDeformConv2d"
PLUGINS = (CORRELATION, DEFORM_CONV)
PLUGIN_NAMESPACE = "dpanet"
PLUGIN_VERSION = "1"
PLUGIN_DOMAIN = "ai.onnx.contrib"
