"""Reference networks written by hand from the publications' descriptions, in plain torch.

They are the yardstick for the templates' REFERENCE variants: same parameter count, same multiset of
parameter shapes, same output shape and same FLOPs. They are written independently of the node
catalogue and the code generator (no torchvision, no transformers). Where a paper leaves an
implementation detail open, the choice is the common one and says so: attention projects q, k, v
with one packed [3d, d] matrix (as ``nn.MultiheadAttention`` stores it), which changes no count.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ---------------------------------------------------------------------------------------------
# Convolutional classifiers
# ---------------------------------------------------------------------------------------------


class AlexNet(nn.Module):
    """Krizhevsky et al. 2012, in the single-tower form (64-192-384-256-256 filters)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.pool = nn.AdaptiveAvgPool2d(6)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 36, 4096), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """Simonyan & Zisserman 2014: 3×3 convolutions in five pooled stages, three dense layers."""

    def __init__(self, depth: int = 16, batch_norm: bool = False, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG_CONFIGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(c, int(v), 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(v)))
            layers.append(nn.ReLU())
            c = int(v)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 49, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.down = _shortcut(c_in, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.down(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (carrying the stride, as in "ResNet v1.5"), 1×1 expand ×4."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.down = _shortcut(c_in, out, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + self.down(x))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


RESNET_STAGES = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                 50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)),
                 152: ("bottleneck", (3, 8, 36, 3))}


class ResNet(nn.Module):
    """He et al. 2015 (ImageNet form): 7×7 stem, four stages of residual blocks, global pool."""

    def __init__(self, depth: int = 18, num_classes: int = 1000, width: int = 64) -> None:
        super().__init__()
        kind, stages = RESNET_STAGES[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers: list[nn.Module] = []
        c = width
        for i, n in enumerate(stages):
            planes = width * 2 ** i
            for j in range(n):
                layers.append(block(c, planes, 2 if (j == 0 and i > 0) else 1))
                c = planes * block.expansion
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        y = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


# ---------------------------------------------------------------------------------------------
# torchvision's module layout (its attribute names, hence its state_dict keys), written by hand
# ---------------------------------------------------------------------------------------------
# AlexNet and VGG above already use torchvision's names (``features``, ``classifier``; pooling
# holds no weights). ResNet's differ there (``stem``, ``layers``, ``down``); these follow
# torchvision.models.resnet exactly, so a published checkpoint would load into them, and so into
# the templates when the keys agree (tests/test_state_dict_names.py).


class TVBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TVBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class TVResNet(nn.Module):
    """torchvision.models.resnet.ResNet's structure: conv1, bn1, relu, maxpool, layer1..4
    (Sequentials of blocks, ``downsample`` a Sequential of 1×1 conv and BN), avgpool, fc."""

    def __init__(self, depth: int = 18, num_classes: int = 1000, width: int = 64) -> None:
        super().__init__()
        kind, stages = RESNET_STAGES[depth]
        block = TVBasicBlock if kind == "basic" else TVBottleneck
        self.inplanes = width  # torchvision's is 64; narrower ones import in seconds
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, stages[0], 1)
        self.layer2 = self._make_layer(block, width * 2, stages[1], 2)
        self.layer3 = self._make_layer(block, width * 4, stages[2], 2)
        self.layer4 = self._make_layer(block, width * 8, stages[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


#: template name -> a hand-written model with torchvision's module names (its state_dict keys)
TORCHVISION_STRUCTURED: dict[str, Any] = {
    "resnet18": lambda: TVResNet(18),
    "resnet50": lambda: TVResNet(50),
    "vgg16": lambda: VGG(16),
    "alexnet": AlexNet,
}


# (expand ratio, kernel, stride, out channels, repeats) of EfficientNet-B0 (Tan & Le 2019, table 1)
EFFICIENTNET_B0 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                   (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand, depthwise k×k, squeeze-excitation (in/4), 1×1 project."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expand
        squeeze = max(1, c_in // 4)
        self.expand = (nn.Sequential(nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid),
                                     nn.SiLU()) if expand != 1 else nn.Identity())
        self.dw = nn.Sequential(nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid,
                                          bias=False), nn.BatchNorm2d(mid), nn.SiLU())
        self.se_reduce = nn.Conv2d(mid, squeeze, 1)
        self.se_expand = nn.Conv2d(squeeze, mid, 1)
        self.project = nn.Sequential(nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.dw(self.expand(x))
        s = torch.sigmoid(self.se_expand(F.silu(self.se_reduce(F.adaptive_avg_pool2d(y, 1)))))
        y = self.project(y * s)
        return y + x if self.residual else y


class EfficientNetB0(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32),
                                  nn.SiLU())
        blocks: list[nn.Module] = []
        c = 32
        for expand, k, s, out, n in EFFICIENTNET_B0:
            for j in range(n):
                blocks.append(MBConv(c, out, expand, k, s if j == 0 else 1))
                c = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(c, 1280, 1, bias=False), nn.BatchNorm2d(1280),
                                  nn.SiLU())
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        y = self.head(self.blocks(self.stem(x)))
        return self.fc(self.dropout(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)))


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------


class Attention(nn.Module):
    """Scaled dot-product attention over ``heads`` heads (Vaswani et al. 2017, section 3.2)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.d, self.heads = d, heads
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x: Tensor, memory: Tensor | None = None, causal: bool = False) -> Tensor:
        d, h = self.d, self.heads
        w, b = self.in_proj.weight, self.in_proj.bias
        q = F.linear(x, w[:d], b[:d])
        src = x if memory is None else memory
        k, v = F.linear(src, w[d:], b[d:]).split(d, dim=-1)
        n, t, s = x.shape[0], x.shape[1], src.shape[1]
        q = q.view(n, t, h, d // h).transpose(1, 2)
        k = k.view(n, s, h, d // h).transpose(1, 2)
        v = v.view(n, s, h, d // h).transpose(1, 2)
        att = q @ k.transpose(-2, -1) / math.sqrt(d // h)
        if causal:
            mask = torch.ones(t, s, dtype=torch.bool, device=x.device).triu(1)
            att = att.masked_fill(mask, float("-inf"))
        y = att.softmax(-1) @ v
        return self.out_proj(y.transpose(1, 2).reshape(n, t, d))


class FeedForward(nn.Module):
    def __init__(self, d: int, ff: int, act: str) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)
        acts = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU()}
        self.act = acts[act]

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Self-attention and feed-forward sublayers, each residual; post-norm unless ``pre_norm``."""

    def __init__(self, d: int, heads: int, ff: int, act: str = "relu", pre_norm: bool = False,
                 causal: bool = False) -> None:
        super().__init__()
        self.attn, self.ff = Attention(d, heads), FeedForward(d, ff, act)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.pre_norm, self.causal = pre_norm, causal

    def forward(self, x: Tensor) -> Tensor:
        if self.pre_norm:
            x = x + self.attn(self.norm1(x), causal=self.causal)
            return x + self.ff(self.norm2(x))
        x = self.norm1(x + self.attn(x, causal=self.causal))
        return self.norm2(x + self.ff(x))


class DecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.self_attn, self.cross_attn = Attention(d, heads), Attention(d, heads)
        self.ff = FeedForward(d, ff, "relu")
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        x = self.norm1(x + self.self_attn(x, causal=True))
        x = self.norm2(x + self.cross_attn(x, memory))
        return self.norm3(x + self.ff(x))


def sinusoid_table(max_len: int, d: int) -> Tensor:
    pos = torch.arange(max_len).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
    table = torch.zeros(max_len, d)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)
    return table


class TransformerStack(nn.Module):
    """The encoder-decoder layers alone, with the final norms (what ``nn.Transformer`` holds)."""

    def __init__(self, d: int = 512, heads: int = 8, layers: int = 6, ff: int = 2048) -> None:
        super().__init__()
        self.encoder = nn.ModuleList(EncoderLayer(d, heads, ff) for _ in range(layers))
        self.decoder = nn.ModuleList(DecoderLayer(d, heads, ff) for _ in range(layers))
        self.enc_norm, self.dec_norm = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        for layer in self.encoder:
            src = layer(src)
        memory = self.enc_norm(src)
        for layer in self.decoder:
            tgt = layer(tgt, memory)
        return self.dec_norm(tgt)


class Seq2SeqTransformer(nn.Module):
    """Vaswani base with token embeddings (×√d), sinusoidal positions and an output projection."""

    def __init__(self, src_vocab: int, tgt_vocab: int, d: int = 512, heads: int = 8,
                 layers: int = 6, ff: int = 2048, max_len: int = 512) -> None:
        super().__init__()
        self.d = d
        self.src_embed, self.tgt_embed = nn.Embedding(src_vocab, d), nn.Embedding(tgt_vocab, d)
        self.register_buffer("pe", sinusoid_table(max_len, d), persistent=False)
        self.stack = TransformerStack(d, heads, layers, ff)
        self.out = nn.Linear(d, tgt_vocab)

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        s = self.src_embed(src) * math.sqrt(self.d) + self.pe[: src.shape[1]]
        t = self.tgt_embed(tgt) * math.sqrt(self.d) + self.pe[: tgt.shape[1]]
        return self.out(self.stack(s, t))


class BertModel(nn.Module):
    """Devlin et al. 2018, BERT-base: token + position + segment embeddings, LayerNorm, 12 post-norm
    GELU encoder layers, and the pooler (dense + tanh over the first token)."""

    def __init__(self, vocab: int = 30522, d: int = 768, layers: int = 12, heads: int = 12,
                 ff: int = 3072, max_len: int = 512, segments: int = 2) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.seg = nn.Embedding(segments, d)
        self.norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ff, "gelu") for _ in range(layers))
        self.pooler = nn.Linear(d, d)

    def forward(self, ids: Tensor, segments: Tensor) -> tuple[Tensor, Tensor]:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.tok(ids) + self.pos(pos) + self.seg(segments))
        for layer in self.layers:
            x = layer(x)
        return x, torch.tanh(self.pooler(x[:, 0]))


class GPT2(nn.Module):
    """Radford et al. 2019, GPT-2 small: pre-norm causal layers, final LayerNorm, and an LM head
    that reuses the token embedding matrix."""

    def __init__(self, vocab: int = 50257, d: int = 768, layers: int = 12, heads: int = 12,
                 max_len: int = 1024) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, 4 * d, "gelu_tanh", pre_norm=True,
                                                 causal=True) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, ids: Tensor) -> Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
        for layer in self.layers:
            x = layer(x)
        return self.head(self.ln_f(x))


#: template name -> (reference constructor, example inputs builder, expected parameter count)
def _image(size: int = 224) -> list[Tensor]:
    return [torch.zeros(1, 3, size, size)]


def _ids(t: int, *extra: int) -> list[Tensor]:
    return [torch.zeros(1, t, dtype=torch.long)] + [torch.zeros(1, e, dtype=torch.long)
                                                     for e in extra]


REFERENCES: dict[str, tuple] = {
    "alexnet": (AlexNet, _image, 61_100_840),
    "vgg11": (lambda: VGG(11), _image, 132_863_336),
    "vgg16": (lambda: VGG(16), _image, 138_357_544),
    "vgg19": (lambda: VGG(19), _image, 143_667_240),
    "vgg16-bn": (lambda: VGG(16, batch_norm=True), _image, 138_365_992),
    "resnet18": (lambda: ResNet(18), _image, 11_689_512),
    "resnet34": (lambda: ResNet(34), _image, 21_797_672),
    "resnet50": (lambda: ResNet(50), _image, 25_557_032),
    "resnet101": (lambda: ResNet(101), _image, 44_549_160),
    "resnet152": (lambda: ResNet(152), _image, 60_192_808),
    "efficientnet-b0": (EfficientNetB0, _image, 5_288_548),
    "bert-base": (BertModel, lambda: _ids(16, 16), 109_482_240),
    "gpt2": (GPT2, lambda: _ids(16), 124_439_808),
}


# ---------------------------------------------------------------------------------------------
# Published module trees (Hugging Face GPT-2 and BERT, torchvision EfficientNet), for key maps
# ---------------------------------------------------------------------------------------------
# Written from the libraries' module layouts so their state_dicts carry the published keys and
# shapes exactly (transformers and torchvision are not installed here). The buffers old
# checkpoints carry (GPT-2's attn.bias/masked_bias, BERT's position_ids) are persistent, as in
# the files on the hub, so a key map must drop them.


class HFConv1D(nn.Module):
    """transformers' ``Conv1D``: a linear layer whose weight is stored ``[in, out]``."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf).normal_(std=0.02))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight)
        return out.view(*x.shape[:-1], self.nf)


def hf_gelu_new(x: Tensor) -> Tensor:
    """GPT-2's ``gelu_new``: the tanh approximation, written out as transformers does."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class HFGPT2Attention(nn.Module):
    def __init__(self, d: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.register_buffer("bias", torch.tril(torch.ones(max_len, max_len, dtype=torch.bool))
                             .view(1, 1, max_len, max_len))
        self.register_buffer("masked_bias", torch.tensor(-1e4))
        self.d, self.heads = d, heads
        self.c_attn = HFConv1D(3 * d, d)
        self.c_proj = HFConv1D(d, d)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(n, t, self.heads, d // self.heads).permute(0, 2, 1, 3)
                   for z in (q, k, v))
        w = q @ k.transpose(-1, -2) / math.sqrt(v.size(-1))
        causal = self.bias[:, :, :t, :t]
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        y = (w.softmax(dim=-1) @ v).permute(0, 2, 1, 3).reshape(n, t, d)
        return self.c_proj(y)


class HFGPT2MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_fc = HFConv1D(4 * d, d)
        self.c_proj = HFConv1D(d, 4 * d)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(hf_gelu_new(self.c_fc(x)))


class HFGPT2Block(nn.Module):
    def __init__(self, d: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = HFGPT2Attention(d, heads, max_len)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = HFGPT2MLP(d)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class HFGPT2Model(nn.Module):
    """transformers' ``GPT2Model``: wte, wpe, h.N, ln_f."""

    def __init__(self, vocab: int, d: int, layers: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.drop = nn.Dropout(0.1)
        self.h = nn.ModuleList(HFGPT2Block(d, heads, max_len) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)

    def forward(self, ids: Tensor) -> Tensor:
        x = self.drop(self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device)))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class HFGPT2LMHeadModel(nn.Module):
    """transformers' ``GPT2LMHeadModel``: ``transformer`` and a ``lm_head`` tied to ``wte``."""

    def __init__(self, vocab: int = 50257, d: int = 768, layers: int = 12, heads: int = 12,
                 max_len: int = 1024) -> None:
        super().__init__()
        self.transformer = HFGPT2Model(vocab, d, layers, heads, max_len)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, ids: Tensor) -> Tensor:
        return self.lm_head(self.transformer(ids))


class HFBertEmbeddings(nn.Module):
    def __init__(self, vocab: int, d: int, max_len: int, segments: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, d, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_len, d)
        self.token_type_embeddings = nn.Embedding(segments, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.register_buffer("position_ids", torch.arange(max_len).expand((1, -1)))

    def forward(self, ids: Tensor, token_type_ids: Tensor) -> Tensor:
        x = self.word_embeddings(ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(self.position_ids[:, : ids.shape[1]])
        return self.dropout(self.LayerNorm(x))


class HFBertSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads, self.size = heads, d // heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.dropout = nn.Dropout(0.1)

    def _heads(self, x: Tensor) -> Tensor:
        return x.view(*x.shape[:-1], self.heads, self.size).permute(0, 2, 1, 3)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.size)
        y = self.dropout(scores.softmax(dim=-1)) @ v
        return y.permute(0, 2, 1, 3).reshape(*x.shape)


class HFBertDenseNorm(nn.Module):
    """``BertSelfOutput`` / ``BertOutput``: dense, dropout, LayerNorm of the sum with the input."""

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + x)


class HFBertAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.self = HFBertSelfAttention(d, heads)
        self.output = HFBertDenseNorm(d, d)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.self(x), x)


class HFBertIntermediate(nn.Module):
    def __init__(self, d: int, ff: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d, ff)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.dense(x))


class HFBertLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.attention = HFBertAttention(d, heads)
        self.intermediate = HFBertIntermediate(d, ff)
        self.output = HFBertDenseNorm(ff, d)

    def forward(self, x: Tensor) -> Tensor:
        h = self.attention(x)
        return self.output(self.intermediate(h), h)


class HFBertEncoder(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, layers: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(HFBertLayer(d, heads, ff) for _ in range(layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class HFBertPooler(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d, d)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.dense(x[:, 0]))


class HFBertModel(nn.Module):
    """transformers' ``BertModel``: embeddings, encoder.layer.N, pooler; returns the last hidden
    state and the pooled first token (no attention mask: every token is real)."""

    def __init__(self, vocab: int = 30522, d: int = 768, layers: int = 12, heads: int = 12,
                 ff: int = 3072, max_len: int = 512, segments: int = 2) -> None:
        super().__init__()
        self.embeddings = HFBertEmbeddings(vocab, d, max_len, segments)
        self.encoder = HFBertEncoder(d, heads, ff, layers)
        self.pooler = HFBertPooler(d)

    def forward(self, ids: Tensor, token_type_ids: Tensor) -> tuple[Tensor, Tensor]:
        x = self.encoder(self.embeddings(ids, token_type_ids))
        return x, self.pooler(x)


class TVConv2dNormActivation(nn.Sequential):
    """torchvision's ``Conv2dNormActivation``: conv (no bias), BatchNorm, optional SiLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2,
                                             groups=groups, bias=False), nn.BatchNorm2d(c_out)]
        if act:
            layers.append(nn.SiLU())
        super().__init__(*layers)


class TVSqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
        self.activation, self.scale_activation = nn.SiLU(), nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(s) * x


class TVMBConv(nn.Module):
    """torchvision's ``MBConv``: ``block`` = [expand], depthwise, SE, project; + input when the
    shape is kept (stochastic depth is the identity in eval)."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expand
        layers: list[nn.Module] = []
        if mid != c_in:
            layers.append(TVConv2dNormActivation(c_in, mid, 1))
        layers += [TVConv2dNormActivation(mid, mid, kernel, stride, groups=mid),
                   TVSqueezeExcitation(mid, max(1, c_in // 4)),
                   TVConv2dNormActivation(mid, c_out, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return y + x if self.use_res_connect else y


class TVEfficientNet(nn.Module):
    """torchvision's ``efficientnet_b0``: features.0 stem, features.1-7 stages, features.8 head,
    classifier = [Dropout, Linear]."""

    def __init__(self, stages: list[tuple[int, int, int, int, int]] = EFFICIENTNET_B0,
                 stem: int = 32, head: int = 1280, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [TVConv2dNormActivation(3, stem, 3, 2)]
        c = stem
        for expand, k, s, out, n in stages:
            blocks = []
            for j in range(n):
                blocks.append(TVMBConv(c, out, expand, k, s if j == 0 else 1))
                c = out
            layers.append(nn.Sequential(*blocks))
        layers.append(TVConv2dNormActivation(c, head, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(head, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
