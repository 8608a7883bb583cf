r"""Nash equilibria of the one-step game, as pure functions over a ``Game`` (``agents.games``).

The game
--------
At a state, every live bank i picks one action a_i from its candidate set C_i (its legal
actions; HOLD always). The payoff is the env's own utility (DESIGN section 5) for the step that
the joint profile a = (a_1, ..., a_N) produces,

    u_i(a) = U_i(step(state, a, noise)),

with the step's randomness ``noise`` drawn once and shared by every profile that is scored
(common random numbers), so that u is a deterministic finite game; with S scenarios, u_i is the
mean over S shared draws (a sample-average estimate of the expected utility).

Deviation gain and epsilon
--------------------------
For a pure profile a, bank i's best deviation gain is

    g_i(a) = max_{c in C_i} u_i(c, a_{-i}) - u_i(a)  >= 0        (c = a_i gives 0),

and ``epsilon(a) = max_i g_i(a)`` (the NashConv terms' maximum). a is a pure Nash equilibrium
iff epsilon(a) = 0: no bank gains by deviating alone. No unilateral deviation gains more than
epsilon, by definition. All g_i come from one batch of worlds: world (i, c) is a with a_i
replaced by c (``Game.deviation_payoffs``).

For a mixed profile sigma (sigma_i a distribution over C_i, independent across banks),

    epsilon(sigma) = max_i [ max_c E_{a_{-i} ~ sigma_{-i}} u_i(c, a_{-i})
                             - sum_c sigma_i(c) E_{a_{-i} ~ sigma_{-i}} u_i(c, a_{-i}) ],

exact for games that offer ``expected_deviation_payoffs`` (``MatrixGame``), otherwise estimated by
Monte Carlo over sampled profiles a ~ sigma (the same samples serve every c, because
u_i(c, a_{-i}) does not depend on a_i).

Best-response iteration (block Gauss-Seidel with shortlists)
------------------------------------------------------------
From a start profile (HOLD, the heuristic, or any), each sweep visits the player banks in a
seeded random order. Banks are taken in consecutive *blocks* whose deviation worlds fit one
batch (``block_worlds``); a block's deviations are scored in one core call against the current
profile and each bank in it whose gain exceeds ``tol`` switches to its best candidate (ties keep
the current action). The next block sees the switched profile. With blocks of one bank this is
the classical sequential best-response dynamics; larger blocks update their banks
simultaneously (Jacobi inside a block), which needs fewer core calls.

Shortlists: a bank's first scoring covers all its candidates and keeps its ``shortlist`` best;
after a sweep with switches, the next *search* sweep scores only shortlists (a fraction of the
worlds). When a search sweep switches nobody, the next sweep is *full* again, so nothing outside
the shortlists is missed. A bank whose best shortlisted payoff falls below what its best
unlisted candidate paid at its last full scoring (the others' switches have moved its payoffs a
lot, e.g. it would now default) is scored fully again in the next sweep. Shortlists may also be
given up front (``shortlists``: a warm start from a previous, similar game); the first sweep is
then a search sweep for those banks.

Stopping: the iteration has *converged* once every player has been fully scored against the
current profile with nobody switching since — then every recorded gain is <= tol, the profile
is a pure equilibrium (up to tol) and epsilon is the largest recorded gain, with no extra call.
(A bank that switches alone in its block stays verified: its own payoffs u_i(c, a_{-i}) do not
depend on a_i.) Otherwise the run stops on a detected *cycle* — some bank switches back, for
the second time, to an action it had left — or at ``max_sweeps``. Joint moves inside a block can
cause such oscillation by themselves (two banks that should coordinate switch past each other),
so when it happens after a joint move, the banks that went back to an earlier action are
*isolated* — from then on they are scored in blocks of their own in which only the bank with the
largest gain switches (one switch at a time, as in sequential best responses), while the other
banks stay in joint blocks — and the counts restart. A cycle is declared when banks oscillate
although every one of them is already isolated (with ``block_banks=1``, a cycle of the classical
sequential best-response dynamics). Scoring isolated banks together keeps the number of core
calls per sweep near (worlds scored / ``block_worlds``) instead of one call per isolated bank.

Mixed fallback (regret matching)
--------------------------------
When no pure equilibrium is found, with ``mixed="regret_matching"`` the banks caught in the
cycle (on a detected cycle: those that switched back or switched in the last sweep; at the sweep
cap: those that ever switched back, else those that switched in the last sweep) run regret
matching (Hart & Mas-Colell, 2000) over the actions they held while the best responses cycled
(since the last isolation of oscillating banks) while every other bank
keeps its last best response: at round t a profile a^t ~ sigma^t is sampled, the players'
deviations are scored in one call, cumulative regrets R_i(c) += u_i(c, a^t_{-i}) - u_i(a^t)
accumulate, and sigma^{t+1}_i is proportional to the positive part of R_i (uniform if none is
positive). The time-average of sigma^t is the mixed profile, reported as ``kind = "mixed"``,
``converged = False``, with its epsilon over every bank's full candidate set (exact for matrix
games, otherwise a Monte Carlo estimate over ``mixed_samples`` sampled profiles — each a full
scoring, so few samples keep the fallback fast but make the estimate rough). In two-player
zero-sum games the average converges to a Nash equilibrium; in general games regret matching
converges to the set of coarse correlated equilibria, so the reported epsilon is what tells how
close to Nash the product profile is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from agents.games import Game
from rudra_env.errors import ConfigError

__all__ = [
    "Equilibrium",
    "best_response",
    "deviation_gains",
    "epsilon",
    "mixed_epsilon",
    "regret_matching",
    "sample_profile",
    "stage_equilibrium",
]

MixedMethod = Literal["regret_matching", "none"]


@dataclass
class Equilibrium:
    """Result of ``stage_equilibrium``."""

    kind: Literal["pure", "mixed"]
    """"pure": ``profile`` is the answer; "mixed": ``strategy`` is (regret-matching fallback)."""
    converged: bool
    """True iff best-response iteration reached a pure equilibrium (epsilon <= tol)."""
    iterations: int
    """Best-response sweeps started."""
    epsilon: float
    """Largest gain any bank could still get by deviating alone (see the module docstring)."""
    epsilon_estimated: bool
    """True if epsilon is a Monte Carlo estimate (mixed profile of a sampled game)."""
    profile: np.ndarray
    """(N,) candidate indices of the pure profile (for "mixed": each bank's most likely one)."""
    actions: np.ndarray
    """(N,) flat actions of ``profile``."""
    gains: np.ndarray
    """(N,) each bank's best deviation gain at the returned profile."""
    candidates: np.ndarray | None = None
    """(N, C) the game's candidate actions (``profile`` and ``strategy`` index its columns)."""
    strategy: np.ndarray | None = None
    """(N, C) mixed profile over candidates ("mixed" only)."""
    evaluations: int = 0
    """Bank best-response evaluations made."""
    block_banks: int = 0
    """Largest block (banks scored together) of the last sweep."""
    isolated: int = 0
    """Banks isolated after oscillating (scored in blocks where one switches at a time)."""
    mixed_iterations: int = 0
    """Regret-matching rounds ("mixed" only)."""
    mixed_players: np.ndarray | None = None
    """Banks that randomise in the mixed profile: those caught in the best-response cycle
    ("mixed" only); every other bank plays its last best response."""
    stop: str = "converged"
    """Why the iteration stopped: "converged", "cycle" (a bank switched back to an action it
    had left for the second time, under one-bank blocks) or "max_sweeps"."""
    history: list[float] = field(default_factory=list)
    """Sum over banks of the gains of the switches made in each sweep."""
    shortlists: np.ndarray | None = None
    """(N, C) bool: each bank's shortlist at the end (a warm start for a similar game)."""

    def summary(self) -> dict[str, float | int | bool | str]:
        """Scalars for logs and benchmarks."""
        return {
            "kind": self.kind,
            "converged": self.converged,
            "stop": self.stop,
            "iterations": self.iterations,
            "epsilon": self.epsilon,
            "epsilon_estimated": self.epsilon_estimated,
            "evaluations": self.evaluations,
            "mixed_iterations": self.mixed_iterations,
            "isolated": self.isolated,
            "mixed_players": 0 if self.mixed_players is None else len(self.mixed_players),
        }


# ----------------------------------------------------------------------------- pure functions
def deviation_gains(
    game: Game,
    profile: np.ndarray,
    banks: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best deviations of ``banks`` (default: all) from a pure profile, in one scoring call.

    Returns ``(best, gain, payoffs)``: best (n,) candidate index maximising u_i(c, a_{-i}) (the
    current index on ties), gain (n,) = g_i(a) >= 0, payoffs (n, C) with NaN for invalid c.
    ``allowed`` (n, C) bool restricts the deviations scored (the current one always is).
    """
    best, gain, pay, _ = _deviations(game, profile, banks, allowed)
    return best, gain, pay


def _deviations(
    game: Game, profile: np.ndarray, banks: np.ndarray | None, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``deviation_gains`` plus the (n, C) payoffs with -inf for every candidate not scored."""
    profile = np.asarray(profile, dtype=np.int64)
    banks = np.arange(len(profile)) if banks is None else np.asarray(banks, dtype=np.int64)
    pay = game.deviation_payoffs(profile, banks, allowed)
    current = pay[np.arange(len(banks)), profile[banks]]
    scored = np.where(game.valid[banks] & ~np.isnan(pay), pay, -np.inf)
    best = scored.argmax(axis=1)
    gain = np.maximum(scored[np.arange(len(banks)), best] - current, 0.0)
    best = np.where(gain > 0, best, profile[banks])
    return best, gain, pay, scored


def best_response(
    game: Game,
    profile: np.ndarray,
    banks: np.ndarray | None = None,
    tol: float = 0.0,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(best candidate index, gain) of each listed bank against ``profile``; a bank whose gain is
    <= ``tol`` keeps its current candidate. ``allowed`` as in ``deviation_gains``."""
    profile = np.asarray(profile, dtype=np.int64)
    banks = np.arange(len(profile)) if banks is None else np.asarray(banks, dtype=np.int64)
    best, gain, _ = deviation_gains(game, profile, banks, allowed)
    return np.where(gain > tol, best, profile[banks]), gain


def epsilon(game: Game, profile: np.ndarray) -> float:
    """epsilon(a) = max_i g_i(a) of a pure profile (0 at a pure Nash equilibrium)."""
    _, gain, _ = deviation_gains(game, profile)
    return float(gain.max(initial=0.0))


def sample_profile(strategy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N,) candidate indices drawn independently from each row of ``strategy`` (N, C)."""
    cdf = np.cumsum(strategy, axis=1)
    u = rng.random(len(strategy)) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=1), strategy.shape[1] - 1)


def _expected_deviation_payoffs(
    game: Game, strategy: np.ndarray, rng: np.random.Generator, samples: int
) -> tuple[np.ndarray, bool]:
    exact = getattr(game, "expected_deviation_payoffs", None)
    if exact is not None:
        return exact(strategy), False
    n = len(strategy)
    total = np.zeros(strategy.shape)
    for _ in range(samples):
        prof = sample_profile(strategy, rng)
        total += np.nan_to_num(game.deviation_payoffs(prof, np.arange(n)))
    return total / samples, True


def mixed_epsilon(
    game: Game, strategy: np.ndarray, rng: np.random.Generator | None = None, samples: int = 16
) -> tuple[float, np.ndarray, bool]:
    """epsilon of a mixed profile (N, C): ``(epsilon, gains (N,), estimated)``.

    Exact if the game has ``expected_deviation_payoffs``; otherwise a Monte Carlo estimate over
    ``samples`` profiles drawn from ``strategy`` (one scoring call each).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    ev, estimated = _expected_deviation_payoffs(game, strategy, rng, samples)
    ev = np.where(game.valid, ev, -np.inf)
    value = (np.where(game.valid, strategy, 0.0) * np.where(game.valid, ev, 0.0)).sum(axis=1)
    gains = np.maximum(ev.max(axis=1) - value, 0.0)
    return float(gains.max(initial=0.0)), gains, estimated


def regret_matching(
    game: Game,
    iters: int,
    rng: np.random.Generator,
    *,
    players: np.ndarray | None = None,
    support: np.ndarray | None = None,
    base: np.ndarray | None = None,
) -> np.ndarray:
    """Time-averaged regret-matching strategy (N, C) after ``iters`` sampled rounds.

    ``players`` (default: all) randomise over ``support`` (N, C) bool (default: every valid
    candidate); every other bank plays its candidate in ``base`` (default 0). Each round samples
    a profile and scores every player's supported deviations in one call. Rows of non-players
    are one-hot at ``base``.
    """
    valid = game.valid
    n, c = valid.shape
    players = np.arange(n) if players is None else np.asarray(players, dtype=np.int64)
    base = np.zeros(n, dtype=np.int64) if base is None else np.asarray(base, dtype=np.int64)
    sup = valid.copy() if support is None else np.asarray(support, dtype=bool) & valid
    sup[np.arange(n), base] = True
    sp = sup[players]
    k = np.arange(len(players))
    uniform = sp / sp.sum(axis=1, keepdims=True)
    sigma = uniform.copy()
    regret = np.zeros(sp.shape)
    avg = np.zeros(sp.shape)
    prof = base.copy()
    for _ in range(iters):
        avg += sigma
        prof[players] = sample_profile(sigma, rng)
        pay = game.deviation_payoffs(prof, players, sp)
        current = pay[k, prof[players]]
        regret += np.where(sp, np.nan_to_num(pay - current[:, None]), 0.0)
        pos = np.maximum(regret, 0.0) * sp
        tot = pos.sum(axis=1, keepdims=True)
        sigma = np.where(tot > 0, pos / np.where(tot > 0, tot, 1.0), uniform)
    out = np.zeros((n, c))
    out[np.arange(n), base] = 1.0
    out[players] = avg / max(iters, 1)
    return out


def _blocks(
    order: np.ndarray,
    cost: np.ndarray,
    cap_worlds: int,
    cap_banks: int,
    alone: np.ndarray | None = None,
) -> list[tuple[np.ndarray, bool]]:
    """Split ``order`` into consecutive blocks of at most ``cap_banks`` banks whose summed
    ``cost`` stays within ``cap_worlds`` (a bank costlier than the cap gets its own block).
    Banks marked in ``alone`` (N,) bool are blocked separately, after the others, and their
    blocks are flagged (True): in them only one bank may switch."""
    groups = (
        [(order, False)]
        if alone is None
        else [(order[~alone[order]], False), (order[alone[order]], True)]
    )
    out = []
    for grp, single in groups:
        if len(grp) == 0:
            continue
        c = cost[grp]
        start = np.cumsum(c) - c
        by_worlds = start // max(cap_worlds, 1)
        by_banks = np.arange(len(grp)) // max(cap_banks, 1)
        cut = (np.diff(by_worlds) != 0) | (np.diff(by_banks) != 0)
        out += [(blk, single) for blk in np.split(grp, np.nonzero(cut)[0] + 1)]
    return out


def stage_equilibrium(
    game: Game,
    start: np.ndarray | None = None,
    *,
    rng: np.random.Generator | None = None,
    max_sweeps: int = 10,
    tol: float = 1e-9,
    block_worlds: int = 128,
    block_banks: int | None = None,
    shortlist: int | None = 6,
    shortlists: np.ndarray | None = None,
    mixed: MixedMethod = "regret_matching",
    mixed_iters: int = 32,
    mixed_samples: int = 1,
) -> Equilibrium:
    """A Nash equilibrium of ``game`` by block Gauss-Seidel best responses (module docstring).

    Args:
        game: the payoff oracle.
        start: (N,) candidate indices to start from (default: all 0, i.e. HOLD).
        rng: seeded generator (sweep orders, mixed sampling); default seed 0.
        max_sweeps: iteration cap (sweeps of either kind), >= 1.
        tol: a deviation must gain more than this to count (utility units), >= 0.
        block_worlds: most deviation worlds scored per block (one core call), >= 1.
        block_banks: most banks per block (default: no limit beyond ``block_worlds``).
        shortlist: after a bank's full scoring, search sweeps score only its ``shortlist`` best
            candidates (and its current one); a full sweep verifies before convergence is
            declared, so the answer is exact. None scores every candidate in every sweep.
        shortlists: (N, C) bool initial shortlists (ignored when ``shortlist`` is None): a bank
            with any listed candidate besides its start one skips its first full scoring.
        mixed: fallback when no pure equilibrium is found: "regret_matching" or "none".
        mixed_iters: regret-matching rounds, >= 1.
        mixed_samples: sampled profiles for a Monte Carlo mixed epsilon, >= 1 (each is one full
            scoring of every bank).
    """
    for name, v, lo in (
        ("max_sweeps", max_sweeps, 1),
        ("block_worlds", block_worlds, 1),
        ("mixed_iters", mixed_iters, 1),
        ("mixed_samples", mixed_samples, 1),
    ):
        if not (isinstance(v, int | np.integer) and v >= lo):
            raise ConfigError(f"{name} = {v!r} is not allowed: expected an integer >= {lo}")
    if shortlist is not None and not (isinstance(shortlist, int | np.integer) and shortlist >= 1):
        raise ConfigError(
            f"shortlist = {shortlist!r} is not allowed: expected an integer >= 1 or None"
        )
    if not tol >= 0:
        raise ConfigError(f"tol = {tol!r} is not allowed: expected a number >= 0")
    if mixed not in ("regret_matching", "none"):
        raise ConfigError(f"mixed = {mixed!r} is not allowed: expected 'regret_matching' or 'none'")
    rng = np.random.default_rng(0) if rng is None else rng
    valid = game.valid
    n, c = valid.shape
    profile = np.zeros(n, dtype=np.int64) if start is None else np.array(start, dtype=np.int64)
    if (
        profile.shape != (n,)
        or (profile < 0).any()
        or (profile >= c).any()
        or not valid[np.arange(n), profile].all()
    ):
        raise ConfigError(
            f"start = {profile.tolist()} is not allowed: expected {n} valid candidate indices"
        )
    players = np.nonzero(valid.sum(axis=1) > 1)[0]
    cap_banks = n if block_banks is None else max(1, int(block_banks))
    allowed = valid.copy()  # each bank's shortlist (valid until scored)
    listed = np.zeros(n, dtype=bool)  # has a shortlist
    outside = np.full(n, -np.inf)  # best unlisted payoff at the last full scoring
    if shortlists is not None and shortlist is not None:
        given = np.asarray(shortlists, dtype=bool)
        if given.shape != (n, c):
            raise ConfigError(f"shortlists has shape {given.shape}: expected ({n}, {c})")
        given = given & valid
        given[np.arange(n), profile] = True
        listed = given.sum(axis=1) > 1
        allowed[listed] = given[listed]
    checked = np.zeros(n, dtype=bool)  # fully scored against the current profile
    gains = np.zeros(n)
    last_moved = np.full(n, -1)  # sweep of each bank's last switch
    held = np.zeros((n, c), dtype=bool)  # candidates each bank has held
    held[np.arange(n), profile] = True
    returns = np.zeros(n, dtype=np.int64)  # switches back to an action held before
    joint = False  # a block switched several banks at once
    alone = np.full(n, cap_banks == 1)  # isolated: scored in a block of its own
    cycle: np.ndarray | None = None
    evaluations, sweeps, used = 0, 0, 1
    history: list[float] = []
    stop = "converged" if len(players) == 0 else "max_sweeps"
    quiet = shortlist is None  # last search sweep switched nobody
    while stop == "max_sweeps" and sweeps < max_sweeps:
        sweeps += 1
        full_sweep = quiet
        scope = np.where(full_sweep | ~listed[:, None], valid, allowed)
        cost = scope.sum(axis=1) - 1
        switched_gain, used = 0.0, 1
        moved = np.zeros(n, dtype=bool)
        for blk, single in _blocks(rng.permutation(players), cost, block_worlds, cap_banks, alone):
            blk = blk[~checked[blk]]
            if len(blk) == 0:
                continue
            used = max(used, len(blk))
            best, gain, _, scored = _deviations(game, profile, blk, scope[blk])
            best = np.where(gain > tol, best, profile[blk])
            evaluations += len(blk)
            full = full_sweep | ~listed[blk]
            if shortlist is not None and full.any():
                fb = blk[full]
                ranked = np.argsort(-scored[full], axis=1, kind="stable")
                allowed[fb] = _with_top(valid[fb], ranked[:, :shortlist])
                listed[fb] = True
                unlisted = np.take_along_axis(
                    scored[full], ranked[:, shortlist : shortlist + 1], axis=1
                )
                outside[fb] = unlisted[:, 0] if unlisted.shape[1] else -np.inf
            # A shortlist whose best payoff fell below what the best unlisted candidate paid
            # at the bank's last full scoring may be stale: score that bank fully next time.
            listed[blk[~full & (scored.max(axis=1) < outside[blk])]] = False
            move = best != profile[blk]
            if single and move.sum() > 1:  # isolated banks: one switch at a time
                move = np.arange(len(blk)) == np.argmax(np.where(move, gain, -np.inf))
            if not move.any():
                checked[blk[full]] = True
                gains[blk[full]] = gain[full]
            else:
                movers = blk[move]
                returns[movers] += held[movers, best[move]]
                joint |= len(movers) > 1
                held[movers, best[move]] = True
                profile[movers] = best[move]
                allowed[movers, best[move]] = True
                moved[movers] = True
                last_moved[movers] = sweeps
                switched_gain += float(gain[move].sum())
                checked[:] = False
                gains[:] = 0.0
                if len(movers) == 1 and full[move][0]:
                    # A lone mover's own deviation payoffs u_i(c, a_-i) do not depend on a_i,
                    # so its full scoring still holds at the new profile, where its gain is 0.
                    checked[movers] = True
            if checked[players].all():
                stop = "converged"
                break
        history.append(switched_gain)
        quiet = shortlist is None or not moved.any()
        if stop == "converged" or returns.max(initial=0) < 2:
            continue
        # A bank went back to an action it had left, twice: the dynamics oscillate.
        went_back = returns > 0
        if joint and not alone[went_back].all():  # may be an artefact of joint moves
            alone |= went_back
            joint = False
            returns[:] = 0
            held[:] = False
            held[np.arange(n), profile] = True
            continue
        stop, cycle = "cycle", np.nonzero((returns > 0) | moved)[0]
    actions = game.candidates[np.arange(n), profile]
    common = {
        "candidates": game.candidates,
        "block_banks": used,
        "history": history,
        "stop": stop,
        "shortlists": allowed & listed[:, None],
        "isolated": int(alone.sum()) if cap_banks > 1 else 0,
    }
    if stop == "converged":
        return Equilibrium(
            "pure",
            True,
            sweeps,
            float(gains.max(initial=0.0)),
            False,
            profile,
            actions,
            gains,
            evaluations=evaluations,
            **common,
        )
    if cycle is None:  # the cap: who oscillated, else who moved last
        cycle = np.nonzero(returns > 0)[0]
        if len(cycle) == 0:
            cycle = np.nonzero(last_moved >= sweeps - 1)[0]
    if mixed == "none" or len(cycle) == 0:
        _, gains, _ = deviation_gains(game, profile)
        return Equilibrium(
            "pure",
            False,
            sweeps,
            float(gains.max(initial=0.0)),
            False,
            profile,
            actions,
            gains,
            evaluations=evaluations + len(players),
            **common,
        )
    strategy = regret_matching(game, mixed_iters, rng, players=cycle, support=held, base=profile)
    m_eps, m_gains, estimated = mixed_epsilon(game, strategy, rng, mixed_samples)
    mode = np.where(valid, strategy, -1.0).argmax(axis=1)
    return Equilibrium(
        "mixed",
        False,
        sweeps,
        m_eps,
        estimated,
        mode,
        game.candidates[np.arange(n), mode],
        m_gains,
        strategy=strategy,
        evaluations=evaluations,
        mixed_iterations=mixed_iters,
        mixed_players=cycle,
        **common,
    )


def _with_top(valid: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """(n, C) bool: the ranked columns of each row, restricted to valid candidates."""
    out = np.zeros(valid.shape, dtype=bool)
    np.put_along_axis(out, ranked, True, axis=1)
    return out & valid
