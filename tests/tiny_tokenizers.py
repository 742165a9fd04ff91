"""Tokenizers for the tiny test pipelines, learned here from a few captions (no hub) and loaded into the
tokenizers-backed classes the pipelines expect: CLIPTokenizer, T5TokenizerFast, GemmaTokenizerFast."""

from __future__ import annotations

import functools
import math
import string
from collections import Counter
from typing import Any

from tokenizers import Regex, pre_tokenizers

CAPTIONS = [
    "a red circle above a small blue square on a white background",
    "a large green triangle to the left of a yellow circle",
    "two purple squares below an orange triangle on a black background",
    "a photo of a cat sitting on a wooden table",
    "a painting of a squirrel eating a burger",
    "a small white house next to a tall tree under a blue sky",
    "an astronaut riding a horse on the moon, high quality, detailed",
    "blurry, low quality, deformed, ugly, noisy, dark",
    "a bright yellow star in the middle of a grey background",
    "three tiny pink circles arranged in a row",
]


# ---------------------------------------------------------------- tokenizers (trained locally)
# The `tokenizers` trainers break ties in hash-map order, so their vocabularies change from one process to
# the next; a few lines of BPE / unigram counting give the same tokenizer (hence the same images) every run.


def _learn_bpe(words: list[tuple[str, ...]], num_merges: int) -> list[tuple[str, str]]:
    """Byte-pair merges: repeatedly fuse the most frequent adjacent pair (ties: the smallest pair)."""
    words = [list(word) for word in words]
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        counts = Counter(pair for word in words for pair in zip(word, word[1:], strict=False))
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        for word in words:
            i = 0
            while i < len(word) - 1:
                if (word[i], word[i + 1]) == best:
                    word[i : i + 2] = [word[i] + word[i + 1]]
                i += 1
    return merges


def _clip_pre_tokenizer() -> Any:
    # Words, digits and punctuation runs, then bytes mapped to printable characters (as CLIPTokenizer does).
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )


@functools.cache
def _clip_vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """A byte-level BPE with CLIP's "</w>" end-of-word marker, learned on the captions."""
    pre_tokenizer = _clip_pre_tokenizer()
    words = []
    for caption in CAPTIONS:
        for word, _ in pre_tokenizer.pre_tokenize_str(" ".join(caption.lower().split())):
            words.append((*word[:-1], word[-1] + "</w>"))
    merges = _learn_bpe(words, num_merges=200)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(c + "</w>" for c in alphabet)]
    tokens += [a + b for a, b in merges]
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}, tuple(merges)


def clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocab_and_merges()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=77)


@functools.cache
def _t5_vocab() -> tuple[tuple[str, float], ...]:
    """A unigram vocabulary (pad=0, eos=1, unk=2 as T5 has them): "▁"-words and characters, log-frequency."""
    counts: Counter[str] = Counter()
    for caption in CAPTIONS:
        for word in caption.split():
            counts["\u2581" + word] += 1
            counts.update(word)
    counts.update("\u2581" + string.ascii_letters + string.digits + string.punctuation)  # rare-character fallback
    total = sum(counts.values())
    pieces = sorted(counts, key=lambda piece: (-counts[piece], piece))
    scored = [(piece, math.log(counts[piece] / total)) for piece in pieces]
    return (("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *scored)


def t5_tokenizer() -> Any:
    from transformers import T5TokenizerFast

    return T5TokenizerFast(vocab=list(_t5_vocab()), extra_ids=0, model_max_length=512)


@functools.cache
def _gemma_vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """A BPE over "\u2581"-joined captions with byte fallback, the scheme of GemmaTokenizer."""
    texts = [tuple(caption.replace(" ", "\u2581")) for caption in CAPTIONS]
    merges = _learn_bpe(texts, num_merges=200)
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *(f"<0x{b:02X}>" for b in range(256))]
    tokens += sorted({c for text in texts for c in text}) + [a + b for a, b in merges]
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}, tuple(merges)


def gemma_tokenizer() -> Any:
    from transformers import GemmaTokenizerFast

    vocab, merges = _gemma_vocab_and_merges()
    return GemmaTokenizerFast(vocab=dict(vocab), merges=list(merges), model_max_length=2048)
