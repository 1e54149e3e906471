"""Models written the way torchvision and nanoGPT write them, small, for the import tests.

Attribute names and structure follow the originals (torchvision's ``conv1 / bn1 / relu / maxpool /
layer1..4 / avgpool / fc`` with ``BasicBlock.downsample``, ``features / avgpool / classifier``;
nanoGPT's ``transformer.wte / wpe / drop / h / ln_f`` and ``lm_head`` tied to ``wte``), with
widths as arguments so a test builds them in milliseconds. Written by hand, without torchvision.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BasicBlock(nn.Module):
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
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet layout with BasicBlocks; ``width`` 64 and [2, 2, 2, 2] is resnet18."""

    def __init__(self, layers: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 10,
                 width: int = 8) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], 2)
        self.layer3 = self._make_layer(width * 4, layers[2], 2)
        self.layer4 = self._make_layer(width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class VGG(nn.Module):
    """torchvision's VGG layout (``features``, ``avgpool``, ``classifier``), widths scaled."""

    def __init__(self, cfg: tuple = (8, "M", 16, "M", 32, 32, "M"), num_classes: int = 10,
                 pool: int = 2, hidden: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Linear(c * pool * pool, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(), nn.Linear(hidden, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class AlexNet(nn.Module):
    """torchvision's AlexNet layout, channels divided by ``div``."""

    def __init__(self, num_classes: int = 10, div: int = 16) -> None:
        super().__init__()
        c = [64 // div, 192 // div, 384 // div, 256 // div, 256 // div]
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c[0], c[1], kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c[1], c[2], kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        hidden = 4096 // div // 4
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5), nn.Linear(c[4] * 36, hidden), nn.ReLU(inplace=True),
            nn.Dropout(p=0.5), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# -- nanoGPT ------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int = 32, n_head: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head, self.n_embd, self.dropout = n_head, n_embd, dropout

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.size()  # noqa: N806 - nanoGPT's names
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, n_embd: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, n_embd: int = 32, n_head: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """nanoGPT's GPT (without its generate/optimizer helpers), small by default."""

    def __init__(self, vocab_size: int = 50, block_size: int = 16, n_layer: int = 2,
                 n_head: int = 4, n_embd: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd), wpe=nn.Embedding(block_size, n_embd),
            drop=nn.Dropout(dropout),
            h=nn.ModuleList([Block(n_embd, n_head, dropout) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd)))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, idx: Tensor) -> Tensor:
        t = idx.size(1)
        pos = torch.arange(t, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


class DataDependent(nn.Module):
    """fx cannot trace this: the branch depends on the values of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return -x


# -- sequences: RNN states and attention masks, written as tutorials write them --------------


class LSTMClassifier(nn.Module):
    """The PyTorch tutorial classifier: the last layer's final hidden state feeds the head."""

    def __init__(self, features: int = 8, hidden: int = 16, num_classes: int = 3) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out, (h, c) = self.lstm(x)
        return self.fc(h[-1])


class LSTMLastStep(nn.Module):
    """The last step of the output sequence, ``out[:, -1]``, feeds the head."""

    def __init__(self, features: int = 8, hidden: int = 16, num_classes: int = 3) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


class GRUClassifier(nn.Module):
    """Token ids -> Embedding -> GRU; ``h_n.squeeze(0)`` (one layer) feeds the head."""

    def __init__(self, vocab: int = 30, embed: int = 8, hidden: int = 12,
                 num_classes: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, ids: Tensor) -> Tensor:
        _, h = self.gru(self.embedding(ids))
        return self.fc(h.squeeze(0))


class BiLSTM(nn.Module):
    """Two bidirectional layers; the last layer's forward and backward states side by side."""

    def __init__(self, features: int = 8, hidden: int = 10, num_classes: int = 3) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, bidirectional=True, dropout=0.1,
                            batch_first=True)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        _, (h, _) = self.lstm(x)
        h = torch.cat((h[-2, :, :], h[-1, :, :]), dim=1)
        return self.fc(self.dropout(h))


class SeqFirstLSTM(nn.Module):
    """torch's default layout, [T, N, features] (``batch_first=False``), two layers."""

    def __init__(self, features: int = 8, hidden: int = 16, num_classes: int = 3) -> None:
        super().__init__()
        self.rnn = nn.LSTM(features, hidden, num_layers=2)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        output, (h_n, c_n) = self.rnn(x)
        return self.fc(h_n[-1] + output[-1])


class SelfAttentionClassifier(nn.Module):
    """``nn.MultiheadAttention(x, x, x, need_weights=False)``, no mask, then a mean over time."""

    def __init__(self, features: int = 16, heads: int = 4, num_classes: int = 3) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(features, heads, batch_first=True)
        self.norm = nn.LayerNorm(features)
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.attn(x, x, x, need_weights=False)
        return self.fc(self.norm(x + y).mean(dim=1))


class SeqFirstAttention(nn.Module):
    """torch's default attention layout, [T, N, E] (``batch_first=False``), a causal mask from
    ``nn.Transformer.generate_square_subsequent_mask``; the first and last steps feed the head
    (the first sees only itself under the mask)."""

    def __init__(self, features: int = 16, heads: int = 2, num_classes: int = 3) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(features, heads)
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        mask = nn.Transformer.generate_square_subsequent_mask(x.size(0))
        y, _ = self.attn(x, x, x, attn_mask=mask, need_weights=False)
        return self.fc(y[0] + y[-1])


class SDPAttention(nn.Module):
    """nanoGPT's attention with ``F.scaled_dot_product_attention``; ``mask`` picks how the causal
    structure is given: "none" (bidirectional), "is_causal", "buffer" (a registered ``attn_mask``
    made with ``torch.triu``) or "tril" (nanoGPT's slow path: ``masked_fill`` of a tril buffer)."""

    def __init__(self, n_embd: int = 32, n_head: int = 4, block_size: int = 16,
                 mask: str = "none", dropout: float = 0.0) -> None:
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head, self.n_embd, self.mask, self.dropout = n_head, n_embd, mask, dropout
        if mask == "buffer":
            self.register_buffer("attn_mask", torch.triu(
                torch.full((block_size, block_size), float("-inf")), diagonal=1))
        if mask == "tril":
            self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size))
                                 .view(1, 1, block_size, block_size))

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.size()  # noqa: N806 - nanoGPT's names
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if self.mask == "tril":
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = self.attn_dropout(att) @ v
        elif self.mask == "buffer":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.attn_mask[:T, :T])
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.mask == "is_causal")
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class AttentionStack(nn.Module):
    """Pre-norm residual blocks around :class:`SDPAttention` over embedded tokens, a LM head."""

    def __init__(self, vocab: int = 40, n_embd: int = 32, n_head: int = 4, n_layer: int = 2,
                 block_size: int = 16, mask: str = "none") -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.ln = nn.ModuleList([nn.LayerNorm(n_embd) for _ in range(n_layer)])
        self.attn = nn.ModuleList([SDPAttention(n_embd, n_head, block_size, mask)
                                   for _ in range(n_layer)])
        self.head = nn.Linear(n_embd, vocab)

    def forward(self, idx: Tensor) -> Tensor:
        x = self.wte(idx)
        for ln, attn in zip(self.ln, self.attn, strict=True):
            x = x + attn(ln(x))
        return self.head(x)


class TransformerClassifier(nn.Module):
    """``nn.TransformerEncoder`` of ``nn.TransformerEncoderLayer`` over embedded tokens; the
    first position's vector (a CLS token) feeds the head. ``causal`` passes a square mask (and
    adds the encoder's final norm)."""

    def __init__(self, vocab: int = 40, d_model: int = 32, nhead: int = 4, layers: int = 2,
                 num_classes: int = 3, causal: bool = False) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=64, dropout=0.1,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers,
                                             norm=nn.LayerNorm(d_model) if causal else None,
                                             enable_nested_tensor=False)
        self.fc = nn.Linear(d_model, num_classes)
        self.causal = causal

    def forward(self, ids: Tensor) -> Tensor:
        x = self.embedding(ids)
        if self.causal:
            mask = nn.Transformer.generate_square_subsequent_mask(ids.size(1))
            x = self.encoder(x, mask=mask, is_causal=True)
        else:
            x = self.encoder(x)
        return self.fc(x[:, 0])
