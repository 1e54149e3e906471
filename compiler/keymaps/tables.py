"""The key maps of the reference templates whose names cannot equal the published ones.

Each map is plain data in the format :mod:`compiler.keymaps.convert` documents: for every tensor
of our template's state_dict, the published tensor(s) it is made from and the transform. Why the
names differ (and stay different):

* GPT-2 (``gpt2``, ``gpt-small`` <- Hugging Face ``GPT2Model`` / ``GPT2LMHeadModel``): HF keeps
  q, k, v fused in one ``Conv1D`` (``attn.c_attn``, weight ``[in, out]``); our attention is
  ``nn.MultiheadAttention`` (``in_proj_weight`` ``[3d, d]``, the same q, k, v order), so weights
  are transposed, never split. The causal mask buffers (``attn.bias``, ``attn.masked_bias``) are
  recomputed, the tied ``lm_head.weight`` is the token embedding.
* BERT (``bert-base`` <- HF ``BertModel``, also read from ``BertForPreTraining`` files): HF keeps
  separate query/key/value ``Linear`` layers; they are stacked into the packed ``in_proj``.
  ``embeddings.position_ids`` is a buffer we recompute; old files' ``gamma``/``beta`` are renamed.
* EfficientNet-B0 (``efficientnet-b0`` <- torchvision ``efficientnet_b0``): torchvision numbers
  its layers (``features.2.1.block.1.0``) where the template names them (``stage2.depthwise``);
  a block without expansion (stage 1) shifts torchvision's indices down by one.
"""

from __future__ import annotations

from typing import Any

HF_GPT2: dict[str, Any] = {
    "name": "hf-gpt2",
    "title": "Hugging Face GPT-2 (GPT2Model, GPT2LMHeadModel: gpt2, distilgpt2, ...)",
    "strip_prefixes": ["transformer."],
    "renames": [],
    "rules": [
        ("wte.weight", "wte.weight", "copy"),
        ("wpe.embedding.weight", "wpe.weight", "copy"),
        ("blocks.{n}.ln_1.{p}", "h.{n}.ln_1.{p}", "copy"),
        ("blocks.{n}.attn.in_proj_weight", "h.{n}.attn.c_attn.weight", "transpose"),
        ("blocks.{n}.attn.in_proj_bias", "h.{n}.attn.c_attn.bias", "copy"),
        ("blocks.{n}.attn.out_proj.weight", "h.{n}.attn.c_proj.weight", "transpose"),
        ("blocks.{n}.attn.out_proj.bias", "h.{n}.attn.c_proj.bias", "copy"),
        ("blocks.{n}.ln_2.{p}", "h.{n}.ln_2.{p}", "copy"),
        ("blocks.{n}.mlp_fc.weight", "h.{n}.mlp.c_fc.weight", "transpose"),
        ("blocks.{n}.mlp_fc.bias", "h.{n}.mlp.c_fc.bias", "copy"),
        ("blocks.{n}.mlp_proj.weight", "h.{n}.mlp.c_proj.weight", "transpose"),
        ("blocks.{n}.mlp_proj.bias", "h.{n}.mlp.c_proj.bias", "copy"),
        ("ln_f.{p}", "ln_f.{p}", "copy"),
    ],
    "ignore": ["h.{n}.attn.bias", "h.{n}.attn.masked_bias"],
    "tied": [("lm_head.weight", "wte.weight")],
    "optional": [],
    "requires": ["wte.weight", "wpe.embedding.weight", "ln_f.weight"],
}

_BERT_QKV = [f"encoder.layer.{{n}}.attention.self.{w}.{{p}}" for w in ("query", "key", "value")]

HF_BERT: dict[str, Any] = {
    "name": "hf-bert",
    "title": "Hugging Face BERT (BertModel; the encoder of BertForPreTraining files)",
    "strip_prefixes": ["bert."],
    "renames": [(".gamma", ".weight"), (".beta", ".bias")],
    "rules": [
        ("word_embeddings.weight", "embeddings.word_embeddings.weight", "copy"),
        ("position_embeddings.embedding.weight", "embeddings.position_embeddings.weight", "copy"),
        ("token_type_embeddings.weight", "embeddings.token_type_embeddings.weight", "copy"),
        ("embed_norm.{p}", "embeddings.LayerNorm.{p}", "copy"),
        ("encoder.{n}.attention.in_proj_{p}", _BERT_QKV, "cat"),
        ("encoder.{n}.attention.out_proj.{p}", "encoder.layer.{n}.attention.output.dense.{p}",
         "copy"),
        ("encoder.{n}.attention_norm.{p}", "encoder.layer.{n}.attention.output.LayerNorm.{p}",
         "copy"),
        ("encoder.{n}.intermediate.{p}", "encoder.layer.{n}.intermediate.dense.{p}", "copy"),
        ("encoder.{n}.output.{p}", "encoder.layer.{n}.output.dense.{p}", "copy"),
        ("encoder.{n}.output_norm.{p}", "encoder.layer.{n}.output.LayerNorm.{p}", "copy"),
        ("pooler.{p}", "pooler.dense.{p}", "copy"),
    ],
    # position_ids: a buffer of 0..511; cls.*: the pre-training heads, not part of BertModel
    "ignore": ["embeddings.position_ids", "cls.{rest*}"],
    "tied": [],
    "optional": [],
    "requires": ["token_type_embeddings.weight", "pooler.weight"],
}

#: our sub-layer -> torchvision's place in ``block``, in a block with and without the 1x1 expand
_MBCONV_EXPANDED = {"expand": "0.0", "expand_bn": "0.1", "depthwise": "1.0", "depthwise_bn": "1.1",
                    "se_reduce": "2.fc1", "se_expand": "2.fc2", "project": "3.0",
                    "project_bn": "3.1"}
_MBCONV_PLAIN = {"depthwise": "0.0", "depthwise_bn": "0.1", "se_reduce": "1.fc1",
                 "se_expand": "1.fc2", "project": "2.0", "project_bn": "2.1"}
#: our block prefix -> torchvision's: a stage's first block, the rest (repeat > 1), the rest (one)
_STAGE_PREFIXES = (("stage{i}_first.", "features.{i}.0."), ("stage{i}.{j}.", "features.{i}.{j+1}."),
                   ("stage{i}.", "features.{i}.1."))

TORCHVISION_EFFICIENTNET_B0: dict[str, Any] = {
    "name": "torchvision-efficientnet_b0",
    "title": "torchvision efficientnet_b0 (EfficientNet_B0_Weights)",
    "strip_prefixes": [],
    "renames": [],
    "rules": [
        ("stem.weight", "features.0.0.weight", "copy"),
        ("stem_bn.{p}", "features.0.1.{p}", "copy"),
        *[(f"{ours}{layer}.{{p}}", f"{theirs}block.{at}.{{p}}", "copy", f"{ours}expand.weight")
          for ours, theirs in _STAGE_PREFIXES for layer, at in _MBCONV_EXPANDED.items()],
        *[(f"{ours}{layer}.{{p}}", f"{theirs}block.{at}.{{p}}", "copy")
          for ours, theirs in _STAGE_PREFIXES for layer, at in _MBCONV_PLAIN.items()],
        ("head.weight", "features.8.0.weight", "copy"),
        ("head_bn.{p}", "features.8.1.{p}", "copy"),
        ("classifier.{p}", "classifier.1.{p}", "copy"),
    ],
    "ignore": [],
    "tied": [],
    "optional": ["{rest*}.num_batches_tracked"],
    "requires": ["stem.weight", "stage7_first.project.weight", "head.weight"],
}

ALL = (HF_GPT2, HF_BERT, TORCHVISION_EFFICIENTNET_B0)
