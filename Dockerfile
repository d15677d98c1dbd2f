# One image for the web process (Daphne); later stages add the worker and beat commands.
# Dependencies come only from requirements/ (the prototype installed them inline).
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements/base.txt /tmp/requirements.txt
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 VAR_DIR=/app/var
RUN useradd --create-home --uid 1000 app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app . /app
RUN DEBUG=on python manage.py collectstatic --noinput -v0 && chown -R app:app /app/var
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "multillm.asgi:application"]
