"""How the models are used and how they stand: tokens per model and day (a user's own, and
everyone's per user for staff), and the leaderboard from side-by-side votes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from chat.models import Message, Vote
from chat.ratings import Standing, VoteOutcome, rank_models
from models_registry.selectors import models_usable_by

USAGE_DAYS = 30


@dataclass(frozen=True)
class UsageRow:
    day: date | None
    username: str
    model: str
    answers: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def usage_since(days: int = USAGE_DAYS) -> datetime:
    return timezone.now() - timedelta(days=days)


def usage_for_user(*, user: User, days: int = USAGE_DAYS) -> list[UsageRow]:
    """Tokens per model per day of the user's answers, as the providers counted them; newest day first."""
    rows = (
        Message.objects.filter(
            conversation__owner_id=user.pk, role=Message.Role.ASSISTANT, created_at__gte=usage_since(days)
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "model_label")
        .annotate(answers=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
        .order_by("-day", "model_label")
    )
    username = user.get_username()
    return [
        UsageRow(r["day"], username, r["model_label"], r["answers"], r["prompt"] or 0, r["completion"] or 0)
        for r in rows
    ]


def usage_for_everyone(*, days: int = USAGE_DAYS) -> list[UsageRow]:
    """Tokens per user and model over the last `days` days (for staff), by user name, then model."""
    rows = (
        Message.objects.filter(role=Message.Role.ASSISTANT, created_at__gte=usage_since(days))
        .values("conversation__owner__username", "model_label")
        .annotate(answers=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
        .order_by("conversation__owner__username", "model_label")
    )
    result = [
        UsageRow(
            None,
            r["conversation__owner__username"],
            r["model_label"],
            r["answers"],
            r["prompt"] or 0,
            r["completion"] or 0,
        )
        for r in rows
    ]
    return result


def model_leaderboard(*, user: User) -> list[Standing]:
    """Every vote of the organisation, ranked (see chat.ratings); a user sees the rows of the
    models they may use (admins see all), rated against every model."""
    outcomes = [
        VoteOutcome(contenders=list(contenders), winner=winner)
        for contenders, winner in Vote.objects.order_by("created_at", "id").values_list("contenders", "winner_model")
    ]
    standings = rank_models(outcomes)
    if getattr(user, "is_staff", False):
        return standings
    usable = {m.model_id for m in models_usable_by(user=user)}
    return [s for s in standings if s.model in usable]
