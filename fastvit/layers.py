"""FastViT building blocks, each in its training form and, after `reparameterize()`, its inference form.

State-dict keys follow timm's `fastvit_*` layout (conv_kxk / conv_scale / identity / reparam_conv...),
so timm checkpoints load as they are; Apple's layout is translated in `checkpoint.py`.

A reparameterizable block (a `Reparameterizable`) exposes two methods:
  fused_kernel() -> (weight, bias) of the one conv equal to all its branches in eval mode;
  reparameterize() -> replaces its branches by that conv in place (a no-op when already fused).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .fusion import Kernel, conv_from_kernel, fold_batchnorm, identity_kernel, make_conv, pad_to


class ConvBN(nn.Sequential):
    """Bias-free 'same' conv followed by BatchNorm (keys `conv.*`, `bn.*`)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(OrderedDict(
            conv=make_conv(in_chs, out_chs, kernel_size, stride=stride, groups=groups, bias=False),
            bn=nn.BatchNorm2d(out_chs),
        ))

    def fused_kernel(self) -> Kernel:
        return fold_batchnorm(self.conv.weight, self.bn)


class SqueezeExcite(nn.Module):
    """Channel gating by global average -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        reduced = channels // reduction
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class LayerScale(nn.Module):
    """Per-channel learnable scale of a residual branch (key `gamma`, shape (C, 1, 1))."""

    def __init__(self, dim: int, init_value: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim, 1, 1), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training."""

    def __init__(self, rate: float = 0.0):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class Reparameterizable(nn.Module):
    """A block with a multi-branch training form and a one-conv inference form (`reparam_conv`).

    Subclasses set `reparam_conv` (None until fused), `stride` and `groups` of that conv, name their
    training-form submodules in `branches`, and compute the branches' kernel in `branch_kernel()`.
    """
    branches: tuple[str, ...] = ()
    reparam_conv: nn.Conv2d | None

    def branch_kernel(self) -> Kernel:
        raise NotImplementedError

    def fused_kernel(self) -> Kernel:
        if self.reparam_conv is not None:
            return self.reparam_conv.weight.double(), self.reparam_conv.bias.double()
        return self.branch_kernel()

    def reparameterize(self) -> None:
        if self.reparam_conv is not None:
            return
        self.reparam_conv = conv_from_kernel(self.fused_kernel(), next(self.parameters()),
                                             stride=self.stride, groups=self.groups)
        for name in self.branches:
            setattr(self, name, None)


class MobileOneBlock(Reparameterizable):
    """MobileOne block: k x k conv-BN branches + 1 x 1 conv-BN scale branch + BN identity, summed.

    Inference form: one k x k conv with bias. SE and activation come after the sum in both forms.
    """
    branches = ("conv_kxk", "conv_scale", "identity")

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        *,
        use_se: bool = False,
        use_act: bool = True,
        use_scale_branch: bool = True,
        num_conv_branches: int = 1,
        inference_mode: bool = False,
    ):
        super().__init__()
        self.in_chs, self.out_chs = in_chs, out_chs
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups
        self.reparam_conv: nn.Conv2d | None = None
        self.conv_kxk: nn.ModuleList | None = None
        self.conv_scale: ConvBN | None = None
        self.identity: nn.BatchNorm2d | None = None
        if inference_mode:
            self.reparam_conv = make_conv(in_chs, out_chs, kernel_size, stride=stride, groups=groups)
        else:
            if num_conv_branches > 0:
                self.conv_kxk = nn.ModuleList(
                    ConvBN(in_chs, out_chs, kernel_size, stride, groups) for _ in range(num_conv_branches)
                )
            if use_scale_branch and kernel_size > 1:
                self.conv_scale = ConvBN(in_chs, out_chs, 1, stride, groups)
            if in_chs == out_chs and stride == 1:
                self.identity = nn.BatchNorm2d(in_chs)
        self.se = SqueezeExcite(out_chs) if use_se else nn.Identity()
        self.act = nn.GELU() if use_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            out = self.reparam_conv(x)
        else:
            out = self.identity(x) if self.identity is not None else 0
            if self.conv_scale is not None:
                out = out + self.conv_scale(x)
            for branch in self.conv_kxk or ():
                out = out + branch(x)
        return self.act(self.se(out))

    def branch_kernel(self) -> Kernel:
        like = next(self.parameters())
        weight = torch.zeros(self.out_chs, self.in_chs // self.groups, self.kernel_size, self.kernel_size,
                             dtype=torch.float64, device=like.device)
        bias = torch.zeros(self.out_chs, dtype=torch.float64, device=like.device)
        for branch in self.conv_kxk or ():
            w, b = branch.fused_kernel()
            weight, bias = weight + w, bias + b
        if self.conv_scale is not None:
            w, b = self.conv_scale.fused_kernel()
            weight, bias = weight + pad_to(w, self.kernel_size), bias + b
        if self.identity is not None:
            w, b = fold_batchnorm(identity_kernel(self.in_chs, self.groups, self.kernel_size, like), self.identity)
            weight, bias = weight + w, bias + b
        return weight, bias


class LargeKernelConv(Reparameterizable):
    """RepLKNet-style conv: a large k x k conv-BN plus a small 3 x 3 conv-BN, summed.

    Apple's original applied an activation here and discarded its result, so the published weights
    were trained without one; neither timm nor we apply it.
    """
    branches = ("large_conv", "small_conv")

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 7,
        stride: int = 2,
        groups: int = 1,
        small_kernel: int = 3,
        *,
        inference_mode: bool = False,
    ):
        super().__init__()
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups
        self.reparam_conv: nn.Conv2d | None = None
        self.large_conv: ConvBN | None = None
        self.small_conv: ConvBN | None = None
        if inference_mode:
            self.reparam_conv = make_conv(in_chs, out_chs, kernel_size, stride=stride, groups=groups)
        else:
            self.large_conv = ConvBN(in_chs, out_chs, kernel_size, stride, groups)
            self.small_conv = ConvBN(in_chs, out_chs, small_kernel, stride, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        return self.large_conv(x) + self.small_conv(x)

    def branch_kernel(self) -> Kernel:
        large_w, large_b = self.large_conv.fused_kernel()
        small_w, small_b = self.small_conv.fused_kernel()
        return large_w + pad_to(small_w, self.kernel_size), large_b + small_b


class RepMixer(Reparameterizable):
    """RepMixer token mixer: x + gamma * (DWConvBN-branches(x) - BN(x)), fused to one depthwise conv."""
    branches = ("norm", "mixer", "layer_scale")

    def __init__(self, dim: int, kernel_size: int = 3, layer_scale_init: float = 1e-5, *, inference_mode: bool = False):
        super().__init__()
        self.dim, self.kernel_size, self.stride, self.groups = dim, kernel_size, 1, dim
        self.reparam_conv: nn.Conv2d | None = None
        self.norm: MobileOneBlock | None = None
        self.mixer: MobileOneBlock | None = None
        self.layer_scale: LayerScale | None = None
        if inference_mode:
            self.reparam_conv = make_conv(dim, dim, kernel_size, groups=dim)
        else:
            # `norm` is a MobileOne block reduced to its BN identity branch.
            self.norm = MobileOneBlock(dim, dim, kernel_size, groups=dim, use_act=False,
                                       use_scale_branch=False, num_conv_branches=0)
            self.mixer = MobileOneBlock(dim, dim, kernel_size, groups=dim, use_act=False)
            self.layer_scale = LayerScale(dim, layer_scale_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        return x + self.layer_scale(self.mixer(x) - self.norm(x))

    def branch_kernel(self) -> Kernel:
        mixer_w, mixer_b = self.mixer.fused_kernel()
        norm_w, norm_b = self.norm.fused_kernel()
        gamma = self.layer_scale.gamma.double().reshape(-1)
        identity = identity_kernel(self.dim, self.dim, self.kernel_size, mixer_w)
        weight = identity + gamma.reshape(-1, 1, 1, 1) * (mixer_w - norm_w)
        return weight, gamma * (mixer_b - norm_b)


class RepCPE(Reparameterizable):
    """Conditional positional encoding x + DWConv7x7(x), with the skip folded into the conv."""
    branches = ("pos_enc",)

    def __init__(self, dim: int, kernel_size: int = 7, *, inference_mode: bool = False):
        super().__init__()
        self.dim, self.kernel_size, self.stride, self.groups = dim, kernel_size, 1, dim
        self.reparam_conv: nn.Conv2d | None = None
        self.pos_enc: nn.Conv2d | None = None
        if inference_mode:
            self.reparam_conv = make_conv(dim, dim, kernel_size, groups=dim)
        else:
            self.pos_enc = make_conv(dim, dim, kernel_size, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        return x + self.pos_enc(x)

    def branch_kernel(self) -> Kernel:
        weight = self.pos_enc.weight.double()
        return weight + identity_kernel(self.dim, self.dim, self.kernel_size, weight), self.pos_enc.bias.double()


class ConvFFN(nn.Module):
    """Convolutional FFN: depthwise 7x7 conv-BN, then 1x1 expand, GELU, 1x1 project."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.conv = ConvBN(dim, dim, 7, groups=dim)
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)
        for conv in (self.conv.conv, self.fc1, self.fc2):
            nn.init.trunc_normal_(conv.weight, std=0.02)
        for conv in (self.fc1, self.fc2):
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(self.conv(x)))
        return self.drop(self.fc2(self.drop(x)))


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions of an NCHW map (head size 32)."""

    def __init__(self, dim: int, head_dim: int = 32):
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"attention width {dim} is not a multiple of the head size {head_dim}")
        self.num_heads, self.head_dim = dim // head_dim, head_dim
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
        qkv = self.qkv(tokens).reshape(batch, -1, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, head_dim)
        out = self.proj(out.transpose(1, 2).reshape(batch, -1, channels))
        return out.transpose(1, 2).reshape(batch, channels, height, width)


class RepMixerBlock(nn.Module):
    """Conv stage block: RepMixer token mixing, then a layer-scaled ConvFFN residual."""

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float = 0.0, layer_scale_init: float = 1e-5,
                 *, inference_mode: bool = False):
        super().__init__()
        self.token_mixer = RepMixer(dim, layer_scale_init=layer_scale_init, inference_mode=inference_mode)
        self.mlp = ConvFFN(dim, int(dim * mlp_ratio))
        self.layer_scale = LayerScale(dim, layer_scale_init)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.token_mixer(x)
        return x + self.drop_path(self.layer_scale(self.mlp(x)))


class AttentionBlock(nn.Module):
    """Attention stage block: BN -> MHSA residual, then ConvFFN residual, both layer-scaled."""

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float = 0.0, layer_scale_init: float = 1e-5):
        super().__init__()
        self.norm = nn.BatchNorm2d(dim)
        self.token_mixer = Attention(dim)
        self.layer_scale_1 = LayerScale(dim, layer_scale_init)
        self.mlp = ConvFFN(dim, int(dim * mlp_ratio))
        self.layer_scale_2 = LayerScale(dim, layer_scale_init)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1(self.token_mixer(self.norm(x))))
        return x + self.drop_path(self.layer_scale_2(self.mlp(x)))


class PatchEmbed(nn.Module):
    """Downsampling between stages: stride-2 7x7 large-kernel conv, then a 1x1 MobileOne block."""

    def __init__(self, in_chs: int, out_chs: int, *, inference_mode: bool = False):
        super().__init__()
        self.proj = nn.Sequential(
            LargeKernelConv(in_chs, out_chs, 7, stride=2, groups=in_chs, inference_mode=inference_mode),
            MobileOneBlock(out_chs, out_chs, 1, inference_mode=inference_mode),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
