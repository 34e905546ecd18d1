"""Training losses: pairwise preference losses (DPO and variants), the auxiliary SFT term, token-weighted NLL.

Every preference loss is a function of one number per pair, the log-ratio difference

    h = (log πθ(y_w|x) − log πref(y_w|x)) − (log πθ(y_l|x) − log πref(y_l|x))

where y_w is the chosen answer, y_l the rejected one, and each log π is the sum of the answer's token log-probs.
The functions here take those per-sequence log-probs (computed by the trainer) and return per-pair tensors, so the
caller decides how to reduce them and which metrics to log.

``sigmoid`` with ``label_smoothing=0`` is exactly the loss of the original HA-DPO LLaVA recipe (β = 0.1, no length
normalisation, no SFT term). The MiniGPT-4 recipe of HA-DPO adds γ·(SFT NLL). mDPO (Wang et al. 2024) adds two
terms on the chosen answer: an image-conditional preference (:func:`conditional_loss`, the chosen answer under the
real image preferred over the same answer under a corrupted one) and a reward anchor (:func:`anchor_loss`, keeping
the chosen answer's implicit reward above a margin). :func:`total_loss` combines them with their weights.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

import torch
import torch.nn.functional as F

from hadpo.errors import ParamsError

LossType = Literal["sigmoid", "ipo", "hinge", "robust"]
#: the accepted ``loss_type`` values, in documentation order.
LOSS_TYPES: tuple[str, ...] = get_args(LossType)


class PreferenceLossOutput(NamedTuple):
    """Per-pair results of :func:`preference_loss` (each a tensor of shape ``(batch,)``)."""

    losses: torch.Tensor
    """The loss of each pair (differentiable); the training loss is usually its mean."""
    chosen_rewards: torch.Tensor
    """β·(log πθ(y_w) − log πref(y_w)), detached: the implicit reward of the chosen answer."""
    rejected_rewards: torch.Tensor
    """β·(log πθ(y_l) − log πref(y_l)), detached: the implicit reward of the rejected answer."""


def check_preference_params(beta: float, loss_type: str, label_smoothing: float) -> None:
    """Raise :class:`~hadpo.errors.ParamsError` naming the bad value unless the loss settings are usable.

    ``beta`` must be positive. ``label_smoothing`` (the assumed probability that a pair's preference label is
    flipped) must lie in [0, 0.5) for ``sigmoid`` (conservative DPO) and ``robust``; at 0.5 the labels carry no
    information and the robust loss divides by zero. ``ipo`` and ``hinge`` have no smoothing form, so a non-zero
    value there is an error rather than being silently ignored.
    """
    if loss_type not in LOSS_TYPES:
        raise ParamsError(f"loss_type must be one of {list(LOSS_TYPES)}, got {loss_type!r}")
    if not (isinstance(beta, (int, float)) and beta > 0):
        raise ParamsError(f"beta must be a positive number, got {beta!r}")
    if loss_type in ("sigmoid", "robust"):
        if not 0.0 <= label_smoothing < 0.5:
            raise ParamsError(
                f"label_smoothing must be in [0, 0.5) for loss_type {loss_type!r}, got {label_smoothing!r}"
            )
    elif label_smoothing != 0.0:
        raise ParamsError(f"label_smoothing is not defined for loss_type {loss_type!r}; got {label_smoothing!r}, use 0")


def preference_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
    loss_type: LossType = "sigmoid",
    label_smoothing: float = 0.0,
) -> PreferenceLossOutput:
    """Per-pair preference losses and implicit rewards from per-sequence log-probs (all shaped ``(batch,)``).

    With ``h`` the log-ratio difference (module docstring) and ε = ``label_smoothing``:

    - ``sigmoid`` (DPO, Rafailov et al. 2023): −log σ(βh). With ε > 0 it is conservative DPO,
      −(1−ε)·log σ(βh) − ε·log σ(−βh): the expected DPO loss when each label is wrong with probability ε.
    - ``ipo`` (Azar et al. 2023): (h − 1/(2β))², regressing h onto a fixed margin instead of pushing it to ∞.
      It is applied to the log-probs as given. The IPO paper writes it on sequence log-probs (sums), which is what
      the kit's trainer passes; TRL instead averages log-probs over each answer's tokens for IPO. To get TRL's form,
      pass per-token mean log-probs.
    - ``hinge`` (SLiC / RSO): relu(1 − βh).
    - ``robust`` (Chowdhury et al. 2024, provably robust DPO):
      (−(1−ε)·log σ(βh) + ε·log σ(−βh)) / (1 − 2ε), an unbiased estimate of the clean-label DPO loss when
      labels are flipped with probability ε. At ε = 0 it equals ``sigmoid``.

    The rewards are β·(policy − reference) per answer, detached so logging them costs no graph.
    Raises :class:`~hadpo.errors.ParamsError` for an unknown ``loss_type`` or a bad ``beta``/``label_smoothing``,
    and ``ValueError`` if the four tensors differ in shape.
    """
    check_preference_params(beta, loss_type, label_smoothing)
    shapes = {t.shape for t in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)}
    if len(shapes) != 1:
        raise ValueError(f"policy and reference log-probs must share one shape, got {sorted(map(tuple, shapes))}")

    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    h = chosen_logratios - rejected_logratios
    eps = label_smoothing

    if loss_type == "sigmoid":
        # logsigmoid is the numerically stable −softplus(−x); never compute log(sigmoid(x)) directly.
        losses = -(1.0 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)
    elif loss_type == "ipo":
        losses = (h - 1.0 / (2.0 * beta)) ** 2
    elif loss_type == "hinge":
        losses = torch.relu(1.0 - beta * h)
    else:  # robust
        losses = (-(1.0 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1.0 - 2.0 * eps)

    return PreferenceLossOutput(
        losses=losses,
        chosen_rewards=(beta * chosen_logratios).detach(),
        rejected_rewards=(beta * rejected_logratios).detach(),
    )


def sft_loss(chosen_logps: torch.Tensor, chosen_token_counts: torch.Tensor) -> torch.Tensor:
    """Per-pair SFT loss: the mean negative log-likelihood per token of the chosen answer.

    ``chosen_logps`` is the summed log-prob of each chosen answer (as passed to :func:`preference_loss`) and
    ``chosen_token_counts`` the number of answer tokens it sums over. A count of 0 (a fully masked answer, which
    the collator should never produce) is treated as 1, so it contributes 0 rather than NaN to the batch mean.
    """
    if chosen_logps.shape != chosen_token_counts.shape:
        raise ValueError(
            f"chosen_logps and chosen_token_counts must share one shape, got "
            f"{tuple(chosen_logps.shape)} and {tuple(chosen_token_counts.shape)}"
        )
    counts = chosen_token_counts.to(chosen_logps.dtype).clamp(min=1.0)
    return -chosen_logps / counts


def conditional_loss(
    policy_chosen_logps: torch.Tensor,
    policy_corrupted_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_corrupted_logps: torch.Tensor,
    beta: float,
    loss_type: LossType = "sigmoid",
    label_smoothing: float = 0.0,
) -> PreferenceLossOutput:
    """mDPO's image-conditional preference: the chosen answer y_w under the real image m over y_w under a corrupted m'.

    With the log-ratio difference

        h_c = (log πθ(y_w|m) − log πref(y_w|m)) − (log πθ(y_w|m') − log πref(y_w|m'))

    the loss has the shape the main preference loss has (the same ``loss_type`` and ``label_smoothing``; for
    ``sigmoid`` it is mDPO's −log σ(β·h_c)). It *is* :func:`preference_loss` with the corrupted-image log-probs
    of the chosen answer in the rejected slot: the "rejected" sequence is the same text conditioned on less of
    the image. ``chosen_rewards`` is β·(real-image log-ratio) and ``rejected_rewards`` β·(corrupted-image
    log-ratio), both detached; their difference is the conditional reward margin.
    """
    return preference_loss(policy_chosen_logps, policy_corrupted_logps, ref_chosen_logps, ref_corrupted_logps, beta,
                           loss_type, label_smoothing)


def anchor_loss(
    policy_chosen_logps: torch.Tensor, ref_chosen_logps: torch.Tensor, beta: float, margin: float = 0.0
) -> torch.Tensor:
    """mDPO's reward anchor per pair: −log σ(β·(log πθ(y_w) − log πref(y_w)) − δ), δ = ``margin``.

    Always the sigmoid form, whatever the preference ``loss_type``: it is not a preference between two answers
    but a floor on the chosen answer's own implicit reward, against DPO's tendency to lower the chosen
    likelihood along with the rejected one (mDPO uses δ = 0).
    """
    if policy_chosen_logps.shape != ref_chosen_logps.shape:
        raise ValueError(
            f"policy and reference log-probs must share one shape, got {tuple(policy_chosen_logps.shape)} and "
            f"{tuple(ref_chosen_logps.shape)}"
        )
    if not (isinstance(beta, (int, float)) and beta > 0):
        raise ParamsError(f"beta must be a positive number, got {beta!r}")
    return -F.logsigmoid(beta * (policy_chosen_logps - ref_chosen_logps) - margin)


def total_loss(
    pref_losses: torch.Tensor,
    sft_losses: torch.Tensor | None,
    gamma: float,
    *,
    conditional_losses: torch.Tensor | None = None,
    conditional_weight: float = 0.0,
    anchor_losses: torch.Tensor | None = None,
    anchor_weight: float = 0.0,
) -> torch.Tensor:
    """The scalar training loss: mean(pref) + w_c·mean(conditional) + w_a·mean(anchor) + γ·mean(sft).

    HA-DPO's MiniGPT-4 recipe adds the SFT term (γ = 0.5) against instability; its LLaVA recipe uses γ = 0; mDPO
    uses w_c = w_a = 1. A term whose weight is 0 is not evaluated at all: its losses may be ``None`` (no extra
    graph, no NaN leaking in). A term with a positive weight and no losses is a caller bug (``ValueError``).
    """
    weighted = (("gamma", gamma, sft_losses, "sft_losses"),
                ("conditional_weight", conditional_weight, conditional_losses, "conditional_losses"),
                ("anchor_weight", anchor_weight, anchor_losses, "anchor_losses"))
    for name, weight, _, _ in weighted:
        if not (isinstance(weight, (int, float)) and weight >= 0):
            raise ParamsError(f"{name} must be a number >= 0, got {weight!r}")
    loss = pref_losses.mean()
    # Summed in the order of the docstring: conditional, anchor, then SFT.
    for name, weight, losses, what in (weighted[1], weighted[2], weighted[0]):
        if weight == 0:
            continue
        if losses is None:
            raise ValueError(f"{name} is {weight!r} but no {what} were given")
        loss = loss + weight * losses.mean()
    return loss


def token_weighted_nll(
    logps_per_token: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted mean NLL over all unmasked tokens of a batch: Σ w·m·(−log p) / Σ w·m (a scalar).

    ``logps_per_token`` holds the log-prob of each target token, ``mask`` is 1 (or True) on the tokens that count
    (answer tokens) and 0 on prompt, image and padding tokens, and ``weights`` (default all ones) scales each
    token, e.g. up-weighting the first answer token of short POPE answers. With unit weights this is the token-mean
    cross-entropy that ``F.cross_entropy(..., ignore_index=-100)`` returns. A batch with no weighted token gives 0.
    """
    if logps_per_token.shape != mask.shape:
        raise ValueError(
            f"logps_per_token and mask must share one shape, got {tuple(logps_per_token.shape)} and {tuple(mask.shape)}"
        )
    w = mask.to(logps_per_token.dtype)
    if weights is not None:
        if weights.shape != mask.shape:
            raise ValueError(f"weights must have the mask's shape {tuple(mask.shape)}, got {tuple(weights.shape)}")
        w = w * weights.to(logps_per_token.dtype)
    # Masked positions may hold garbage log-probs (e.g. gathered at a clamped -100 label); zero them explicitly
    # so a -inf there cannot turn 0·inf into NaN.
    nll = torch.where(w != 0, -logps_per_token, torch.zeros_like(logps_per_token))
    return (w * nll).sum() / w.sum().clamp(min=torch.finfo(w.dtype).tiny)
