"""Tokenizers built offline from a word list, saved with ``save_pretrained`` and loaded back.

The real checkpoints ship their tokenizers; the tiny models need ones that can be made without a
hub. transformers 5 changed the tokenizer constructors (slow classes are gone, and the 4.x keyword
``vocab_file=`` is silently ignored), so each builder picks the keyword the installed class takes
and the tests check token ids, not just that construction succeeded.
"""

from __future__ import annotations

import inspect
import json
import string
import tempfile
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

#: Characters every tiny English vocabulary can spell with (no unknown tokens for ASCII text).
ASCII_SYMBOLS = [c for c in string.printable if not c.isspace()]


def vocab_keyword(cls: type) -> str:
    """``vocab`` for transformers 5 tokenizer classes, ``vocab_file`` for 4.x ones."""
    return "vocab" if "vocab" in inspect.signature(cls.__init__).parameters else "vocab_file"


def _save_and_reload(tokenizer: PreTrainedTokenizerBase, folder: str | Path) -> PreTrainedTokenizerBase:
    tokenizer.save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def clip_tokenizer(words: list[str], folder: str | Path) -> PreTrainedTokenizerBase:
    """A CLIP byte-pair tokenizer whose merges spell each of ``words``; saved into ``folder``.

    Used by notebook 01 (CLIP). Any ASCII text still tokenizes, letter by letter.
    """
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    tokens = ASCII_SYMBOLS + [c + "</w>" for c in ASCII_SYMBOLS]
    merges: list[str] = []
    for word in sorted(set(words)):
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:  # merge left to right; the last symbol carries </w>
            pair, merged = f"{symbols[0]} {symbols[1]}", symbols[0] + symbols[1]
            if pair not in merges:
                merges.append(pair)
            if merged not in tokens:
                tokens.append(merged)
            symbols = [merged, *symbols[2:]]
    vocab = {token: i for i, token in enumerate(tokens + specials)}
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path, merges_path = Path(tmp, "vocab.json"), Path(tmp, "merges.txt")
        vocab_path.write_text(json.dumps(vocab))
        merges_path.write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        key = vocab_keyword(CLIPTokenizer)
        merges_key = "merges" if key == "vocab" else "merges_file"
        tokenizer = CLIPTokenizer(**{key: str(vocab_path), merges_key: str(merges_path)})
        return _save_and_reload(tokenizer, folder)


def bert_char_tokenizer(chars: str, folder: str | Path) -> PreTrainedTokenizerBase:
    """A BERT word-piece tokenizer whose vocabulary is ``chars`` one by one (plus ASCII).

    Used by notebook 05 (Chinese-CLIP): BERT's basic tokenizer already splits Chinese text into
    single characters, so a character vocabulary covers every caption.
    """
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = list(dict.fromkeys(specials + list(chars) + [c.lower() for c in ASCII_SYMBOLS]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "vocab.txt")
        path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tokenizer = BertTokenizer(**{vocab_keyword(BertTokenizer): str(path)})
        return _save_and_reload(tokenizer, folder)


def word_tokenizer(
    words: list[str], folder: str | Path, extra_special: tuple[str, ...] = ()
) -> PreTrainedTokenizerBase:
    """A whole-word tokenizer (split on spaces and punctuation) for the tiny causal LMs.

    Used by notebooks 02 (BLIP-2's OPT) and 03 (OPT). ``extra_special`` adds tokens such as
    BLIP-2's ``<image>``, which the processor of transformers 5 inserts once per query token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", *extra_special]
    vocab = {
        w: i for i, w in enumerate(dict.fromkeys(specials + sorted(set(words)) + list(string.punctuation)))
    }
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        bos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=list(extra_special) or None,
    )
    return _save_and_reload(tokenizer, folder)
