"""Pooling: max/average over windows, adaptive pooling to a fixed size, and global average.

Output sizes follow torch exactly, ceil_mode included (a window that would start in the right
padding is dropped). A window larger than the padded input is refused with a hint, since that is
what happens when a network pools a small image too many times.
"""

from __future__ import annotations

from typing import Annotated, Any, Mapping, Union

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
    tensor_in,
)
from .dims import pool_out_dim, primed
from .fields import Kernel, Pad, Pair, Step, compact, pair
from .registry import register

CATEGORY = "Pooling"


class _PoolParams(Params):
    kernel_size: Kernel = Field(2, description="Window size")
    stride: Step | None = Field(None, description="Step between windows; empty = kernel_size")
    padding: Pad = Field(0, description="Implicit padding at each end (at most half the window)")
    ceil_mode: bool = Field(False, description="Round the output size up instead of down")


class MaxPool1dParams(_PoolParams):
    dilation: Step = Field(1, description="Spacing between window elements")


class MaxPool2dParams(MaxPool1dParams):
    kernel_size: Union[Kernel, Pair] = Field(2, description="Window size: a number or [h, w]")
    stride: Union[Step, Pair, None] = Field(None, description="Step between windows: a number, "
                                            "[h, w], or empty = kernel_size")
    padding: Union[Pad, Pair] = Field(0, description="Implicit padding at each border (at most "
                                      "half the window)")
    dilation: Union[Step, Pair] = Field(1, description="Spacing between window elements")


class AvgPool1dParams(_PoolParams):
    count_include_pad: bool = Field(True, description="Count padding zeros in the average")


class AvgPool2dParams(AvgPool1dParams):
    kernel_size: Union[Kernel, Pair] = Field(2, description="Window size: a number or [h, w]")
    stride: Union[Step, Pair, None] = Field(None, description="Step between windows: a number, "
                                            "[h, w], or empty = kernel_size")
    padding: Union[Pad, Pair] = Field(0, description="Implicit padding at each border (at most "
                                      "half the window)")


class _Pool(NodeType):
    category = CATEGORY
    torch_name = "MaxPool2d"
    n_spatial = 2
    key_params = ("kernel_size", "stride")

    @classmethod
    def infer(cls, p: Any, ins: Mapping[str, Any]) -> dict:
        n = cls.n_spatial
        x = tensor_in(ins, rank=(n + 2,), what="[N, C, " + ("L]" if n == 1 else "H, W]"))
        if x.dtype != "float":
            raise ShapeError(f"{cls.name} needs float input, got {x.dtype}", "", "x")
        k = pair(p.kernel_size, n)
        s = k if p.stride is None else pair(p.stride, n)
        pad = pair(p.padding, n)
        d = pair(getattr(p, "dilation", 1), n)
        if 0 in k + s + d:
            raise ShapeError("kernel_size, stride and dilation must be at least 1",
                             "set them to 1 or more", None)
        for i in range(n):
            if pad[i] > k[i] // 2:
                raise ShapeError(f"padding {compact(pad)} is more than half the window "
                                 f"{compact(k)}", f"use padding of at most {k[i] // 2}", None)
        spatial: list[Dim] = []
        for i, size in enumerate(x.dims[2:]):
            window = d[i] * (k[i] - 1) + 1
            if isinstance(size, int) and size + 2 * pad[i] < window:
                raise ShapeError(
                    f"the input {x.label()} is too small for a {compact(k)} {cls.name} window: "
                    f"size {size}" + (f" (+{2 * pad[i]} padding)" if pad[i] else "")
                    + f" < {window}",
                    "pool fewer times before here, pad the input, or use a smaller kernel_size",
                    "x")
            out = pool_out_dim(size, k[i], s[i], pad[i], d[i], p.ceil_mode)
            if isinstance(size, str) and out != size:
                out = primed(size)
            spatial.append(out)
        return {"y": TensorSpec(x.dims[:2] + tuple(spatial))}

    @classmethod
    def emit(cls, p: Any, ins: Mapping[str, Any]) -> Emission:
        n = cls.n_spatial
        kw: dict[str, Any] = {"kernel_size": compact(pair(p.kernel_size, n))}
        if p.stride is not None:  # an explicit stride stays visible, even when = kernel_size
            kw["stride"] = compact(pair(p.stride, n))
        if compact(pair(p.padding, n)) != 0:
            kw["padding"] = compact(pair(p.padding, n))
        if compact(pair(getattr(p, "dilation", 1), n)) != 1:
            kw["dilation"] = compact(pair(p.dilation, n))
        if p.ceil_mode:
            kw["ceil_mode"] = True
        if not getattr(p, "count_include_pad", True):
            kw["count_include_pad"] = False
        return Emission("{self}({x})", Call.of(f"nn.{cls.torch_name}", **kw))


@register
class MaxPool1d(_Pool):
    id = "pool.max_pool1d"
    name = "MaxPool1d"
    torch_name = "MaxPool1d"
    n_spatial = 1
    description = "Largest value in each window along the length: [N, C, L] -> [N, C, L']."
    Params = MaxPool1dParams

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3, 8))}),
                Example({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
                        {"x": TensorSpec(("N", 2, 10))}),
                Example({"kernel_size": 3, "stride": 1, "padding": 1},
                        {"x": TensorSpec(("N", 2, "T"))}, "keeps T"),
                Example({"kernel_size": 2, "dilation": 2}, {"x": TensorSpec(("N", 1, 7))})]


@register
class MaxPool2d(_Pool):
    id = "pool.max_pool2d"
    name = "MaxPool2d"
    torch_name = "MaxPool2d"
    description = "Largest value in each window: [N, C, H, W] -> [N, C, H', W']; 2 halves H, W."
    Params = MaxPool2dParams

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3, 8, 8))}),
                Example({"kernel_size": 3, "stride": 2, "padding": 1},
                        {"x": TensorSpec(("N", 2, 9, 9))}, "ResNet stem"),
                Example({"kernel_size": 3, "stride": 2, "ceil_mode": True},
                        {"x": TensorSpec(("N", 2, 6, 7))}, "ceil_mode"),
                Example({"kernel_size": [1, 2], "stride": [1, 2]},
                        {"x": TensorSpec(("N", 2, "S", 6))}),
                Example({"kernel_size": 5}, {"x": TensorSpec(("N", 1, 5, 5))}, "window = input"),
                Example({"kernel_size": 2, "stride": 1, "dilation": 2},
                        {"x": TensorSpec(("N", 1, 5, 5))})]


@register
class AvgPool1d(_Pool):
    id = "pool.avg_pool1d"
    name = "AvgPool1d"
    torch_name = "AvgPool1d"
    n_spatial = 1
    description = "Average of each window along the length: [N, C, L] -> [N, C, L']."
    Params = AvgPool1dParams

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3, 9))}),
                Example({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                         "count_include_pad": False}, {"x": TensorSpec(("N", 2, 8))}),
                Example({"kernel_size": 4, "stride": 4}, {"x": TensorSpec(("N", 2, "T"))},
                        "T'")]


@register
class AvgPool2d(_Pool):
    id = "pool.avg_pool2d"
    name = "AvgPool2d"
    torch_name = "AvgPool2d"
    description = "Average of each window: [N, C, H, W] -> [N, C, H', W']."
    Params = AvgPool2dParams

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3, 8, 8))}),
                Example({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
                        {"x": TensorSpec(("N", 2, 7, 6))}),
                Example({"kernel_size": [2, 3], "stride": 1}, {"x": TensorSpec(("N", 1, 4, 5))})]


# ----------------------------------------------------------------------------------------------

OutSize = Annotated[int, Field(ge=1, le=4096)]
OutPair = Annotated[list[OutSize], Field(min_length=2, max_length=2)]


class Adaptive1dParams(Params):
    output_size: OutSize = Field(1, description="Length of the output, whatever the input")


class Adaptive2dParams(Params):
    output_size: Union[OutSize, OutPair] = Field(
        1, description="Output size: a number for a square, or [h, w]; 1 pools globally")


class _Adaptive(NodeType):
    category = CATEGORY
    torch_name = "AdaptiveAvgPool2d"
    n_spatial = 2
    key_params = ("output_size",)

    @classmethod
    def infer(cls, p: Any, ins: Mapping[str, Any]) -> dict:
        n = cls.n_spatial
        x = tensor_in(ins, rank=(n + 2,), what="[N, C, " + ("L]" if n == 1 else "H, W]"))
        if x.dtype != "float":
            raise ShapeError(f"{cls.name} needs float input, got {x.dtype}", "", "x")
        return {"y": TensorSpec(x.dims[:2] + pair(p.output_size, n))}

    @classmethod
    def emit(cls, p: Any, ins: Mapping[str, Any]) -> Emission:
        size = compact(pair(p.output_size, cls.n_spatial))
        return Emission("{self}({x})", Call.named(f"nn.{cls.torch_name}", [("output_size", size)]))


@register
class AdaptiveAvgPool1d(_Adaptive):
    id = "pool.adaptive_avg_pool1d"
    name = "AdaptiveAvgPool1d"
    torch_name = "AdaptiveAvgPool1d"
    n_spatial = 1
    description = "Averages any length down to output_size: [N, C, L] -> [N, C, output_size]."
    Params = Adaptive1dParams

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3, "T"))}),
                Example({"output_size": 4}, {"x": TensorSpec(("N", 2, 10))}),
                Example({"output_size": 6}, {"x": TensorSpec(("N", 2, 3))}, "upsamples")]


@register
class AdaptiveAvgPool2d(_Adaptive):
    id = "pool.adaptive_avg_pool2d"
    name = "AdaptiveAvgPool2d"
    torch_name = "AdaptiveAvgPool2d"
    description = ("Averages any H×W down to output_size; 1 gives the global average a "
                   "classifier head needs, whatever the image size.")
    Params = Adaptive2dParams

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3, 7, 7))}),
                Example({"output_size": [2, 3]}, {"x": TensorSpec(("N", 2, 9, "S"))}),
                Example({"output_size": 7}, {"x": TensorSpec(("N", 2, 5, 5))}, "upsamples")]


@register
class AdaptiveMaxPool2d(_Adaptive):
    id = "pool.adaptive_max_pool2d"
    name = "AdaptiveMaxPool2d"
    torch_name = "AdaptiveMaxPool2d"
    description = "Largest value in each of output_size regions, whatever the input H×W."
    Params = Adaptive2dParams

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3, 6, 6))}),
                Example({"output_size": [1, 2]}, {"x": TensorSpec(("N", 2, 5, 8))})]


class GlobalAvgPoolParams(Params):
    keepdim: bool = Field(False, description="Keep the pooled dims as size 1 ([N, C, 1, 1])")


@register
class GlobalAvgPool(NodeType):
    id = "pool.global_avg_pool"
    name = "Global Avg Pool"
    category = CATEGORY
    description = ("Mean over every spatial dim: [N, C, H, W] (or [N, C, L], [N, C, D, H, W]) -> "
                   "[N, C], ready for a Linear classifier.")
    Params = GlobalAvgPoolParams

    @classmethod
    def infer(cls, p: GlobalAvgPoolParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=(3, 4, 5), what="[N, C, ...spatial]")
        if x.dtype != "float":
            raise ShapeError(f"{cls.name} needs float input, got {x.dtype}", "", "x")
        rest = (1,) * (x.rank - 2) if p.keepdim else ()
        return {"y": TensorSpec(x.dims[:2] + rest)}

    @classmethod
    def emit(cls, p: GlobalAvgPoolParams, ins: Mapping[str, Any]) -> Emission:
        rank = ins["x"].rank
        dims = "2" if rank == 3 else "(" + ", ".join(str(i) for i in range(2, rank)) + ")"
        keep = ", keepdim=True" if p.keepdim else ""
        return Emission("{x}.mean(dim=%s%s)" % (dims, keep))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 4, 3, 3))}),
                Example({}, {"x": TensorSpec(("N", 2, "T"))}),
                Example({"keepdim": True}, {"x": TensorSpec(("N", 3, 2, 2, 2))})]
