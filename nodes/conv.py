"""Convolutions: Conv1d, Conv2d, ConvTranspose2d. in_channels is read from dim 1 of the input.

Sizes (kernel_size, stride, padding, dilation) take one number for every spatial dim; the 2-D
layers also take [h, w]. Emission writes only what differs from torch's defaults, so the code
reads like hand-written PyTorch: ``nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)``.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Union

from pydantic import Field

from .base import (
    Call,
    Dim,
    Emission,
    Example,
    NodeType,
    Params,
    ShapeError,
    TensorSpec,
    concrete_dim,
    tensor_in,
)
from .dims import conv_out_dim, conv_transpose_out_dim, primed, product
from .fields import Kernel, Pad, Pair, Step, compact, pair
from .registry import register

CATEGORY = "Convolution"

def spatial_label(x: TensorSpec) -> str:
    return "×".join(str(d) for d in x.dims[2:])


def too_small(x: TensorSpec, what: str, port: str = "x") -> ShapeError:
    return ShapeError(
        f"the input {x.label()} is too small for this {what}: it leaves no output positions",
        "use padding or a smaller kernel_size, or downsample (stride/pooling) less before here",
        port)


def check_channels(name: str, c_in: int, c_out: int, groups: int) -> None:
    if c_in % groups:
        divisors = [d for d in range(1, c_in + 1) if c_in % d == 0]
        raise ShapeError(
            f"{name} with groups={groups} needs in_channels divisible by {groups}, but the input "
            f"has {c_in} channels",
            f"set groups to a divisor of {c_in} ({', '.join(map(str, divisors[-6:]))}); "
            f"groups={c_in} makes it depthwise", "x")
    if c_out % groups:
        raise ShapeError(f"{name} with groups={groups} needs out_channels divisible by {groups}, "
                         f"but out_channels is {c_out}",
                         f"set out_channels to a multiple of {groups}", None)


class ConvParams(Params):
    out_channels: int = Field(64, ge=1, le=100_000, description="Number of output channels "
                              "(filters)")
    kernel_size: Kernel = Field(3, description="Width of the filter window")
    stride: Step = Field(1, description="Step between windows; 2 halves the length")
    padding: Union[Pad, Literal["same", "valid"]] = Field(
        0, description="Zeros (or padding_mode values) added at each end; 'same' keeps the "
        "length (stride 1 only), 'valid' adds none")
    dilation: Step = Field(1, description="Spacing between filter taps (atrous convolution)")
    groups: int = Field(1, ge=1, le=100_000, description="Split channels into groups; "
                        "groups = in_channels makes a depthwise convolution")
    bias: bool = Field(True, description="Learn an additive bias (off before a BatchNorm)")
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = Field(
        "zeros", description="What the padding is filled with")


class Conv2dParams(ConvParams):
    kernel_size: Union[Kernel, Pair] = Field(3, description="Filter size: one number for a "
                                             "square filter, or [h, w]")
    stride: Union[Step, Pair] = Field(1, description="Step between windows: one number or "
                                      "[h, w]; 2 halves the size")
    padding: Union[Pad, Pair, Literal["same", "valid"]] = Field(
        0, description="Padding at each border: a number, [h, w], 'same' (keeps the size; "
        "stride 1 only) or 'valid' (none)")
    dilation: Union[Step, Pair] = Field(1, description="Spacing between filter taps: one "
                                        "number or [h, w]")


class _Conv(NodeType):
    category = CATEGORY
    torch_name = "Conv2d"
    n_spatial = 2
    key_params = ("out_channels", "kernel_size", "stride")

    @classmethod
    def _sizes(cls, p: ConvParams) -> dict[str, tuple[int, ...]]:
        n = cls.n_spatial
        out = {k: pair(getattr(p, k), n) for k in ("kernel_size", "stride", "dilation")}
        for k in ("kernel_size", "stride", "dilation"):
            if 0 in out[k]:
                raise ShapeError(f"{k} must be at least 1, got {getattr(p, k)}", f"set {k} >= 1")
        return out

    @classmethod
    def infer(cls, p: ConvParams, ins: Mapping[str, Any]) -> dict:
        n = cls.n_spatial
        x = tensor_in(ins, rank=(n + 2,), what=f"[N, C, {', '.join('HW'[-n:] if n > 1 else 'L')}]")
        if x.dtype != "float":
            raise ShapeError(f"{cls.name} needs float input, got {x.dtype} {x.label()}",
                             "convert ids with an Embedding first", "x")
        c_in = concrete_dim(x, 1, "in_channels")
        check_channels(cls.name, c_in, p.out_channels, p.groups)
        s = cls._sizes(p)
        spatial: list[Dim] = []
        if p.padding == "same":
            if any(v != 1 for v in s["stride"]):
                raise ShapeError(f"padding='same' only works with stride 1, not stride "
                                 f"{p.stride}", "use stride 1, or a number for padding "
                                 "(kernel_size // 2 keeps size / stride)", None)
            spatial = list(x.dims[2:])
        else:
            pads = (0,) * n if p.padding == "valid" else pair(p.padding, n)
            if p.padding_mode != "zeros":
                cls._check_mode_padding(x, pads, p.padding_mode)
            for i, size in enumerate(x.dims[2:]):
                out = conv_out_dim(size, s["kernel_size"][i], s["stride"][i], pads[i],
                                   s["dilation"][i])
                if isinstance(out, int) and out < 1:
                    raise too_small(x, f"{cls.name} (kernel {compact(s['kernel_size'])}, "
                                    f"dilation {compact(s['dilation'])})")
                spatial.append(out)
        return {"y": TensorSpec(x.dims[:1] + (p.out_channels,) + tuple(spatial))}

    @staticmethod
    def _check_mode_padding(x: TensorSpec, pads: tuple[int, ...], mode: str) -> None:
        if mode not in ("reflect", "circular"):
            return
        for i, size in enumerate(x.dims[2:]):
            limit_ok = isinstance(size, int) and (pads[i] < size if mode == "reflect"
                                                  else pads[i] <= size)
            if pads[i] and not limit_ok:
                raise ShapeError(f"padding_mode='{mode}' needs padding {pads[i]} smaller than "
                                 f"the input size {size} of {x.label()}",
                                 "use padding_mode='zeros' or 'replicate', or less padding", "x")

    @classmethod
    def ctor_kwargs(cls, p: ConvParams) -> dict[str, Any]:
        n = cls.n_spatial
        kw: dict[str, Any] = {"kernel_size": compact(pair(p.kernel_size, n))}
        stride = compact(pair(p.stride, n))
        if stride != 1:
            kw["stride"] = stride
        if isinstance(p.padding, str):
            if p.padding == "same":
                kw["padding"] = "same"
        elif compact(pair(p.padding, n)) != 0:
            kw["padding"] = compact(pair(p.padding, n))
        dilation = compact(pair(p.dilation, n))
        if dilation != 1:
            kw["dilation"] = dilation
        if p.groups != 1:
            kw["groups"] = p.groups
        if not p.bias:
            kw["bias"] = False
        if p.padding_mode != "zeros":
            kw["padding_mode"] = p.padding_mode
        return kw

    @classmethod
    def emit(cls, p: ConvParams, ins: Mapping[str, Any]) -> Emission:
        c_in = ins["x"].dims[1]
        init = Call.named(f"nn.{cls.torch_name}",
                          [("in_channels", c_in), ("out_channels", p.out_channels)],
                          **cls.ctor_kwargs(p))
        return Emission("{self}({x})", init)


@register
class Conv1d(_Conv):
    id = "conv.conv1d"
    name = "Conv1d"
    torch_name = "Conv1d"
    n_spatial = 1
    description = ("Slides learned filters along one dim: [N, C, L] -> [N, out_channels, L']. "
                   "For sequences, Permute [N, T, C] to [N, C, T] first.")
    Params = ConvParams

    @classmethod
    def examples(cls) -> list[Example]:
        x = TensorSpec(("N", 4, 16))
        return [
            Example({"out_channels": 8, "kernel_size": 3}, {"x": x}),
            Example({"out_channels": 6, "kernel_size": 5, "stride": 2, "padding": 2,
                     "bias": False}, {"x": x}),
            Example({"out_channels": 4, "kernel_size": 3, "padding": "same", "dilation": 2},
                    {"x": TensorSpec(("N", 4, "T"))}, "symbolic length kept by 'same'"),
            Example({"out_channels": 8, "kernel_size": 3, "groups": 4, "padding": 1,
                     "padding_mode": "reflect"}, {"x": x}, "depthwise-style, reflect"),
            Example({"out_channels": 2, "kernel_size": 4, "padding": "valid"},
                    {"x": TensorSpec(("N", 3, 4))}, "kernel as large as the input"),
            Example({"out_channels": 3, "kernel_size": 3, "stride": 2},
                    {"x": TensorSpec(("N", 2, "T"))}, "strided over T: T'"),
        ]


@register
class Conv2d(_Conv):
    id = "conv.conv2d"
    name = "Conv2d"
    torch_name = "Conv2d"
    description = ("Slides learned filters over an image: [N, C, H, W] -> [N, out_channels, H', "
                   "W']. The workhorse of CNNs; in_channels comes from the input.")
    Params = Conv2dParams

    @classmethod
    def examples(cls) -> list[Example]:
        x = TensorSpec(("N", 3, 9, 9))
        return [
            Example({"out_channels": 8, "kernel_size": 3, "padding": 1, "bias": False}, {"x": x}),
            Example({"out_channels": 4, "kernel_size": 3, "stride": 2}, {"x": x}),
            Example({"out_channels": 6, "kernel_size": 3, "padding": "same", "dilation": 2},
                    {"x": x}),
            Example({"out_channels": 4, "kernel_size": 3, "groups": 4, "padding": 1},
                    {"x": TensorSpec(("N", 4, 6, 6))}, "depthwise"),
            Example({"out_channels": 2, "kernel_size": [1, 3], "stride": [1, 2],
                     "padding": [0, 1]}, {"x": TensorSpec(("N", 2, 5, 8))}, "[h, w] sizes"),
            Example({"out_channels": 2, "kernel_size": 1}, {"x": TensorSpec(("N", 3, "S", 7))},
                    "1×1 over a symbolic height"),
            Example({"out_channels": 3, "kernel_size": 3, "padding": 1,
                     "padding_mode": "circular"}, {"x": TensorSpec(("N", 2, 4, 4))}),
            Example({"out_channels": 2, "kernel_size": 5, "padding": "valid"},
                    {"x": TensorSpec(("N", 1, 5, 5))}, "kernel as large as the input"),
        ]


class ConvTransposeParams(Params):
    out_channels: int = Field(64, ge=1, le=100_000, description="Number of output channels")
    kernel_size: Union[Kernel, Pair] = Field(4, description="Filter size: one number or [h, w]")
    stride: Union[Step, Pair] = Field(2, description="Upsampling factor: 2 doubles the size")
    padding: Union[Pad, Pair] = Field(1, description="Removed from each border of the output")
    output_padding: Union[Pad, Pair] = Field(
        0, description="Added to one side of the output to pick between the sizes a stride can "
        "give; must be smaller than stride or dilation")
    dilation: Union[Step, Pair] = Field(1, description="Spacing between filter taps")
    groups: int = Field(1, ge=1, le=100_000, description="Split channels into groups")
    bias: bool = Field(True, description="Learn an additive bias")


@register
class ConvTranspose2d(NodeType):
    id = "conv.conv_transpose2d"
    name = "ConvTranspose2d"
    category = CATEGORY
    description = ("Learned upsampling (the gradient of a Conv2d): kernel 4, stride 2, padding "
                   "1 doubles H and W. Used in decoders and GAN generators.")
    Params = ConvTransposeParams
    key_params = ("out_channels", "kernel_size", "stride")

    @classmethod
    def infer(cls, p: ConvTransposeParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=(4,), what="[N, C, H, W]")
        if x.dtype != "float":
            raise ShapeError(f"{cls.name} needs float input, got {x.dtype}", "", "x")
        c_in = concrete_dim(x, 1, "in_channels")
        check_channels(cls.name, c_in, p.out_channels, p.groups)
        k, s, pad, op, d = (pair(getattr(p, f), 2) for f in
                            ("kernel_size", "stride", "padding", "output_padding", "dilation"))
        if 0 in k + s + d:
            raise ShapeError("kernel_size, stride and dilation must be at least 1", "", None)
        for i in range(2):
            if op[i] >= max(s[i], d[i]):
                raise ShapeError(f"output_padding {compact(op)} must be smaller than stride "
                                 f"{compact(s)} or dilation {compact(d)}",
                                 f"set output_padding below {max(s[i], d[i])}", None)
        spatial = []
        for i, size in enumerate(x.dims[2:]):
            extra = d[i] * (k[i] - 1) + op[i] + 1 - 2 * pad[i] - s[i]
            if isinstance(size, str):  # size * stride + extra: a product when extra is 0
                out: Dim = product([size, s[i]]) if extra == 0 else primed(size)
            else:
                out = conv_transpose_out_dim(size, k[i], s[i], pad[i], op[i], d[i])
            if isinstance(out, int) and out < 1:
                raise ShapeError(f"padding {compact(pad)} removes the whole output of "
                                 f"{x.label()}", "use less padding", None)
            spatial.append(out)
        return {"y": TensorSpec(x.dims[:1] + (p.out_channels,) + tuple(spatial))}

    @classmethod
    def emit(cls, p: ConvTransposeParams, ins: Mapping[str, Any]) -> Emission:
        kw: dict[str, Any] = {"kernel_size": compact(pair(p.kernel_size, 2))}
        for name, default in (("stride", 1), ("padding", 0), ("output_padding", 0)):
            value = compact(pair(getattr(p, name), 2))
            if value != default:
                kw[name] = value
        if p.groups != 1:
            kw["groups"] = p.groups
        if not p.bias:
            kw["bias"] = False
        dilation = compact(pair(p.dilation, 2))
        if dilation != 1:
            kw["dilation"] = dilation
        init = Call.named("nn.ConvTranspose2d", [("in_channels", ins["x"].dims[1]),
                                                 ("out_channels", p.out_channels)], **kw)
        return Emission("{self}({x})", init)

    @classmethod
    def examples(cls) -> list[Example]:
        return [
            Example({"out_channels": 4}, {"x": TensorSpec(("N", 8, 4, 4))}, "doubles H, W"),
            Example({"out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1,
                     "output_padding": 1, "bias": False}, {"x": TensorSpec(("N", 2, 5, 5))}),
            Example({"out_channels": 2, "kernel_size": 3, "stride": 1, "padding": 0},
                    {"x": TensorSpec(("N", 2, 1, 1))}, "from a 1×1 seed"),
            Example({"out_channels": 4, "kernel_size": [2, 3], "stride": [2, 1], "padding": 0,
                     "groups": 2, "dilation": 2}, {"x": TensorSpec(("N", 2, 3, 3))}),
            Example({"out_channels": 2}, {"x": TensorSpec(("N", 3, "S", 4))}, "symbolic H"),
        ]
