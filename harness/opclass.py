"""One small vocabulary for where time goes, so the same SQL compares runtimes.

Each runtime's profile rows (backends' `Session.profile()`, benchmark_model's op table) carry the
runtime's own op type plus, for convolutions, the kernel size and whether it is depthwise; they
are mapped here onto:

  conv_dw_3x3, conv_dw_7x7, conv_dw_other   depthwise convolution by kernel size
  conv_pointwise                            1x1 convolution
  conv_dense                                k x k convolution over all channels (stem, k > 1)
  linear                                    fully connected / GEMM layers (qkv, proj, classifier)
  attention_matmul                          Q K^T and attention x V
  softmax, norm, activation, elementwise, pool, reshape_transpose, other
"""
from __future__ import annotations

import re

from .protocol import OpRow

CLASSES = ("conv_dw_3x3", "conv_dw_7x7", "conv_dw_other", "conv_pointwise", "conv_dense", "linear",
           "attention_matmul", "softmax", "norm", "activation", "elementwise", "pool", "reshape_transpose",
           "other")

_PATTERNS = [  # (regex over the lower-cased op type, class); first match wins
    (r"\(glue", "elementwise"),  # a torch container's self time: residual adds, layer scales, reshapes
    (r"softmax", "softmax"),
    (r"attention|sdpa|scaled_dot_product", "attention_matmul"),
    (r"batchnorm|batch_norm|layernorm|layer_norm|normaliz|mvn", "norm"),
    (r"gelu|relu|sigmoid|swish|silu|hardswish|tanh|erf|clamp|activation", "activation"),
    (r"batch matrix multiply", "attention_matmul"),  # XNNPACK's name, which ends in "GEMM"
    (r"fullyconnected|fully connected|fully_connected|gemm|linear|addmm|innerproduct|constant weights",
     "linear"),
    (r"matmul|bmm|batch_matmul|einsum", "attention_matmul"),
    (r"add|mul|sub|div|eltwise|subgraph|multiply", "elementwise"),
    (r"pool|reducemean|reduce_mean|mean|globalaverage", "pool"),
    (r"reshape|transpose|permute|flatten|view|reorder|concat|split|squeeze|gather|slice|copy|contiguous",
     "reshape_transpose"),
]


def conv_class(kernel: int | None, depthwise: bool) -> str:
    if depthwise:
        return {3: "conv_dw_3x3", 7: "conv_dw_7x7"}.get(kernel, "conv_dw_other")
    return "conv_pointwise" if kernel == 1 else "conv_dense"


def op_class(op_type: str, kernel: int | None = None, depthwise: bool = False) -> str:
    t = op_type.lower()
    if "(glue" in t:  # a torch container's own time (ConvFFN, LargeKernelConv, ...), not its convolutions
        return "elementwise"
    # a kernel size means the runtime (or our mapping of its ops to layers) knows this is a convolution,
    # whatever its own name for it: XNNPACK runs 1x1 convolutions as "Fully Connected"
    if kernel is not None or ("conv" in t and "transpose" not in t):
        if "dwconv" in t or "groupconv" in t or "depthwise" in t:
            depthwise = True
        return conv_class(kernel, depthwise)
    for pattern, cls in _PATTERNS:
        if re.search(pattern, t):
            return cls
    return "other"


def xnnpack_class(node_type: str) -> str:
    """benchmark_model's XNNPACK rows name the kernel but not its size: 'Convolution (NHWC, F32) DWConv'."""
    t = node_type.lower()
    if "dwconv" in t:
        return "conv_dw_other"  # kernel size is not in XNNPACK's profile
    if "convolution" in t and "gemm" in t and "igemm" not in t:
        return "conv_pointwise"  # XNNPACK runs 1x1 convolutions as GEMM
    if "convolution" in t:
        return "conv_dense"
    return op_class(node_type)


def classify_rows(rows: list[dict]) -> list[OpRow]:
    """A runtime's profile rows (Session.profile()) as OpRows, each with its op class."""
    return [OpRow(op_name=r["op_name"][:255], op_type=r["op_type"], calls=r["calls"], total_ms=r["total_ms"],
                  op_class=r.get("op_class") or op_class(r["op_type"], r.get("kernel"), r.get("depthwise", False)))
            for r in rows]


# The layer name of the empty-model probe `harness layers` times first: a runtime's per-call cost.
OVERHEAD_SIGNATURE = "empty model (1x1 conv, 1 channel, 8x8): the runtime's per-call overhead"


def signature_class(signature: str) -> str:
    """The op class of a layer from its stored signature (the inverse of `signature`'s labelling)."""
    found = re.match(r"(dw|grouped )?conv(\d+)x\d+", signature)
    if found:
        return conv_class(int(found.group(2)), found.group(1) == "dw")
    if signature.startswith("linear"):
        return "linear"
    return "overhead" if signature == OVERHEAD_SIGNATURE else "attention_block"
