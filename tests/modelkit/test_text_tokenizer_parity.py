"""The dict tokenizer (``TextVectorizer.encode``, used everywhere) gives the Keras layer's ids.

Real reviews (punctuation, HTML entities such as ``&#34;``, non-ASCII), empty and missing
text, texts longer than the prefix the tokenizer reads, and random unicode strings.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csv
import random
import sys

import numpy as np
import pytest

from modelkit.text import TextVectorizer, first_words, normalize_text


def _reviews(shared_data) -> list[str]:
    path = shared_data / "amazon_musical_instruments_5core" / "reviews.csv"
    with path.open(encoding="utf-8") as handle:
        return [f"{r['summary']}\n{r['review_text']}" for r in csv.DictReader(handle)]


def _random_unicode(rng: random.Random, n: int) -> list[str]:
    pools = [
        " \t\n\r\x0b\x0c\u00a0\u2003\u3000.,;:!?'\"&#-_/\\()[]<>@",
        "abcXYZ0129",
        "\u00e9\u00df\u0130\u03a3\u03c3\u03c2\u1e9e\ufb01\u0307\u0301\u2160\u00bd\u0663",
        "\u4e2d\u6587\u65e5\u672c\u0416\u0430\u05d0\u0627\U0001f3b8\U0001d400\u200b\u200d",
    ]
    out = []
    for _ in range(n):
        k = rng.randrange(0, 400)
        if rng.random() < 0.5:  # any code point but surrogates
            chars = [chr(rng.choice([rng.randrange(0x20, 0xD800), rng.randrange(0xE000, 0x110000)]))
                     for _ in range(k)]  # fmt: skip
        else:
            chars = [rng.choice(rng.choice(pools)) for _ in range(k)]
        out.append("".join(chars))
    return out


def test_encode_equals_keras_on_real_reviews(shared_data):
    reviews = _reviews(shared_data)
    assert any("&#34;" in t for t in reviews)  # the HTML entities are in the sample
    # the sample is ASCII: real reviews with accents, a non-breaking space and an emoji
    reviews += [t.replace("e", "\u00e9").replace(" a ", "\u00a0A\u0301 ") + "\U0001f3b8"
                for t in reviews[:300]]  # fmt: skip
    vec = TextVectorizer.fit(reviews[:2000], max_tokens=3000, tokens_per_text=48)
    texts: list[object] = [*reviews, "", "   ", "&#34;quoted&#34; &amp; more", None, float("nan")]
    np.testing.assert_array_equal(vec.encode(texts), vec.encode_keras(texts))
    short = TextVectorizer(vocabulary=vec.vocabulary, tokens_per_text=4)
    np.testing.assert_array_equal(short.encode(reviews[:500]), short.encode_keras(reviews[:500]))


def test_encode_equals_keras_on_random_unicode():
    rng = random.Random(17)
    texts = _random_unicode(rng, 400)
    texts += ["\u03a3\u03a3 " * 40, "A\u03a3" * 300 + " b", "x" * 5000, "a " * 2000]
    vocab = TextVectorizer.fit(texts[:200], max_tokens=600, tokens_per_text=16)
    for n in (1, 16, 200):
        vec = TextVectorizer(vocabulary=vocab.vocabulary, tokens_per_text=n)
        np.testing.assert_array_equal(vec.encode(texts), vec.encode_keras(texts))


def test_first_words_are_the_normalised_words_on_every_code_point():
    text = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000)
    spaced = " ".join(text[i : i + 7] for i in range(0, len(text), 7))
    expected = normalize_text(spaced).split(" ")
    assert first_words(spaced, 10**7) == expected
    assert first_words(spaced, 300) == expected[:300]


@pytest.mark.parametrize("text", ["", "   ", "...", "\u00a0"])
def test_text_without_words_is_all_padding(text):
    vec = TextVectorizer(vocabulary=["a"], tokens_per_text=3)
    assert vec.encode([text]).tolist() == [[0, 0, 0]] == vec.encode_keras([text]).tolist()
