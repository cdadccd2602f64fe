"""fastvit.layers.Attention alone (Linear qkv, SDPA, Linear proj over an NCHW map) on OpenVINO CPU, fp32 hint."""
import sys
sys.path.insert(0, "/work/dev")
import numpy as np
import openvino as ov
import torch
from fastvit.layers import Attention

torch.manual_seed(0)
core = ov.Core()
print("openvino", ov.__version__)
for dim, side in [(384, 4), (448, 4), (512, 4), (640, 4), (768, 4), (512, 5), (512, 6), (512, 8), (1024, 4)]:
    module = Attention(dim).eval()
    x = torch.randn(1, dim, side, side)
    with torch.no_grad():
        ref = module(x).numpy()
    converted = ov.convert_model(module, example_input=x, input=[tuple(x.shape)])
    row = f"dim {dim:4d} heads {dim // 32:2d} tokens {side * side:3d}:"
    for threads in (1, 2):
        out = core.compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads})(x.numpy())[0]
        row += f"  {threads} thread(s) rel {np.abs(out - ref).max() / np.abs(ref).max():.2e}"
    print(row, flush=True)
