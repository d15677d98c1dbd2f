"""Ranking models from blind votes: win rate and an Elo-style rating. Pure functions.

Each vote compares two to four answers to one prompt. It counts as pairwise games: the
winner beats every other answer; a tie is a draw between every pair. All of a vote's
games are scored against the ratings from before the vote, so the order of the columns
does not matter; votes are applied oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

INITIAL_RATING = 1000.0
K_FACTOR = 32.0


@dataclass(frozen=True)
class VoteOutcome:
    contenders: list[str]
    winner: str  # "" for a tie


@dataclass
class Standing:
    model: str
    rating: float = INITIAL_RATING
    votes: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def win_rate(self) -> float:
        return self.wins / self.votes if self.votes else 0.0


def expected_score(rating: float, opponent: float) -> float:
    return 1.0 / (1.0 + 10 ** ((opponent - rating) / 400.0))


def rank_models(outcomes: Iterable[VoteOutcome], *, k: float = K_FACTOR) -> list[Standing]:
    """Standings, best first (rating, then win rate, then more votes, then name)."""
    table: dict[str, Standing] = {}
    for outcome in outcomes:
        contenders = list(dict.fromkeys(outcome.contenders))
        if len(contenders) < 2 or (outcome.winner and outcome.winner not in contenders):
            continue
        for model in contenders:
            standing = table.setdefault(model, Standing(model))
            standing.votes += 1
            if not outcome.winner:
                standing.ties += 1
            elif model == outcome.winner:
                standing.wins += 1
            else:
                standing.losses += 1
        before = {model: table[model].rating for model in contenders}
        change = dict.fromkeys(contenders, 0.0)
        for a, b in combinations(contenders, 2):
            if not outcome.winner:
                score = 0.5
            elif a == outcome.winner:
                score = 1.0
            elif b == outcome.winner:
                score = 0.0
            else:
                continue  # two losers of the same vote did not play each other
            delta = k * (score - expected_score(before[a], before[b]))
            change[a] += delta
            change[b] -= delta
        for model in contenders:
            table[model].rating += change[model]
    return sorted(table.values(), key=lambda s: (-s.rating, -s.win_rate, -s.votes, s.model))
