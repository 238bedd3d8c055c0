"""Loss-threshold membership inference: the AUC, and the member / non-member split of a training set."""

import json

import pytest

from multimodal.errors import InputError
from recipes.membership import auc_standard_error, membership_auc, split_members
from tests.multimodal.train_helpers import make_image_set


def test_auc_is_the_chance_that_a_member_has_the_lower_loss():
    assert membership_auc([0.1, 0.2], [0.5, 0.9, 1.0]) == 1.0  # every member below every non-member
    assert membership_auc([0.5, 0.9], [0.1, 0.2]) == 0.0
    assert membership_auc([0.3, 0.3], [0.3]) == 0.5  # ties count half
    # 6 pairs: the member is lower in 0.1<0.4, 0.1<0.6, 0.4<0.6, 0.5<0.6; 0.4 = 0.4 ties; 0.5 > 0.4 loses
    assert membership_auc([0.1, 0.4, 0.5], [0.4, 0.6]) == pytest.approx((4 + 0.5) / 6)


def test_auc_standard_error_follows_hanley_and_mcneil():
    # AUC 0.5 with 80 + 80 scores: Q1 = Q2 = 1/3, var = (1/4 + 2 * 79 / 12) / 6400
    assert auc_standard_error(0.5, 80, 80) == pytest.approx(((0.25 + 2 * 79 / 12) / 6400) ** 0.5)
    assert auc_standard_error(0.5, 320, 320) < auc_standard_error(0.5, 80, 80)  # more scores, a tighter AUC
    assert auc_standard_error(1.0, 80, 80) == 0.0


def test_auc_refuses_empty_or_non_finite_losses():
    with pytest.raises(InputError, match="at least one member"):
        membership_auc([], [0.1])
    with pytest.raises(InputError, match="finite"):
        membership_auc([float("nan")], [0.1])


def test_split_holds_back_a_seeded_share_beside_the_data(tmp_path):
    data = make_image_set(tmp_path)
    members, nonmembers = split_members(data, 0.25, seed=1)
    assert members.parent == nonmembers.parent == data.parent  # media paths resolve as in the original
    ids = [[json.loads(ln)["id"] for ln in p.read_text().splitlines()] for p in (members, nonmembers)]
    assert len(ids[0]) == 3 and len(ids[1]) == 1 and set(ids[0]).isdisjoint(ids[1])
    assert sorted(ids[0] + ids[1]) == sorted(json.loads(ln)["id"] for ln in data.read_text().splitlines())
    again = split_members(data, 0.25, seed=1)
    assert [p.read_text() for p in again] == [members.read_text(), nonmembers.read_text()]
    with pytest.raises(InputError, match="between 0 and 1"):
        split_members(data, 1.0)
    with pytest.raises(InputError, match="no members or no non-members"):
        split_members(data, 0.05)
