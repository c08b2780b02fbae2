"""Parsec node settings: one file, read from the environment, with local defaults.

Every variable is listed in the README's configuration table. `make run` writes a node's
secrets (SECRET_KEY, NODE_KEY_PASSPHRASE) under var/nodes/<node>/ and passes them in.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(
            f"set the environment variable {name} (see the README's configuration table)"
        )
    return value


def env_bool(name: str, default: bool) -> bool:
    return env(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
NODE_NAME = env("NODE_NAME", "bank-a")
NODE_DOMAIN = env("NODE_DOMAIN", f"{NODE_NAME}.test")
NODE_BASE_URL = env("NODE_BASE_URL", "http://127.0.0.1:8000")
VAR_DIR = Path(env("PARSEC_VAR_DIR", str(BASE_DIR / "var")))

# A development key only when DEBUG is on; a node that serves anyone must be given its own.
SECRET_KEY = env("SECRET_KEY", "insecure-development-key-do-not-use" if DEBUG else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", NODE_BASE_URL)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "settlement",
    "settlement.counterparties",
    "ledgers",
    "channels_app",
    "consensus",
    "messaging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Login is the default for every page; the few public URLs say so with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # After the password, the dashboard wants the TOTP code (settlement.second_factor).
    "settlement.second_factor.SecondFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Node-to-node requests (/node-api/) take a handler of their own (settlement.node_api_handler):
# they are signed, not logged in, so sessions, CSRF, login, the second factor, messages, frame
# and htmx headers and static files do nothing for them, and every synchronous middleware would
# cost each request a thread hop under daphne. Only async middleware is accepted here.
NODE_API_MIDDLEWARE = [
    # SECURE_SSL_REDIRECT, HSTS, nosniff and the other security headers, as on every answer.
    "settlement.node_api_handler.SecurityMiddleware",
    # The Host check against ALLOWED_HOSTS (400), and Content-Length on answers.
    "settlement.node_api_handler.CommonMiddleware",
    # Signed by default: a view that does not check a node signature answers nobody (403).
    "settlement.node_api_handler.NodeSignatureRequiredMiddleware",
]

ROOT_URLCONF = "settlement.urls"
NODE_API_URLCONF = "settlement.node_api_urls"
ASGI_APPLICATION = "settlement.asgi.application"

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
                "settlement.context_processors.node",
            ],
        },
    },
]

DATABASE_URL = env("DATABASE_URL", "postgres://parsec@127.0.0.1:54320/parsec_bank_a")
# Connections, checked before reuse. Under ASGI each request runs in a thread of its own, so a
# persistent connection would be one per thread and a request would open a new one (18 ms with
# SCRAM on this machine, most of it PostgreSQL starting a backend). So the web process takes its
# connections from a psycopg pool of DATABASE_POOL_MAX connections (settlement/asgi.py turns it
# on; Django returns a request's connection at its end). Celery's prefork workers and the
# management commands keep persistent connections instead: a pool opened before a fork would be
# shared by the children, with the pool's own threads left behind in the parent.
DATABASE_POOL_MAX = int(env("DATABASE_POOL_MAX", "0"))
if DATABASE_POOL_MAX > 0:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)}
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DATABASE_POOL_MAX),
        "max_size": DATABASE_POOL_MAX,
        # A request that finds every connection taken waits this long, then fails with a 500
        # rather than hanging: the pool is sized for the web process's threads.
        "timeout": 10,
    }
else:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Parsec runs on PostgreSQL only: DATABASE_URL must be a postgres:// URL")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:63790/1")
# Nodes may share one Redis; everything a node writes there carries its own prefix.
REDIS_KEY_PREFIX = f"parsec:{NODE_NAME}"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_KEY_PREFIX}:asgi"},
    }
}

ETH_RPC_URL = env("ETH_RPC_URL", "http://127.0.0.1:8545")
ETH_RPC_TIMEOUT_SECONDS = float(env("ETH_RPC_TIMEOUT_SECONDS", "2"))
CONTRACTS_FILE = Path(env("PARSEC_CONTRACTS_FILE", str(VAR_DIR / "contracts.json")))
# A transaction counts as final this many blocks deep (its own block included).
ETH_CONFIRMATIONS = int(env("ETH_CONFIRMATIONS", "3"))
# How far the watcher steps back when the block it stopped at is no longer on the chain.
ETH_REORG_REWIND_BLOCKS = int(env("ETH_REORG_REWIND_BLOCKS", "64"))
# The challenge period of new channels, in seconds.
ETH_CHALLENGE_SECONDS = int(env("ETH_CHALLENGE_SECONDS", "3600"))

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Keep the worker's database connection across tasks. Celery's Django fix-up otherwise closes it
# before and after every task, and a new connection (SCRAM included) cost more than most tasks
# (a gossip step: ~50 ms of ~140 ms under load). settlement.celery closes connections that are
# unusable or older than CONN_MAX_AGE before each task instead, as Django does per request.
CELERY_DB_REUSE_MAX = 1_000_000
# The worker writes a heartbeat to Redis this often; /healthz calls it down after three misses.
WORKER_HEARTBEAT_SECONDS = float(env("WORKER_HEARTBEAT_SECONDS", "2"))
HEALTH_SAMPLE_SECONDS = float(env("HEALTH_SAMPLE_SECONDS", "10"))
CELERY_BEAT_SCHEDULE = {
    "health-sample": {"task": "settlement.tasks.health_sample", "schedule": HEALTH_SAMPLE_SECONDS},
    "peers-ping": {"task": "settlement.tasks.peers_ping", "schedule": float(env("PEERS_PING_SECONDS", "5"))},
    "ledger-payments-void-expired": {"task": "ledgers.tasks.payments_void_expired", "schedule": 5.0},
    "channels-watch": {
        "task": "channels_app.tasks.channels_watch",
        "schedule": float(env("ETH_WATCH_SECONDS", "2")),
    },
    "channels-transactions-follow": {
        "task": "channels_app.tasks.onchain_transactions_follow",
        "schedule": float(env("ETH_WATCH_SECONDS", "2")),
    },
    "consensus-gossip": {
        "task": "consensus.tasks.gossip_tick",
        "schedule": float(env("CONSENSUS_GOSSIP_SECONDS", "0.5")),
        "options": {"expires": 5},
    },
    "consensus-anchor": {
        "task": "consensus.tasks.anchors_tick",
        "schedule": float(env("ANCHOR_TICK_SECONDS", "2")),
        "options": {"expires": 10},
    },
    "messages-follow": {
        "task": "messaging.tasks.messages_follow",
        "schedule": float(env("MESSAGE_FOLLOW_SECONDS", "2")),
        "options": {"expires": 10},
    },
    "channels-streams-checkpoint": {
        "task": "channels_app.tasks.streams_checkpoint_due",
        "schedule": float(env("STREAM_CHECKPOINT_TICK_SECONDS", "5")),
    },
}

# Consensus (docs/consensus.md "In the nodes"): the genesis validator set, by node name; it is
# read once, when the node's validator state is first made, and persisted from then on.
CONSENSUS_VALIDATORS = env_list("CONSENSUS_VALIDATORS", NODE_NAME)
CONSENSUS_GOSSIP_SECONDS = float(env("CONSENSUS_GOSSIP_SECONDS", "0.5"))
# The gossip loop (docs/consensus.md): a run lasts this long, then hands over to a fresh one; its
# Redis lock (one loop per node) expires this long after the holder stops refreshing it (killed),
# and the next beat tick starts another.
CONSENSUS_LOOP_SECONDS = float(env("CONSENSUS_LOOP_SECONDS", "300"))
CONSENSUS_LOOP_LOCK_SECONDS = float(env("CONSENSUS_LOOP_LOCK_SECONDS", "10"))
# A gossip request unanswered this long is given up, and the next tick picks another peer.
CONSENSUS_RESPONSE_TIMEOUT_SECONDS = float(env("CONSENSUS_RESPONSE_TIMEOUT_SECONDS", "3"))
# Push-pull: the receiving view holds a request's HTTP exchange open this long for the gossip
# loop's response and sends it back in the answer (one POST per round instead of two); after
# that, the response travels as its own POST. Below the response timeout above.
CONSENSUS_INLINE_RESPONSE_SECONDS = float(env("CONSENSUS_INLINE_RESPONSE_SECONDS", "2"))
CONSENSUS_MAX_MESSAGE_BYTES = int(env("CONSENSUS_MAX_MESSAGE_BYTES", "2000000"))
# Log the timings of every gossip hop and worker step (logger parsec.consensus.trace, JSON lines).
CONSENSUS_TRACE = env_bool("CONSENSUS_TRACE", False)
# The firehose (docs/firehose.md): an idle stream sends a heartbeat (and reads the database again)
# this often; a websocket client may leave this many bytes unacknowledged; one HTTP response
# carries about this many bytes, then ends with an "end" record naming the height to resume from.
FIREHOSE_HEARTBEAT_SECONDS = float(env("FIREHOSE_HEARTBEAT_SECONDS", "15"))
FIREHOSE_WINDOW_BYTES = int(env("FIREHOSE_WINDOW_BYTES", str(1024 * 1024)))
FIREHOSE_RESPONSE_BYTES = int(env("FIREHOSE_RESPONSE_BYTES", str(16 * 1024 * 1024)))
# Persistence (docs/consensus.md): each step appends its protocol inputs to a write-ahead log; a
# full snapshot replaces the log after this many steps or this many bytes of log (a restart
# replays at most that much).
CONSENSUS_SNAPSHOT_EVERY_STEPS = int(env("CONSENSUS_SNAPSHOT_EVERY_STEPS", "200"))
CONSENSUS_SNAPSHOT_LOG_BYTES = int(env("CONSENSUS_SNAPSHOT_LOG_BYTES", str(64 * 1024 * 1024)))
# Anchoring block roots in AnchorRegistry: every k-th block, and the newest block once T seconds
# passed since the last anchor (0: never by time); final after N confirmations or `finalized`.
ANCHOR_EVERY_BLOCKS = int(env("ANCHOR_EVERY_BLOCKS", "10"))
ANCHOR_EVERY_SECONDS = float(env("ANCHOR_EVERY_SECONDS", "30"))
ANCHOR_CONFIRMATIONS = int(env("ANCHOR_CONFIRMATIONS", "3"))
ANCHOR_TICK_SECONDS = float(env("ANCHOR_TICK_SECONDS", "2"))

# Messaging (docs/messaging.md): a delivery not answered by the recipient's node within the
# timeout is "timed out" and listed as undeliverable (never dropped); retries back off
# exponentially from the base, capped at the maximum.
MESSAGE_DELIVERY_TIMEOUT_SECONDS = float(env("MESSAGE_DELIVERY_TIMEOUT_SECONDS", "600"))
MESSAGE_RETRY_BASE_SECONDS = float(env("MESSAGE_RETRY_BASE_SECONDS", "1"))
MESSAGE_RETRY_MAX_SECONDS = float(env("MESSAGE_RETRY_MAX_SECONDS", "60"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
OTP_TOTP_ISSUER = f"Parsec {NODE_NAME}"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "settlement.authentication.ApiTokenAuthentication",
        "settlement.second_factor.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "settlement.permissions.RolePermission",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "settlement.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Parsec node API",
    "DESCRIPTION": "The REST API of one Parsec settlement node.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": "/static/favicon.svg",
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves straight from STATICFILES_DIRS (no collectstatic step); a deployment that
# prefers collected, compressed files sets STATIC_ROOT and runs collectstatic.
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [" + NODE_NAME + "] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "parsec.consensus.trace": {"level": "INFO" if CONSENSUS_TRACE else "WARNING"},
    },
}
