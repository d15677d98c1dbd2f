"""The built-in local model on this machine: start-up, time to first token and tokens/s.

Starts llama-server with SmolLM2-135M-Instruct (as `make run` does), then streams a few
answers through our OpenAI-compatible client and prints the median of each figure:
  start       process start -> /health answers
  first token request sent -> first text chunk (through our client)
  tokens/s    completion tokens / (last chunk - first chunk)

    .venv/bin/python bench/local_model.py [--runs 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multillm.settings")
os.environ.setdefault("DEBUG", "on")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="multillm-bench-"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

QUESTIONS = [
    "What is the capital of France?",
    "Explain in two sentences what a vector database is.",
    "Write a short poem about the sea.",
    "List three uses of Python.",
    "Why is the sky blue?",
]


async def measure(url: str, runs: int, max_tokens: int) -> tuple[list[float], list[float], list[int]]:
    from models_registry.local_model import MODEL_ALIAS
    from models_registry.providers.base import ChatOptions
    from models_registry.providers.openai_compat import OpenAICompatibleProvider

    provider = OpenAICompatibleProvider(base_url=url)
    first_tokens, rates, counts = [], [], []
    for run in range(runs):
        question = QUESTIONS[run % len(QUESTIONS)]
        started = time.perf_counter()
        first = last = None
        tokens = 0
        async for chunk in provider.stream_chat(
            model=MODEL_ALIAS,
            messages=[{"role": "user", "content": question}],
            options=ChatOptions(max_tokens=max_tokens),
        ):
            now = time.perf_counter()
            if chunk.text:
                first = first or now
                last = now
            if chunk.done:
                tokens = chunk.completion_tokens or 0
        assert first is not None and last is not None, "the model wrote nothing"
        first_tokens.append(first - started)
        rates.append((tokens - 1) / (last - first) if last > first else 0.0)
        counts.append(tokens)
    return first_tokens, rates, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    import django

    django.setup()
    from models_registry.local_model import LocalModelServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = LocalModelServer(port=port, context=4096)
    started = time.perf_counter()
    server.start()
    try:
        server.wait_ready()
        start_seconds = time.perf_counter() - started
        asyncio.run(measure(server.url, 1, 8))  # warm-up
        first_tokens, rates, counts = asyncio.run(measure(server.url, args.runs, args.max_tokens))
    finally:
        server.stop()
    print(f"SmolLM2-135M-Instruct (Q4_1) on llama-server, {os.cpu_count()} cores, {args.runs} runs")
    print(f"{'figure':<22}{'median':>10}{'min':>10}{'max':>10}")
    print(f"{'start (s)':<22}{start_seconds:>10.2f}{'':>10}{'':>10}")
    ms = [v * 1000 for v in first_tokens]
    print(f"{'first token (ms)':<22}{statistics.median(ms):>10.1f}{min(ms):>10.1f}{max(ms):>10.1f}")
    print(f"{'tokens/s':<22}{statistics.median(rates):>10.1f}{min(rates):>10.1f}{max(rates):>10.1f}")
    print(f"{'tokens per answer':<22}{statistics.median(counts):>10.0f}{min(counts):>10.0f}{max(counts):>10.0f}")


if __name__ == "__main__":
    main()
