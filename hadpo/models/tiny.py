"""A tiny LLaVA-1.5, built offline: a byte-level BPE tokenizer trained on the world's text, a CLIP-style
image processor, ``LlavaProcessor`` and ``LlavaForConditionalGeneration`` with LLaVA-1.5's geometry scaled
down (vision feature layer -2, CLS dropped, 2-layer GELU projector).

The folder it writes has the same files as ``llava-hf/llava-1.5-7b-hf`` and loads through the same
``from_pretrained`` calls (:mod:`hadpo.models.loading`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hadpo.config import Params, check, param

os.environ.setdefault("DS_ACCELERATOR", "cpu")

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", "<image>")

# Same shape of template as llava-hf's: the kit builds its prompts by hand (hadpo.models.prompts), this
# only keeps `processor.apply_chat_template` usable for people who call it directly.
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %} {% else %}ASSISTANT: {% for c in m['content'] %}{{ c['text'] }}{% endfor %}</s>{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

# CLIP's normalisation constants (the real processor's), so pad-to-square fills with (122, 116, 104).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class TinyLlavaConfig(Params):
    """Geometry of the tiny LLaVA (defaults: the shapes world's model, 48 px / 16 px patches = 9 tokens)."""

    image_size: int = param(48, "Input side in pixels (CLIP-L/336 in LLaVA-1.5).")
    patch_size: int = param(16, "Vision patch side; image tokens = (image_size / patch_size)^2.")
    vision_hidden: int = param(64, "Vision tower width.")
    vision_layers: int = param(3, "Vision tower depth (the last layer is unused: feature layer -2).")
    vision_heads: int = param(2, "Vision attention heads.")
    vision_ffn: int = param(128, "Vision MLP width.")
    text_hidden: int = param(128, "Language model width.")
    text_layers: int = param(4, "Language model depth.")
    text_heads: int = param(4, "Language model attention heads.")
    text_kv_heads: int = param(4, "Language model key/value heads (GQA when smaller than text_heads).")
    text_ffn: int = param(256, "Language model MLP width.")
    max_positions: int = param(512, "Maximum sequence length (positions).")
    vocab_size: int = param(512, "Target BPE vocabulary size (the trainer may stop below it).")
    seed: int = param(0, "Seed of the weight initialisation.")

    def __post_init__(self) -> None:
        check(self.image_size % self.patch_size == 0, "image_size must be a multiple of patch_size")
        check(self.text_heads % self.text_kv_heads == 0, "text_heads must be a multiple of text_kv_heads")

    @property
    def image_tokens(self) -> int:
        """Image tokens per image: patches, with CLS dropped."""
        return (self.image_size // self.patch_size) ** 2


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """Train a byte-level BPE tokenizer on ``texts`` (deterministic for the same texts).

    Returns a ``PreTrainedTokenizerFast`` with bos ``<s>`` added at the start (as LLaMA's), eos ``</s>``,
    pad ``<pad>`` and the image token ``<image>``, which is never split.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(list(texts), trainer=trainer)
    bos = tk.token_to_id("<s>")
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",
        model_max_length=4096,
    )


def build_processor(tokenizer, cfg: TinyLlavaConfig):
    """A ``LlavaProcessor`` with a CLIP-style PIL image processor sized for ``cfg``."""
    from transformers import CLIPImageProcessorPil, LlavaProcessor

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": cfg.image_size},
        crop_size={"height": cfg.image_size, "width": cfg.image_size},
        image_mean=list(CLIP_MEAN),
        image_std=list(CLIP_STD),
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=cfg.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )


def build_model(tokenizer, cfg: TinyLlavaConfig):
    """A randomly initialised ``LlavaForConditionalGeneration`` (seeded by ``cfg.seed``)."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        hidden_size=cfg.vision_hidden,
        intermediate_size=cfg.vision_ffn,
        num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.vision_heads,
        projection_dim=cfg.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.text_hidden,
        intermediate_size=cfg.text_ffn,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_heads,
        num_key_value_heads=cfg.text_kv_heads,
        max_position_embeddings=cfg.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=cfg.image_tokens,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )
    torch.manual_seed(cfg.seed)
    model = LlavaForConditionalGeneration(config)
    for key in ("pad", "eos", "bos"):
        setattr(model.generation_config, f"{key}_token_id", getattr(tokenizer, f"{key}_token_id"))
    return model


def build_tiny_llava(out_dir: str | Path, texts: Iterable[str], cfg: TinyLlavaConfig | None = None) -> Path:
    """Train the tokenizer on ``texts``, build processor and model, and ``save_pretrained`` all into ``out_dir``."""
    cfg = cfg or TinyLlavaConfig()
    out = Path(out_dir)
    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    processor = build_processor(tokenizer, cfg)
    model = build_model(tokenizer, cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
