"""The causal mask of generated attention is made once per length and shared by every block
(as a hand-written model makes one per forward), while traced graphs still build it from the
sequence length, so compiled and exported models keep T a variable."""

from __future__ import annotations

import collections

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import templates
from compiler import build
from nodes.helpers import CAUSAL_MASKS, causal_mask


class _Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count[func.__name__.split(".")[0]] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.timeout(30)
def test_one_mask_per_length_and_device_reused():
    x, y = torch.zeros(2, 5, 4), torch.zeros(3, 7, 4)
    m = causal_mask(x)
    assert m is causal_mask(torch.ones(1, 5, 8)), "same T, same device: the same tensor"
    assert torch.equal(m, torch.ones(5, 5, dtype=torch.bool).triu(1))
    assert torch.equal(causal_mask(x, y), torch.ones(5, 7, dtype=torch.bool).triu(1))
    for t in range(1, 20):  # many lengths: the cache stays small
        causal_mask(torch.zeros(1, t, 2))
    assert len(CAUSAL_MASKS) <= 8


@pytest.mark.timeout(60)
def test_generated_gpt_builds_no_mask_per_block():
    net = build(templates.build("gpt-small")).module.NETWORKS["net"]()
    ids = torch.randint(0, 96, (2, 33))
    net(ids)  # the first step makes the mask
    with _Ops() as ops:
        net(ids).float().mean().backward()
    assert ops.count["ones"] == 0 and ops.count["triu"] == 0, ops.count


class _Attend(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, attn_mask=causal_mask(x), need_weights=False)[0]


@pytest.mark.timeout(120)
def test_traced_and_compiled_graphs_keep_the_length_a_variable():
    torch.manual_seed(0)
    m = _Attend().eval()
    a, b = torch.randn(2, 5, 8), torch.randn(2, 9, 8)
    want = m(b)
    traced = torch.jit.trace(m, (a,), check_trace=False)  # traced at T=5, run at T=9
    assert torch.allclose(traced(b), want, atol=1e-6)
    compiled = torch.compile(m, backend="eager", dynamic=True)
    assert torch.allclose(compiled(a), m(a), atol=1e-6)
    assert torch.allclose(compiled(b), want, atol=1e-6)
