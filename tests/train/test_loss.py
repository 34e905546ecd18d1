"""Preference, SFT and token-weighted losses on fixed hand-written inputs, with the expected numbers worked out."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from hadpo.errors import ParamsError
from hadpo.train.loss import (
    LOSS_TYPES,
    PreferenceLossOutput,
    anchor_loss,
    conditional_loss,
    preference_loss,
    sft_loss,
    token_weighted_nll,
    total_loss,
)

LN2 = math.log(2.0)
# The worked example used throughout: beta = 0.1,
# policy chosen -10 / ref chosen -12  -> chosen log-ratio   +2
# policy rejected -15 / ref rejected -13 -> rejected log-ratio -2
# h = 2 - (-2) = 4, beta*h = 0.4, and -log sigma(0.4) = log(1 + e^-0.4) = log(1.670320) = 0.5130153.
BETA = 0.1
A = 0.5130152523999526  # -log sigma(0.4)


def example(requires_grad: bool = False) -> tuple[torch.Tensor, ...]:
    """The worked example as (policy_chosen, policy_rejected, ref_chosen, ref_rejected), batch of one."""
    pc = torch.tensor([-10.0], requires_grad=requires_grad)
    pr = torch.tensor([-15.0], requires_grad=requires_grad)
    return pc, pr, torch.tensor([-12.0]), torch.tensor([-13.0])


def test_sigmoid_worked_example() -> None:
    """h = 4, beta*h = 0.4: loss = log(1 + e^-0.4) = 0.513015; rewards = 0.1*2 = 0.2 and 0.1*(-2) = -0.2."""
    out = preference_loss(*example(), beta=BETA)
    assert isinstance(out, PreferenceLossOutput)
    assert out.losses.shape == (1,)
    assert out.losses.item() == pytest.approx(A, abs=1e-6)
    assert out.chosen_rewards.item() == pytest.approx(0.2, abs=1e-6)
    assert out.rejected_rewards.item() == pytest.approx(-0.2, abs=1e-6)


def test_sigmoid_at_zero_margin_is_ln2() -> None:
    """Policy equal to reference gives h = 0 for every pair, so each loss is -log sigma(0) = ln 2 = 0.693147."""
    logps = torch.tensor([-3.0, -40.0, -7.5])
    out = preference_loss(logps, logps - 5, logps, logps - 5, beta=0.5)
    assert torch.allclose(out.losses, torch.full((3,), LN2))
    assert torch.equal(out.chosen_rewards, torch.zeros(3))
    assert torch.equal(out.rejected_rewards, torch.zeros(3))


def test_sigmoid_gradient_signs() -> None:
    """dL/d(policy chosen) = -beta*sigma(-beta*h) = -0.1*sigma(-0.4) = -0.1*0.401312 = -0.0401312 < 0, and the
    rejected gradient is its negative: training raises the chosen log-prob and lowers the rejected one."""
    pc, pr, rc, rr = example(requires_grad=True)
    preference_loss(pc, pr, rc, rr, beta=BETA).losses.sum().backward()
    assert pc.grad is not None and pr.grad is not None
    expected = -BETA * torch.sigmoid(torch.tensor(-0.4)).item()
    assert pc.grad.item() == pytest.approx(expected, abs=1e-6)
    assert pr.grad.item() == pytest.approx(-expected, abs=1e-6)


def test_rewards_are_detached() -> None:
    """Rewards are for logging: they carry no graph even when the log-probs do."""
    out = preference_loss(*example(requires_grad=True), beta=BETA)
    assert out.losses.requires_grad
    assert not out.chosen_rewards.requires_grad and not out.rejected_rewards.requires_grad


def test_conservative_dpo_label_smoothing() -> None:
    """cDPO, eps = 0.1: -(0.9)*log sigma(0.4) - 0.1*log sigma(-0.4). With log sigma(-x) = log sigma(x) - x this is
    A + eps*0.4 = 0.513015 + 0.04 = 0.553015."""
    out = preference_loss(*example(), beta=BETA, loss_type="sigmoid", label_smoothing=0.1)
    assert out.losses.item() == pytest.approx(A + 0.04, abs=1e-6)


def test_ipo_worked_example() -> None:
    """IPO: (h - 1/(2*beta))^2 = (4 - 5)^2 = 1; at h = 1/(2*beta) = 5 the loss and its gradient are 0."""
    pc, pr, rc, rr = example()
    assert preference_loss(pc, pr, rc, rr, beta=BETA, loss_type="ipo").losses.item() == pytest.approx(1.0)
    # chosen log-ratio 3, rejected -2: h = 5.
    pc5 = torch.tensor([-9.0], requires_grad=True)
    out = preference_loss(pc5, pr, rc, rr, beta=BETA, loss_type="ipo")
    out.losses.sum().backward()
    assert out.losses.item() == pytest.approx(0.0, abs=1e-9)
    assert pc5.grad is not None and pc5.grad.item() == pytest.approx(0.0, abs=1e-9)


def test_ipo_gradient_pulls_towards_the_margin() -> None:
    """Below the margin (h = 4 < 5) dL/d(policy chosen) = 2*(h - 5) = -2 (raise chosen); above it (h = 7, chosen
    log-ratio 5) the gradient is 2*(7 - 5) = +4: IPO does not push h to infinity, unlike DPO."""
    pc, pr, rc, rr = example(requires_grad=True)
    preference_loss(pc, pr, rc, rr, beta=BETA, loss_type="ipo").losses.sum().backward()
    assert pc.grad is not None and pc.grad.item() == pytest.approx(-2.0)
    pc7 = torch.tensor([-7.0], requires_grad=True)
    preference_loss(pc7, pr.detach(), rc, rr, beta=BETA, loss_type="ipo").losses.sum().backward()
    assert pc7.grad is not None and pc7.grad.item() == pytest.approx(4.0)


def test_hinge_worked_example() -> None:
    """Hinge: relu(1 - beta*h) = relu(1 - 0.4) = 0.6; with h = 12 (chosen log-ratio 10) it is relu(-0.2) = 0 and
    the pair gets no gradient."""
    pc, pr, rc, rr = example()
    assert preference_loss(pc, pr, rc, rr, beta=BETA, loss_type="hinge").losses.item() == pytest.approx(0.6)
    pc_far = torch.tensor([-2.0], requires_grad=True)
    out = preference_loss(pc_far, pr, rc, rr, beta=BETA, loss_type="hinge")
    out.losses.sum().backward()
    assert out.losses.item() == 0.0
    assert pc_far.grad is not None and pc_far.grad.item() == 0.0


def test_robust_worked_example() -> None:
    """Robust DPO, eps = 0.1: (-(0.9)*log sigma(0.4) + 0.1*log sigma(-0.4)) / 0.8. Writing l = log sigma(0.4) and
    log sigma(-0.4) = l - 0.4: (-0.8*l - 0.04) / 0.8 = A - 0.05 = 0.463015."""
    out = preference_loss(*example(), beta=BETA, loss_type="robust", label_smoothing=0.1)
    assert out.losses.item() == pytest.approx(A - 0.05, abs=1e-6)


def test_robust_without_smoothing_is_dpo() -> None:
    """At eps = 0 the robust loss reduces to -log sigma(beta*h) = A."""
    out = preference_loss(*example(), beta=BETA, loss_type="robust")
    assert out.losses.item() == pytest.approx(A, abs=1e-6)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_every_type_is_per_pair_and_finite(loss_type: str) -> None:
    """Each loss type returns one finite value per pair, also for large summed log-probs (long answers)."""
    pc = torch.tensor([-10.0, -900.0, -1.0])
    pr = torch.tensor([-15.0, -100.0, -2000.0])
    rc = torch.tensor([-12.0, -100.0, -1.0])
    rr = torch.tensor([-13.0, -900.0, -2.0])
    smoothing = 0.2 if loss_type in ("sigmoid", "robust") else 0.0
    out = preference_loss(pc, pr, rc, rr, beta=BETA, loss_type=loss_type, label_smoothing=smoothing)
    assert out.losses.shape == (3,)
    assert torch.isfinite(out.losses).all()


def test_sigmoid_matches_batch_order() -> None:
    """Pairs are independent: pair 0 is the worked example (A), pair 1 has h = 0 (ln 2)."""
    out = preference_loss(
        torch.tensor([-10.0, -4.0]), torch.tensor([-15.0, -6.0]), torch.tensor([-12.0, -4.0]),
        torch.tensor([-13.0, -6.0]), beta=BETA,
    )  # fmt: skip
    assert out.losses.tolist() == pytest.approx([A, LN2], abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"loss_type": "kto"}, "'kto'"),
        ({"beta": 0.0}, "beta must be a positive number, got 0.0"),
        ({"label_smoothing": 0.5}, "got 0.5"),
        ({"label_smoothing": -0.1}, "got -0.1"),
        ({"loss_type": "robust", "label_smoothing": 0.7}, "got 0.7"),
        ({"loss_type": "ipo", "label_smoothing": 0.1}, "'ipo'"),
        ({"loss_type": "hinge", "label_smoothing": 0.1}, "'hinge'"),
    ],
)
def test_bad_settings_are_rejected_naming_the_value(kwargs: dict, fragment: str) -> None:
    """Unknown types and out-of-range beta / smoothing raise ParamsError (a ValueError) naming the value."""
    settings = {"beta": BETA, **kwargs}
    with pytest.raises(ParamsError, match=re.escape(fragment)) as info:
        preference_loss(*example(), **settings)
    assert isinstance(info.value, ValueError)


def test_mismatched_shapes_are_rejected() -> None:
    """Four log-prob tensors of different shapes would broadcast silently; they are an error."""
    with pytest.raises(ValueError, match="share one shape"):
        preference_loss(torch.zeros(2), torch.zeros(2), torch.zeros(3), torch.zeros(2), beta=BETA)


def test_sft_loss_is_mean_nll_per_token() -> None:
    """Chosen answers with summed log-probs -12 over 4 tokens and -3 over 1 token: NLL per token 3.0 and 3.0;
    -5 over 10 tokens: 0.5. A zero count is treated as 1 (0 log-prob -> 0 loss, not NaN)."""
    logps = torch.tensor([-12.0, -3.0, -5.0, 0.0])
    counts = torch.tensor([4, 1, 10, 0])
    assert sft_loss(logps, counts).tolist() == pytest.approx([3.0, 3.0, 0.5, 0.0])


def test_sft_loss_gradient_lowers_nll() -> None:
    """d(NLL/count)/d(logp) = -1/count = -0.25 for 4 tokens: raising the chosen log-prob lowers the loss."""
    logps = torch.tensor([-12.0], requires_grad=True)
    sft_loss(logps, torch.tensor([4])).sum().backward()
    assert logps.grad is not None and logps.grad.item() == pytest.approx(-0.25)


def test_total_loss_adds_gamma_weighted_sft() -> None:
    """mean([0.2, 0.4]) + 0.5*mean([1.0, 3.0]) = 0.3 + 0.5*2.0 = 1.3; gamma 0 is the preference mean alone, and
    then sft_losses may be None (LLaVA recipe)."""
    pref = torch.tensor([0.2, 0.4])
    sft = torch.tensor([1.0, 3.0])
    assert total_loss(pref, sft, 0.5).item() == pytest.approx(1.3)
    assert total_loss(pref, sft, 0.0).item() == pytest.approx(0.3)
    assert total_loss(pref, None, 0.0).item() == pytest.approx(0.3)
    # gamma 0 ignores the SFT term entirely, even a NaN one.
    assert total_loss(pref, torch.tensor([float("nan")]), 0).item() == pytest.approx(0.3)


def test_total_loss_rejects_bad_gamma_and_missing_sft() -> None:
    """A negative gamma would reward high NLL; gamma > 0 without SFT losses is a caller bug."""
    with pytest.raises(ParamsError, match=re.escape("gamma must be a number >= 0, got -1.0")):
        total_loss(torch.zeros(1), torch.zeros(1), -1.0)
    with pytest.raises(ValueError, match="no sft_losses"):
        total_loss(torch.zeros(1), None, 0.5)


# mDPO's conditional term, worked example (beta = 0.1): the chosen answer of the main example (policy -10, ref -12,
# real-image log-ratio +2) under a corrupted image: policy -16, ref -17, corrupted log-ratio +1. h_c = 2 - 1 = 1,
# beta*h_c = 0.1, and -log sigma(0.1) = log(1 + e^-0.1) = log(1.904837) = 0.6443967.
C = 0.6443966600735709  # -log sigma(0.1)


def conditional_example() -> tuple[torch.Tensor, ...]:
    """(policy chosen | real, policy chosen | corrupted, ref chosen | real, ref chosen | corrupted), batch of one."""
    return torch.tensor([-10.0]), torch.tensor([-16.0]), torch.tensor([-12.0]), torch.tensor([-17.0])


# (loss_type, label_smoothing, main preference loss on example(), conditional loss on conditional_example()):
# - sigmoid:       A = 0.5130153                          and C = 0.6443967
# - sigmoid, 0.1:  A + 0.1*0.4 = 0.5530153 (cDPO, above)  and -0.9*l - 0.1*(l - 0.1) = C + 0.01 = 0.6543967,
#                  with l = log sigma(0.1) = -C and log sigma(-x) = log sigma(x) - x
# - ipo:           (4 - 5)^2 = 1                          and (h_c - 1/(2*beta))^2 = (1 - 5)^2 = 16
# - hinge:         relu(1 - 0.4) = 0.6                    and relu(1 - 0.1) = 0.9
# - robust, 0.1:   A - 0.05 = 0.4630153                   and (-0.9*l + 0.1*(l - 0.1))/0.8 = C - 0.0125 = 0.6318967
CONDITIONAL_CASES = [
    ("sigmoid", 0.0, A, C),
    ("sigmoid", 0.1, A + 0.04, C + 0.01),
    ("ipo", 0.0, 1.0, 16.0),
    ("hinge", 0.0, 0.6, 0.9),
    ("robust", 0.1, A - 0.05, C - 0.0125),
]


@pytest.mark.parametrize(("loss_type", "eps", "pref", "cond"), CONDITIONAL_CASES)
def test_conditional_loss_for_every_loss_type(loss_type: str, eps: float, pref: float, cond: float) -> None:
    """The conditional term has the main loss's shape for each loss_type (table above); its rewards are
    beta*(real log-ratio) = 0.1*2 = 0.2 and beta*(corrupted log-ratio) = 0.1*1 = 0.1, a conditional margin of 0.1.
    With w_c = 1 the total is pref + cond: e.g. sigmoid 0.5130153 + 0.6443967 = 1.1574119."""
    assert {case[0] for case in CONDITIONAL_CASES} == set(LOSS_TYPES)
    main = preference_loss(*example(), beta=BETA, loss_type=loss_type, label_smoothing=eps)
    out = conditional_loss(*conditional_example(), beta=BETA, loss_type=loss_type, label_smoothing=eps)
    assert isinstance(out, PreferenceLossOutput)
    assert main.losses.item() == pytest.approx(pref, abs=1e-6)
    assert out.losses.item() == pytest.approx(cond, abs=1e-5)
    assert out.chosen_rewards.item() == pytest.approx(0.2, abs=1e-6)
    assert out.rejected_rewards.item() == pytest.approx(0.1, abs=1e-6)
    total = total_loss(main.losses, None, 0.0, conditional_losses=out.losses, conditional_weight=1.0)
    assert total.item() == pytest.approx(pref + cond, abs=1e-5)


def test_conditional_loss_gradient_raises_the_real_image_likelihood() -> None:
    """sigmoid: dL/d(policy chosen | real) = -beta*sigma(-beta*h_c) = -0.1*sigma(-0.1) = -0.1*0.4750208 = -0.0475021,
    and the corrupted-image log-prob gets the opposite gradient: the answer is pushed to depend on the image."""
    pc, pk, rc, rk = conditional_example()
    pc.requires_grad_(True)
    pk.requires_grad_(True)
    conditional_loss(pc, pk, rc, rk, beta=BETA).losses.sum().backward()
    assert pc.grad is not None and pk.grad is not None
    assert pc.grad.item() == pytest.approx(-0.0475021, abs=1e-6)
    assert pk.grad.item() == pytest.approx(0.0475021, abs=1e-6)


def test_anchor_loss_with_and_without_margin() -> None:
    """Anchor on the main example's chosen answer (beta*(−10 − (−12)) = 0.2):
    delta 0:   -log sigma(0.2) = log(1 + e^-0.2) = 0.5981389;
    delta 0.5: -log sigma(0.2 - 0.5) = log(1 + e^0.3) = 0.8543552, and dL/d(policy chosen) = -beta*sigma(0.3)
    = -0.1*0.5744425 = -0.0574443. A batch is per pair: a policy equal to its reference gives ln 2 at delta 0."""
    pc, _, rc, _ = example(requires_grad=True)
    assert anchor_loss(pc, rc, BETA).item() == pytest.approx(0.5981389, abs=1e-6)
    with_margin = anchor_loss(pc, rc, BETA, margin=0.5)
    assert with_margin.item() == pytest.approx(0.8543552, abs=1e-6)
    with_margin.sum().backward()
    assert pc.grad is not None and pc.grad.item() == pytest.approx(-0.0574443, abs=1e-6)
    batch = anchor_loss(torch.tensor([-10.0, -4.0]), torch.tensor([-12.0, -4.0]), BETA)
    assert batch.tolist() == pytest.approx([0.5981389, LN2], abs=1e-6)
    with pytest.raises(ValueError, match="share one shape"):
        anchor_loss(torch.zeros(2), torch.zeros(3), BETA)
    with pytest.raises(ParamsError, match="beta must be a positive number"):
        anchor_loss(torch.zeros(2), torch.zeros(2), 0.0)


def test_total_loss_with_every_term() -> None:
    """mean(pref [0.2, 0.4]) + 1*mean(cond [1.0, 2.0]) + 2*mean(anchor [0.5, 0.7]) + 0.5*mean(sft [1.0, 3.0])
    = 0.3 + 1.5 + 1.2 + 1.0 = 4.0. A zero weight skips its term, even a NaN or missing one."""
    pref, cond = torch.tensor([0.2, 0.4]), torch.tensor([1.0, 2.0])
    anchor, sft = torch.tensor([0.5, 0.7]), torch.tensor([1.0, 3.0])
    full = total_loss(pref, sft, 0.5, conditional_losses=cond, conditional_weight=1.0, anchor_losses=anchor,
                      anchor_weight=2.0)
    assert full.item() == pytest.approx(4.0)
    nan = torch.tensor([float("nan")])
    assert total_loss(pref, None, 0.0, conditional_losses=nan, anchor_losses=None).item() == pytest.approx(0.3)
    assert total_loss(pref, None, 0.0, anchor_losses=anchor, anchor_weight=1.0).item() == pytest.approx(0.9)
    with pytest.raises(ValueError, match=re.escape("conditional_weight is 1.0 but no conditional_losses")):
        total_loss(pref, None, 0.0, conditional_weight=1.0)
    with pytest.raises(ValueError, match=re.escape("anchor_weight is 0.5 but no anchor_losses")):
        total_loss(pref, None, 0.0, anchor_weight=0.5)
    with pytest.raises(ParamsError, match=re.escape("anchor_weight must be a number >= 0, got -1.0")):
        total_loss(pref, None, 0.0, anchor_losses=anchor, anchor_weight=-1.0)


def test_token_weighted_nll_with_unit_weights_is_mean_cross_entropy() -> None:
    """With w = 1 the weighted NLL is the token-mean cross-entropy over unmasked tokens (ignore_index -100)."""
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[1, 2, -100, 4, 0], [-100, -100, 6, 3, 3]])
    mask = labels != -100
    logps = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    expected = F.cross_entropy(logits.reshape(-1, 7), labels.reshape(-1), ignore_index=-100)
    assert token_weighted_nll(logps, mask, torch.ones(2, 5)).item() == pytest.approx(expected.item(), abs=1e-6)
    assert token_weighted_nll(logps, mask).item() == pytest.approx(expected.item(), abs=1e-6)


def test_token_weighted_nll_worked_example() -> None:
    """Log-probs [-1, -2, -3, -4] with mask [1, 1, 1, 0] and weights [10, 1, 1, 1] (first answer token up-weighted):
    (10*1 + 1*2 + 1*3) / (10 + 1 + 1) = 15 / 12 = 1.25. The masked -inf does not leak in as NaN."""
    logps = torch.tensor([[-1.0, -2.0, -3.0, float("-inf")]])
    mask = torch.tensor([[True, True, True, False]])
    weights = torch.tensor([[10.0, 1.0, 1.0, 1.0]])
    assert token_weighted_nll(logps, mask, weights).item() == pytest.approx(1.25)


def test_token_weighted_nll_empty_and_shape_errors() -> None:
    """No counted token gives 0 (not NaN); mismatched shapes are an error."""
    assert token_weighted_nll(torch.tensor([[-1.0, -2.0]]), torch.zeros(1, 2)).item() == 0.0
    with pytest.raises(ValueError, match="share one shape"):
        token_weighted_nll(torch.zeros(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="weights must have the mask's shape"):
        token_weighted_nll(torch.zeros(2, 3), torch.ones(2, 3), torch.ones(3))
