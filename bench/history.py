"""Page times and query counts with a long history: do they grow with the history?

Seeds two users on Postgres: `history-small` with 10 conversations of 10 messages, and
`history-large` with 1,000 conversations of 200 messages (100 turns each, every answer
with token counts; dates spread over the last 400 days so every sidebar group is used).
Seeding uses bulk_create with ids taken from the sequences, and is kept between runs
(`--reseed` starts again). Then, in one process, through Django's test Client (the whole
middleware stack, the templates, a logged-in session) it measures for each user:

  home          GET /                               the sidebar's first page, empty chat
  conversation  GET /c/<uuid>/                      the newest conversation with its messages
  sidebar p2    GET /conversations/?page=2          the next page of the sidebar
  search        GET /conversations/?q=<word>        full-text search over titles and messages
                (a word in ~1% of messages, and one in every conversation)
  usage         GET /usage/                         tokens per model per day, 30 days

and prints the median and p90 server time of `--runs` requests (after 2 warm-ups) and the
number of SQL queries each request runs (django.test.utils.CaptureQueriesContext). The
`large/small` column is the ratio of the medians; the query counts should be equal.

Uses DATABASE_URL, by default postgres://postgres@127.0.0.1:5432/multillm_history_bench
(created if missing, and migrated).

    .venv/bin/python bench/history.py [--runs 15] [--reseed]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import ensure_postgres_database, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multillm.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/multillm_history_bench")
os.environ.setdefault("DEBUG", "off")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="multillm-bench-"))
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

WORDS = (
    "model answer context token stream prompt server branch column version chart report table value "
    "python django query index cache design review paris travel recipe garden music history science "
    "energy market planet ocean forest engine window letter"
).split()
RARE = "budget"  # in about 1% of the messages
COMMON = "project"  # in the first message of every conversation


@dataclass(frozen=True)
class Scale:
    username: str
    conversations: int
    messages: int  # per conversation: user and assistant messages alternate


SMALL = Scale("history-small", 10, 10)
LARGE = Scale("history-large", 1000, 200)


def _text(seed: int, words: int) -> str:
    picked = [WORDS[(seed * 7 + i * 13 + (seed >> 3)) % len(WORDS)] for i in range(words)]
    if seed % 97 == 0:
        picked[words // 2] = RARE
    return " ".join(picked).capitalize() + "."


def seed(scale: Scale, *, reseed: bool) -> None:
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from chat.models import Conversation, Message

    user = User.objects.filter(username=scale.username).first()
    if user is not None and not reseed:
        if (
            Conversation.objects.filter(owner=user).count() == scale.conversations
            and Message.objects.filter(conversation__owner=user).count() == scale.conversations * scale.messages
        ):
            return
    if user is not None:
        user.delete()
    started = time.perf_counter()
    user = User.objects.create_user(scale.username, password="bench-password-123")
    with transaction.atomic():
        conversations = Conversation.objects.bulk_create(
            Conversation(owner=user, title=f"{COMMON.capitalize()} {index}: {_text(index, 5)}")
            for index in range(scale.conversations)
        )
        total = scale.conversations * scale.messages
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('chat_message', 'id')) FROM generate_series(1, %s)", [total]
            )
            ids = iter(sorted(row[0] for row in cursor.fetchall()))
        batch: list[Message] = []
        number = 0
        for conversation in conversations:
            prompt_id = None
            for position in range(scale.messages):
                number += 1
                message_id = next(ids)
                if position % 2 == 0:
                    content = _text(number, 12)
                    if position == 0:
                        content = f"A {COMMON} question. {content}"
                    batch.append(
                        Message(
                            id=message_id, conversation=conversation, role="user", parent_id=prompt_id, content=content
                        )
                    )
                    prompt_id = message_id
                else:
                    batch.append(
                        Message(
                            id=message_id,
                            conversation=conversation,
                            role="assistant",
                            parent_id=prompt_id,
                            content=_text(number, 60),
                            content_html=f"<p>{_text(number, 60)}</p>",
                            model_label="ollama/llama3.2:1b" if number % 3 else "azure/gpt-4o",
                            prompt_tokens=40 + number % 50,
                            completion_tokens=60 + number % 40,
                            latency_ms=900,
                        )
                    )
                if len(batch) >= 5000:
                    Message.objects.bulk_create(batch)
                    batch = []
        Message.objects.bulk_create(batch)
        with connection.cursor() as cursor:
            # Last active from now back to ~400 days ago, newest first by index; messages in the last 60 days.
            cursor.execute(
                "UPDATE chat_conversation SET updated_at = now() - (id - %s) * interval '9 hours' WHERE owner_id = %s",
                [conversations[0].pk, user.pk],
            )
            cursor.execute(
                "UPDATE chat_message m SET created_at = c.updated_at - interval '1 minute' "
                "FROM chat_conversation c WHERE m.conversation_id = c.id AND c.owner_id = %s",
                [user.pk],
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chat_conversation")
        cursor.execute("ANALYZE chat_message")
    print(
        f"seeded {scale.username}: {scale.conversations} conversations x {scale.messages} messages "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


@dataclass
class Measure:
    median_ms: float
    p90_ms: float
    queries: int


def measure(scale: Scale, runs: int) -> dict[str, Measure]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from chat.models import Conversation

    user = User.objects.get(username=scale.username)
    client = Client()
    client.force_login(user)
    newest = Conversation.objects.filter(owner=user).order_by("-updated_at").first()
    assert newest is not None
    pages = {
        "home": "/",
        "conversation": newest.get_absolute_url(),
        "sidebar p2": "/conversations/?page=2",
        f"search {RARE}": f"/conversations/?q={RARE}",
        f"search {COMMON}": f"/conversations/?q={COMMON}",
        "usage": "/usage/",
    }
    results: dict[str, Measure] = {}
    for name, url in pages.items():
        times: list[float] = []
        for run in range(runs + 2):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, f"{url}: {response.status_code}"
            if run >= 2:
                times.append(elapsed)
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        results[name] = Measure(statistics.median(times) * 1000, percentile(times, 0.9) * 1000, len(queries))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    ensure_postgres_database()

    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/history.py measures on Postgres: set DATABASE_URL to a postgres:// URL")
    call_command("migrate", verbosity=0)
    for scale in (SMALL, LARGE):
        seed(scale, reseed=args.reseed)
    small, large = measure(SMALL, args.runs), measure(LARGE, args.runs)

    print(f"\nserver time per request, median and p90 of {args.runs} runs (Django test Client, Postgres)")
    header = f"{'page':<16}{'small ms':>10}{'p90':>8}{'queries':>9}  |{'large ms':>10}{'p90':>8}{'queries':>9}"
    print(f"{'':<16}{f'{SMALL.conversations} conv x {SMALL.messages} msg':>27}  |"
          f"{f'{LARGE.conversations} conv x {LARGE.messages} msg':>27}   large/small")  # fmt: skip
    print(header)
    for name in small:
        s, b = small[name], large[name]
        print(
            f"{name:<16}{s.median_ms:>10.1f}{s.p90_ms:>8.1f}{s.queries:>9}  |"
            f"{b.median_ms:>10.1f}{b.p90_ms:>8.1f}{b.queries:>9}   {b.median_ms / s.median_ms:>6.2f}x"
        )
    grew = [name for name in small if large[name].queries != small[name].queries]
    print("query counts: " + ("equal at both sizes" if not grew else f"GROW for {', '.join(grew)}"))


if __name__ == "__main__":
    main()
