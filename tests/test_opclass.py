"""Each runtime's op types map onto one op-class vocabulary."""
from __future__ import annotations

import pytest

from harness.opclass import op_class, xnnpack_class


@pytest.mark.parametrize("op_type, kernel, depthwise, expected", [
    ("GroupConvolution", 7, True, "conv_dw_7x7"), ("Conv2d", 3, True, "conv_dw_3x3"),
    ("Conv", 5, True, "conv_dw_other"), ("FusedConv", 1, False, "conv_pointwise"),
    ("Convolution", 3, False, "conv_dense"), ("FullyConnected", None, False, "linear"),
    ("Linear", None, False, "linear"), ("MatMul", None, False, "attention_matmul"),
    ("MatMul (constant weights)", None, False, "linear"), ("FusedMatMul (constant weights)", None, False, "linear"),
    ("Attention (SDPA and reshapes)", None, False, "attention_matmul"), ("Softmax", None, False, "softmax"),
    ("BatchNormalization", None, False, "norm"), ("Gelu", None, False, "activation"),
    ("Sigmoid", None, False, "activation"), ("Add", None, False, "elementwise"),
    ("Subgraph", None, False, "elementwise"), ("ReduceMean", None, False, "pool"),
    ("Transpose", None, False, "reshape_transpose"), ("Reorder", None, False, "reshape_transpose"),
    ("Dropout", None, False, "other"), ("AttentionBlock (glue: adds, scales, reshapes)", None, False, "elementwise"),
    ("ConvFFN (glue: adds, scales, reshapes)", None, False, "elementwise"),  # was conv_dense: "Conv" in its name
    ("Fully Connected (NC, F32) GEMM", 1, False, "conv_pointwise"),  # XNNPACK's 1x1 convolution, mapped
    ("Batch Matrix Multiply (NC, F32) GEMM", None, False, "attention_matmul"),
])
def test_op_classes(op_type, kernel, depthwise, expected):
    assert op_class(op_type, kernel, depthwise) == expected


def test_xnnpack_classes():
    assert xnnpack_class("Convolution (NHWC, F32) DWConv") == "conv_dw_other"
    assert xnnpack_class("Convolution (NHWC, F32) GEMM") == "conv_pointwise"
    assert xnnpack_class("Convolution (NHWC, F32) IGEMM") == "conv_dense"
    assert xnnpack_class("Fully Connected (NC, F32) GEMM") == "linear"


def test_torch_module_labels_meet_the_vocabulary():
    """The torch backend's profile labels and the FLOP counter share one labelling of modules."""
    from torch import nn

    from backends.torch_session import module_kind
    from fastvit.layers import Attention, AttentionBlock

    assert op_class(**module_kind(nn.Conv2d(8, 8, 7, groups=8))) == "conv_dw_7x7"
    assert op_class(**module_kind(nn.Conv2d(8, 16, 1))) == "conv_pointwise"
    assert op_class(**module_kind(nn.Conv2d(3, 16, 3))) == "conv_dense"
    assert op_class(**module_kind(nn.Linear(8, 8))) == "linear"
    assert op_class(**module_kind(Attention(64))) == "attention_matmul"
    assert op_class(**module_kind(AttentionBlock(64, 3.0))) == "elementwise"  # a block's own time is glue
    assert op_class(**module_kind(nn.GELU())) == "activation"
