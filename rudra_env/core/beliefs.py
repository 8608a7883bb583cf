"""Beliefs about counterparties (step 8): a Bernoulli posterior per counterparty slot.

Bank i holds ``belief[i, k]`` = P(the counterparty in its slot k is distressed). A bank is truly
distressed when it is dead or its equity / assets is below ``distress_threshold``. Each step
bank i receives, per slot, a signal that is right with probability q (``signal_reliability``):
with the step's uniform ``u[i, k]``, the signal says "distressed" iff ``(u < q) == truth``.
Bayes' rule in odds form, with the likelihood ratio ``LR = q / (1 - q)`` for a "distressed"
signal and its inverse otherwise (q capped just below 1):

    post = b * LR / (1 + b * (LR - 1))
    post <- (1 - leak) * post + leak * prior                       (pull towards the prior)
    post <- post + w * (1 - post)      for counterparties linked by a loan to a bank that fell
                                       this step (information contagion, w = contagion_weight)
    post <- 1                          for dead counterparties;  0 in padded slots

A *belief cascade* is a step in which at least ``cascade_fraction`` of a world's live banks see
their mean belief move by more than ``cascade_shift``; it is a ``belief_cascade`` event.
Shapes: (B, N, K) beliefs, (B, N) per bank.
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.arrays import ones
from rudra_env.core.events import StepRecord
from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState, SlotIndex

__all__ = ["belief_entropy", "mean_belief", "update_beliefs"]


def update_beliefs(
    s: NetworkState,
    p: Params,
    bs: dict[str, np.ndarray],
    hit: np.ndarray,
    u: np.ndarray,
    rec: StepRecord,
    alive_count: np.ndarray,
) -> np.ndarray:
    """Step 8 on the balance sheet ``bs`` of the state after the cascade; ``hit`` (B, N) marks
    live banks linked to a bank that fell, ``u`` (B, N, K) the signal uniforms, ``alive_count``
    (B,) ``s.alive.sum(axis=1)``. Returns (B,) bool: a belief cascade happened."""
    si = s.slot_index
    valid, cpf = si.valid, si.bank
    ratio = np.divide(
        bs["equity"], bs["assets"], out=np.zeros_like(bs["equity"]), where=bs["assets"] > 0
    )
    distressed = (~s.alive) | (ratio < p.distress_threshold)
    truth = distressed.reshape(-1)[cpf]
    q = p.signal_reliability
    says_distress = (u < q) == truth  # P(says distressed | truth) = q, else 1 - q
    qc = min(q, 1.0 - 1e-9)
    lr = np.where(says_distress, qc / (1.0 - qc), (1.0 - qc) / qc)
    old_mean = mean_belief(s.belief, si)
    b0 = s.belief
    post = b0 * lr
    post /= 1.0 + post - b0
    post *= 1.0 - p.belief_leak
    post += p.belief_leak * p.belief_prior
    if np.count_nonzero(hit):
        contagion = hit.ravel()[cpf]
        post = np.where(contagion, post + p.contagion_weight * (1.0 - post), post)
    post = np.where(s.alive.reshape(-1)[cpf], post, 1.0)
    s.belief = np.where(valid, post, 0.0)
    new_mean = mean_belief(s.belief, si)
    shift = np.abs(new_mean - old_mean) > p.cascade_shift
    live = np.maximum(alive_count, 1)
    frac = (shift & s.alive).sum(axis=1) / live
    cascade = frac >= p.cascade_fraction
    if np.count_nonzero(cascade):
        rec.add_world(
            "belief_cascade", cascade, share_shifted=frac, mean_belief=new_mean.mean(axis=1)
        )
    return cascade


def mean_belief(belief: np.ndarray, si: SlotIndex) -> np.ndarray:
    """(B, N) mean over valid slots of a (B, N, K) array that is 0 in padded slots."""
    return (belief @ ones(belief.shape[-1])) / si.count


def binary_entropy(x: np.ndarray) -> np.ndarray:
    """Entropy in bits of Bernoulli(x), elementwise."""
    x = np.clip(x, 1e-12, 1 - 1e-12)
    return -(x * np.log2(x) + (1 - x) * np.log2(1 - x))


def belief_entropy(s: NetworkState) -> np.ndarray:
    """(B, N) mean binary entropy (bits) of each bank's beliefs over its valid slots."""
    si = s.slot_index
    return mean_belief(np.where(si.valid, binary_entropy(s.belief), 0.0), si)
