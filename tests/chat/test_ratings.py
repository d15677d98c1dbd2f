"""The leaderboard's maths: win rates and Elo-style ratings from side-by-side votes."""

from __future__ import annotations

import pytest

from chat.ratings import INITIAL_RATING, K_FACTOR, VoteOutcome, expected_score, rank_models


def test_equal_ratings_expect_half() -> None:
    assert expected_score(1000, 1000) == 0.5
    assert expected_score(1400, 1000) == pytest.approx(10 / 11)


def test_a_win_between_equals_moves_each_by_half_k() -> None:
    standings = rank_models([VoteOutcome(["a", "b"], "a")])

    by_model = {s.model: s for s in standings}
    assert by_model["a"].rating == INITIAL_RATING + K_FACTOR / 2
    assert by_model["b"].rating == INITIAL_RATING - K_FACTOR / 2
    assert (by_model["a"].wins, by_model["a"].losses, by_model["b"].losses) == (1, 0, 1)
    assert [s.model for s in standings] == ["a", "b"]


def test_a_tie_between_equals_changes_no_rating_and_counts_a_tie_for_all() -> None:
    standings = rank_models([VoteOutcome(["a", "b", "c"], "")])

    assert all(s.rating == INITIAL_RATING and s.ties == 1 and s.votes == 1 for s in standings)
    assert all(s.win_rate == 0 for s in standings)


def test_the_winner_of_four_beats_each_other_column_and_losers_do_not_play_each_other() -> None:
    standings = {s.model: s for s in rank_models([VoteOutcome(["a", "b", "c", "d"], "c")])}

    assert standings["c"].rating == INITIAL_RATING + 3 * K_FACTOR / 2
    assert {standings[m].rating for m in "abd"} == {INITIAL_RATING - K_FACTOR / 2}
    assert sum(s.rating for s in standings.values()) == pytest.approx(4 * INITIAL_RATING), "points are conserved"


def test_column_order_does_not_change_the_result() -> None:
    history = [VoteOutcome(["a", "b", "c"], "b"), VoteOutcome(["a", "c"], "a"), VoteOutcome(["c", "b"], "")]
    shuffled = [VoteOutcome(list(reversed(v.contenders)), v.winner) for v in history]

    assert [(s.model, round(s.rating, 6)) for s in rank_models(history)] == [
        (s.model, round(s.rating, 6)) for s in rank_models(shuffled)
    ]


def test_win_rate_and_order_over_many_votes() -> None:
    votes = [VoteOutcome(["strong", "weak"], "strong")] * 8 + [VoteOutcome(["strong", "weak"], "weak")] * 2

    strong, weak = rank_models(votes)

    assert (strong.model, strong.votes, strong.wins, strong.win_rate) == ("strong", 10, 8, 0.8)
    assert (weak.model, weak.wins, weak.losses) == ("weak", 2, 8)
    assert strong.rating > INITIAL_RATING > weak.rating


def test_an_upset_moves_ratings_more_than_an_expected_win() -> None:
    base = [VoteOutcome(["fav", "dog"], "fav")] * 5
    after_expected = {s.model: s.rating for s in rank_models([*base, VoteOutcome(["fav", "dog"], "fav")])}
    after_upset = {s.model: s.rating for s in rank_models([*base, VoteOutcome(["fav", "dog"], "dog")])}
    before = {s.model: s.rating for s in rank_models(base)}

    assert after_upset["dog"] - before["dog"] > after_expected["fav"] - before["fav"] > 0


def test_votes_that_compare_nothing_are_ignored() -> None:
    assert rank_models([VoteOutcome(["a"], "a"), VoteOutcome(["a", "b"], "z"), VoteOutcome(["a", "a"], "")]) == []
