"""Token search as pure functions: penalties, greedy and sampled picks, beam choices, ranking."""

from __future__ import annotations

import math

import pytest
import torch

from whisperd.engine.pytorch.options import GenerateOptions
from whisperd.engine.pytorch.search import (
    BEAM_FLOOR,
    beam_candidates,
    best_hypotheses,
    choose_beams,
    penalize,
    pick_tokens,
    rank_beams,
)

EOT = 9
LOWEST = torch.finfo(torch.float32).min


def test_penalize_scales_seen_tokens_by_sign_and_leaves_other_rows_alone() -> None:
    logits = torch.tensor([[1.0, -1.0, 2.0, 0.5], [1.0, -1.0, 2.0, 0.5]])
    options = [GenerateOptions(repetition_penalty=2.0), GenerateOptions()]
    out = penalize(logits, [[0, 1], [0, 1]], options)
    assert out is logits
    assert out[0].tolist() == [0.5, -2.0, 2.0, 0.5]
    assert out[1].tolist() == [1.0, -1.0, 2.0, 0.5]


def test_penalize_blocks_tokens_that_would_repeat_an_ngram() -> None:
    logits = torch.zeros(1, 4)
    penalize(logits, [[3, 1, 3]], [GenerateOptions(no_repeat_ngram_size=2)])
    assert logits[0].tolist() == [0.0, LOWEST, 0.0, 0.0]


def test_pick_tokens_is_greedy_with_the_log_probability() -> None:
    logits = torch.tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0]])
    assert pick_tokens(logits, [], []) == []
    [(token, logprob)] = pick_tokens(logits, [1], [GenerateOptions()])
    assert token == 0
    assert logprob == pytest.approx(3.0 - math.log(math.exp(3.0) + 2.0), abs=1e-6)


def test_sampled_tokens_stay_within_the_top_k() -> None:
    torch.manual_seed(0)
    logits = torch.tensor([[1.0, 0.5, -50.0, 2.0]] * 32)
    options = [GenerateOptions(sampling_topk=2, sampling_temperature=1.0)] * 32
    picked = pick_tokens(logits, list(range(32)), options)
    assert {token for token, _ in picked} <= {0, 3}


def test_rank_beams_batches_groups_of_one_size_like_single_groups() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    members = [[0, 1], [2, 3, 4], [5, 4]]
    scores = [[0.0, -math.inf], [-1.0, -2.0, -3.0], [-0.5, -0.25]]
    ranked = rank_beams(logits, members, scores)
    assert list(ranked) == [0, 2, 1]
    for index in range(3):
        alone = rank_beams(logits, [members[index]], [scores[index]])[0]
        assert ranked[index][1] == alone[1]
        assert ranked[index][0] == pytest.approx(alone[0])
    values, indices = ranked[0]
    assert len(values) == 4
    assert all(flat < 5 for flat in indices[:4])


def test_beam_candidates_force_the_prefix_then_forbid_an_early_end() -> None:
    values, indices = [-1.0, -2.0, -3.0, -4.0], [3, 19, 12, 9]
    forced = beam_candidates(values, indices, vocab_size=10, eot=EOT, prefix=(7,), step=0)
    assert forced == [(0, 7, 0.0), (0, 7, BEAM_FLOOR), (0, 7, BEAM_FLOOR), (0, 7, BEAM_FLOOR)]
    first = beam_candidates(values, indices, vocab_size=10, eot=EOT, prefix=(7,), step=1)
    assert first == [(0, 3, -1.0), (1, 0, BEAM_FLOOR), (1, 2, -3.0), (0, 0, BEAM_FLOOR)]
    later = beam_candidates(values, indices, vocab_size=10, eot=EOT, prefix=(7,), step=2)
    assert later == [(0, 3, -1.0), (1, 9, -2.0), (1, 2, -3.0), (0, 9, -4.0)]


def test_choose_beams_replaces_finished_beams_with_spares() -> None:
    candidates = [(0, EOT, -1.0), (1, 4, -2.0), (0, EOT, -3.0), (1, 5, -4.0)]
    chosen, finished = choose_beams(candidates, 2, eot=EOT, can_end=True, last=False)
    assert chosen == [(1, 5, -4.0), (1, 4, -2.0)]
    assert finished == [(0, (0, EOT, -1.0))]

    chosen, finished = choose_beams(candidates, 2, eot=EOT, can_end=False, last=False)
    assert chosen == candidates[:2]
    assert finished == []

    chosen, finished = choose_beams(candidates, 2, eot=EOT, can_end=True, last=True)
    assert chosen == [(1, 5, -4.0), (1, 4, -2.0)]
    assert finished == [(0, candidates[0]), (1, candidates[1])]


def test_best_hypotheses_apply_the_length_penalty() -> None:
    hypotheses = [([1, 2, 3, 4], -4.0), ([1], -2.0), ([], -1.0)]
    assert best_hypotheses(hypotheses, length_penalty=1.0, count=3) == [
        ([1, 2, 3, 4], -1.0),
        ([1], -2.0),
        ([], -math.inf),
    ]
    assert best_hypotheses(hypotheses, length_penalty=0.0, count=2) == [
        ([], -1.0),
        ([1], -2.0),
    ]
