"""Settings for Multi-LLM Chat: one file, every value from the environment.

Precedence: the process environment, then `.env.secret`, then `.env` (both optional, in
the project root, or in ENV_FILE_DIR). Unset values fall back to the embedded defaults: SQLite under `var/`,
an in-memory channel layer and in-process tasks. A value that cannot be parsed stops
start-up with `ImproperlyConfigured` naming the variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
ENV_FILE_DIR = Path(os.environ.get("ENV_FILE_DIR", BASE_DIR))

# read_env never overwrites a variable that is already set, so reading the secret file
# first gives: process environment > .env.secret > .env.
for _env_file in (ENV_FILE_DIR / ".env.secret", ENV_FILE_DIR / ".env"):
    if _env_file.exists():
        environ.Env.read_env(_env_file, overwrite=False)

env = environ.Env()


def _typed(name: str, cast: str, default: Any) -> Any:
    """Read `name` with django-environ's `cast`; a bad value names the variable."""
    try:
        return getattr(env, cast)(name, default=default)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name} has an invalid value: {exc}") from exc


def _positive(name: str, cast: str, default: float) -> Any:
    value = _typed(name, cast, default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be greater than 0, got {value!r}")
    return value


def _url(name: str, default: str) -> str:
    value = str(env.str(name, default=default)).rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"{name} must start with http:// or https://, got {value!r}")
    return value


def _urls(name: str, default: str) -> list[str]:
    """A comma-separated list of http(s) URLs, each checked like `_url`."""
    urls = [url.strip().rstrip("/") for url in str(env.str(name, default=default)).split(",") if url.strip()]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ImproperlyConfigured(f"{name} must list URLs starting with http:// or https://, got {url!r}")
    return urls


DEBUG: bool = _typed("DEBUG", "bool", False)

SECRET_KEY: str = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=on for local development).")
    # Only with DEBUG on (a development machine): start-up refuses it otherwise, above.
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"  # noqa: S105  # nosec B105

ALLOWED_HOSTS: list[str] = _typed("ALLOWED_HOSTS", "list", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS: list[str] = _typed("CSRF_TRUSTED_ORIGINS", "list", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "multillm",
    "models_registry",
    "chat",
    "ingestion",
]


class _Middleware(list[str]):
    """Most of our middleware subclasses Django's, to run without thread hops under ASGI
    (multillm/middleware.py). Django's deploy checks look for its classes by path (`"...
    CsrfViewMiddleware" in MIDDLEWARE`) and skip the HSTS, SSL-redirect and cookie checks when
    they miss: this list answers for our subclass too, so `check --deploy` still sees them."""

    SUBCLASSES = {
        f"{package}.{name}": f"multillm.middleware.{name}"
        for package, name in (
            ("django.middleware.security", "SecurityMiddleware"),
            ("django.middleware.common", "CommonMiddleware"),
            ("django.middleware.csrf", "CsrfViewMiddleware"),
            ("django.middleware.clickjacking", "XFrameOptionsMiddleware"),
            ("django.contrib.sessions.middleware", "SessionMiddleware"),
            ("django.contrib.auth.middleware", "AuthenticationMiddleware"),
            ("django.contrib.auth.middleware", "LoginRequiredMiddleware"),
            ("django.contrib.messages.middleware", "MessageMiddleware"),
        )
    }

    def __contains__(self, path: object) -> bool:
        return super().__contains__(path) or super().__contains__(self.SUBCLASSES.get(str(path)))


MIDDLEWARE = _Middleware(
    [
        # Health probes and /metrics first: orchestrators call them by IP over plain HTTP.
        "multillm.health.ProbeMiddleware",
        "multillm.middleware.SecurityMiddleware",
        "multillm.security.ContentSecurityPolicyMiddleware",
        "multillm.middleware.StaticFilesMiddleware",
        "multillm.observability.RequestLogMiddleware",
        "multillm.middleware.SessionMiddleware",
        "multillm.middleware.CommonMiddleware",
        "multillm.middleware.CsrfViewMiddleware",
        "multillm.middleware.AuthenticationMiddleware",
        "multillm.middleware.LoginRequiredMiddleware",
        "multillm.middleware.MessageMiddleware",
        "multillm.middleware.XFrameOptionsMiddleware",
    ]
)

ROOT_URLCONF = "multillm.urls"
ASGI_APPLICATION = "multillm.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, else a SQLite file under var/.
try:
    DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
except (ValueError, KeyError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL has an invalid value: {exc}") from exc
# Long-lived ASGI workers must not keep a connection that the server has since closed.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["CONN_MAX_AGE"] = _typed("CONN_MAX_AGE", "int", 0)
# Postgres connections come from a pool (psycopg_pool), borrowed for each ORM call and handed
# back after it. Under Daphne every HTTP request runs its ORM calls in a thread of its own, so
# CONN_MAX_AGE cannot keep connections there: without a pool each call opened a connection
# (a few ms, and one per open stream at once). Off with DATABASE_POOL_MAX_SIZE=0.
DATABASE_POOL_MAX_SIZE: int = _typed("DATABASE_POOL_MAX_SIZE", "int", 20)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_MAX_SIZE > 0:
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("CONN_MAX_AGE must be 0 with the connection pool (or set DATABASE_POOL_MAX_SIZE=0)")
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE,
        # A request that finds every connection busy waits this long, then fails.
        "timeout": 30,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One writer at a time: wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: channel layer and Celery broker; without it, an in-memory layer and eager tasks.
REDIS_URL: str = env.str("REDIS_URL", default="")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}")
CHANNEL_LAYER_PREFIX: str = env.str("CHANNEL_LAYER_PREFIX", default="multillm")
if REDIS_URL:
    # Redis pub/sub: a group_send is one PUBLISH, and each process reads everything sent to its
    # channels and groups from one subscribed connection as Redis pushes it. The list-based
    # RedisChannelLayer costs 4 round trips per group_send and 4 per message received, one
    # message at a time per process: at 200 streaming answers it fell seconds behind and
    # dropped deltas once its 1000 queued messages filled up. Nothing here needs what pub/sub
    # lacks (messages kept for a process that is not listening): a socket that reconnects
    # resyncs its answers from the generation and the database.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "multillm.channel_layer.RedisPubSubChannelLayer",
            # Pub/sub channels are shared by every database of a Redis server: the prefix keeps
            # apps (and test runs) that share one apart. Publishes share a pool of connections.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "max_connections": 50, "timeout": 10}],
                "prefix": f"{CHANNEL_LAYER_PREFIX}:",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task whose worker died is handed out again after this many seconds (Redis broker).
CELERY_VISIBILITY_TIMEOUT: int = _positive("CELERY_VISIBILITY_TIMEOUT", "int", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # A worker killed while restoring unacknowledged tasks must not block the others for long.
    "unacked_mutex_expire": min(300, CELERY_VISIBILITY_TIMEOUT),
    # Look for the tasks of dead workers every few seconds (kombu's default, 10 s times a
    # throttle of 10, hands them out 100 s after their visibility timeout at the earliest).
    "unacked_restore_interval": min(10, max(1, CELERY_VISIBILITY_TIMEOUT // 2)),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_DEFAULT_QUEUE: str = env.str("CELERY_QUEUE", default="multillm")

# Model providers (names kept from the prototype).
# Several comma-separated URLs are several hosts serving the same models (one provider).
OLLAMA_BASE_URL: str = ",".join(_urls("OLLAMA_BASE_URL", "http://localhost:11434"))
PROVIDER_CONNECT_TIMEOUT: float = _positive("PROVIDER_CONNECT_TIMEOUT", "float", 5.0)
# Longest wait for the next streamed chunk, the first one included (a cold model load).
PROVIDER_READ_TIMEOUT: float = _positive("PROVIDER_READ_TIMEOUT", "float", 120.0)
# A host of a multi-host provider that failed is skipped for this many seconds.
PROVIDER_HOST_COOLDOWN: float = _positive("PROVIDER_HOST_COOLDOWN", "float", 30.0)
# Only an OLLAMA_BASE_URL that was set (not the default) counts as "a provider is configured".
OLLAMA_CONFIGURED: bool = bool(os.environ.get("OLLAMA_BASE_URL"))
AZURE_OPENAI_ENDPOINT: str = _url("AZURE_OPENAI_ENDPOINT", "")
AZURE_OPENAI_API_VERSION: str = env.str("AZURE_OPENAI_API_VERSION", default="2024-02-15-preview")
MODEL_DEPLOYMENT_NAME: str = env.str("MODEL_DEPLOYMENT_NAME", default="")
OPENAI_API_KEY: str = env.str("OPENAI_API_KEY", default="")
# Models found at a sync are offered at once unless this is off.
MODELS_ENABLED_BY_DEFAULT: bool = _typed("MODELS_ENABLED_BY_DEFAULT", "bool", True)
# Seconds between syncs of every provider's models, when a Celery beat runs.
MODELS_SYNC_INTERVAL: float = _positive("MODELS_SYNC_INTERVAL", "float", 300.0)

# The built-in local model (llama.cpp's server with SmolLM2-135M-Instruct): "auto" runs it
# when no other provider is configured, "on" always, "off" never.
LOCAL_MODEL: str = env.str("LOCAL_MODEL", default="auto").lower()
if LOCAL_MODEL not in {"auto", "on", "off"}:
    raise ImproperlyConfigured(f"LOCAL_MODEL must be auto, on or off, got {LOCAL_MODEL!r}")
LOCAL_MODEL_PORT: int = _positive("LOCAL_MODEL_PORT", "int", 8012)
LOCAL_MODEL_CONTEXT: int = _positive("LOCAL_MODEL_CONTEXT", "int", 4096)
LOCAL_MODEL_PATH: str = env.str("LOCAL_MODEL_PATH", default="")

CELERY_BEAT_SCHEDULE = {
    "sync-models": {"task": "models_registry.tasks.models_sync", "schedule": MODELS_SYNC_INTERVAL},
}

QDRANT_ENDPOINT: str = _url("QDRANT_ENDPOINT", "")
QDRANT_COLLECTION: str = env.str("QDRANT_COLLECTION", default="multi-llm-chat")
QDRANT_API_KEY: str = env.str("QDRANT_API_KEY", default="")
# Without a Qdrant server the web process owns the embedded store and ingests by itself;
# a separate Celery worker needs both Redis and QDRANT_ENDPOINT.
INGESTION_IN_PROCESS: bool = not (REDIS_URL and QDRANT_ENDPOINT)
# Tests only: lets one Celery worker own the embedded store (nothing else may open it meanwhile).
QDRANT_EMBEDDED_WORKER: bool = _typed("QDRANT_EMBEDDED_WORKER", "bool", False)

# Fetching user-given URLs (ingestion/fetcher.py). Only hosts or networks listed in
# FETCH_ALLOWLIST may be private or loopback addresses; everything else must be public.
FETCH_ALLOWLIST: list[str] = _typed("FETCH_ALLOWLIST", "list", [])
FETCH_MAX_BYTES: int = _positive("FETCH_MAX_BYTES", "int", 25 * 1024 * 1024)
FETCH_MAX_DECOMPRESSED_BYTES: int = _positive("FETCH_MAX_DECOMPRESSED_BYTES", "int", 100 * 1024 * 1024)
FETCH_CONNECT_TIMEOUT: float = _positive("FETCH_CONNECT_TIMEOUT", "float", 5.0)
FETCH_READ_TIMEOUT: float = _positive("FETCH_READ_TIMEOUT", "float", 20.0)
FETCH_MAX_REDIRECTS: int = _typed("FETCH_MAX_REDIRECTS", "int", 5)
# Uploads are capped at FETCH_MAX_BYTES while the body is parsed, before Django keeps it.
FILE_UPLOAD_HANDLERS = [
    "ingestion.uploads.CappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Request bodies. Any body over REQUEST_MAX_BYTES is refused (413) before Django reads it;
# the largest legitimate one is an upload (FETCH_MAX_BYTES) plus its multipart wrapping.
# Bodies that are not file uploads (API JSON, form fields) are capped lower.
REQUEST_MAX_BYTES: int = _positive("REQUEST_MAX_BYTES", "int", FETCH_MAX_BYTES + 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE: int = _positive("DATA_UPLOAD_MAX_MEMORY_SIZE", "int", 4 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
DATA_UPLOAD_MAX_NUMBER_FILES = 10
FILE_UPLOAD_PERMISSIONS = 0o600

# Chunking, in the embedding model's own tokens (all-MiniLM-L6-v2 reads 256 word pieces).
CHUNK_MAX_TOKENS: int = _positive("CHUNK_MAX_TOKENS", "int", 200)
CHUNK_OVERLAP_TOKENS: int = _typed("CHUNK_OVERLAP_TOKENS", "int", 40)
PDF_TIME_LIMIT: float = _positive("PDF_TIME_LIMIT", "float", 60.0)

# Chat limits.
CHAT_MAX_MESSAGE_CHARS: int = _positive("CHAT_MAX_MESSAGE_CHARS", "int", 32_000)
# Deltas after the first are coalesced to at most one frame per this many seconds.
CHAT_DELTA_INTERVAL: float = _typed("CHAT_DELTA_INTERVAL", "float", 0.03)
# ...and further, so that all the answers a process runs send at most this many deltas a second.
CHAT_DELTAS_PER_SECOND: float = _positive("CHAT_DELTAS_PER_SECOND", "float", 500)
# How often a streaming answer's partial text is saved, so a crash loses little.
CHAT_CHECKPOINT_INTERVAL: float = _positive("CHAT_CHECKPOINT_INTERVAL", "float", 2.0)
# Frames one chat socket may send: a burst, then this many a second (more are dropped; a
# socket that keeps flooding is closed). Daphne closes a socket whose frame is over 1 MiB.
CHAT_SOCKET_FRAMES_PER_SECOND: float = _positive("CHAT_SOCKET_FRAMES_PER_SECOND", "float", 5.0)
CHAT_SOCKET_FRAME_BURST: int = _positive("CHAT_SOCKET_FRAME_BURST", "int", 20)

# Per-user limits for the chat and the API (admins override them per user); 0 = unlimited.
QUOTA_REQUESTS_PER_MINUTE: int = _typed("QUOTA_REQUESTS_PER_MINUTE", "int", 60)
QUOTA_TOKENS_PER_DAY: int = _typed("QUOTA_TOKENS_PER_DAY", "int", 1_000_000)
QUOTA_CONCURRENT_GENERATIONS: int = _typed("QUOTA_CONCURRENT_GENERATIONS", "int", 4)
QUOTA_MAX_PROMPT_CHARS: int = _typed("QUOTA_MAX_PROMPT_CHARS", "int", 200_000)
for _name in (
    "QUOTA_REQUESTS_PER_MINUTE",
    "QUOTA_TOKENS_PER_DAY",
    "QUOTA_CONCURRENT_GENERATIONS",
    "QUOTA_MAX_PROMPT_CHARS",
):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 (unlimited) or more, got {globals()[_name]}")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# The SQLite file and collected static files live here; create it so a fresh clone just runs.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the chat page's script sends the token with fetch()

# --- Deployment and operations (issue 7): HTTPS, Content-Security-Policy, metrics, log format ---
# Behind a proxy that terminates TLS (Azure Container Apps, a load balancer, nginx) set
# SECURE_PROXY_SSL_HEADER=on so that Django trusts its X-Forwarded-Proto. Production turns on the
# redirect, HSTS and secure cookies (deploy/.env.example does): `manage.py check --deploy` then
# passes with no warnings. Off by default so that `make run` works over plain http://127.0.0.1.
if _typed("SECURE_PROXY_SSL_HEADER", "bool", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT: bool = _typed("SECURE_SSL_REDIRECT", "bool", False)
SECURE_HSTS_SECONDS: int = _typed("SECURE_HSTS_SECONDS", "int", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = _typed("SECURE_HSTS_INCLUDE_SUBDOMAINS", "bool", False)
SECURE_HSTS_PRELOAD: bool = _typed("SECURE_HSTS_PRELOAD", "bool", False)
SESSION_COOKIE_SECURE: bool = _typed("SESSION_COOKIE_SECURE", "bool", SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE: bool = _typed("CSRF_COOKIE_SECURE", "bool", SECURE_SSL_REDIRECT)
# The header itself is built per request in multillm/security.py (no inline script or style).
CSP_ENABLED: bool = _typed("CSP_ENABLED", "bool", True)
CSP_REPORT_URI: str = env.str("CSP_REPORT_URI", default="")
# Prometheus metrics at /metrics: off unless enabled; with METRICS_TOKEN, only for `Bearer <token>`.
METRICS_ENABLED: bool = _typed("METRICS_ENABLED", "bool", False)
METRICS_TOKEN: str = env.str("METRICS_TOKEN", default="")
# plain: `time level logger: message`; json: one JSON object per line, for log collectors.
LOG_FORMAT: str = env.str("LOG_FORMAT", default="plain").lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
# --- end of deployment and operations ---

LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "multillm.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # httpx logs every request URL at INFO; keep it for DEBUG runs only.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "daphne": {"level": "WARNING" if LOG_LEVEL == "INFO" else LOG_LEVEL},
    },
}
