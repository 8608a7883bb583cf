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
cap: those that switched back since the last isolation, else those that switched in the last two
sweeps) run regret matching (Hart & Mas-Colell, 2000) over the actions they held while the best
responses cycled (since the last isolation of oscillating banks) while every other bank keeps
its last best response: at round t a profile a^t ~ sigma^t is sampled, the players'
deviations are scored in one call, cumulative regrets R_i(c) += u_i(c, a^t_{-i}) - u_i(a^t)
accumulate, and sigma^{t+1}_i is proportional to the positive part of R_i (uniform if none is
positive). The time-average of sigma^t is the mixed profile, reported as ``kind = "mixed"``,
``converged = False``, with its epsilon over every bank's full candidate set (exact for matrix
games, otherwise a Monte Carlo estimate over ``mixed_samples`` sampled profiles — each a full
scoring, so few samples keep the fallback fast but make the estimate rough). In two-player
zero-sum games the average converges to a Nash equilibrium; in general games regret matching
converges to the set of coarse correlated equilibria, so the reported epsilon is what tells how
close to Nash the product profile is.

The code
--------
``stage_equilibrium`` is a short driver over named parts: ``start_search`` builds the
``SearchState`` (profile, shortlists, checked banks, cycle counters) from the start profile and a
frozen ``SolverOptions``; ``sweep`` runs one sweep, scoring each block with ``score_block``;
``detect_cycle`` isolates oscillating banks or declares a cycle; at the end ``cycling_banks`` and
``mixed_fallback`` give the mixed result when no pure equilibrium was found.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from agents.games import Game
from rudra_env.errors import ConfigError

__all__ = [
    "Equilibrium",
    "SearchState",
    "SolverOptions",
    "best_response",
    "cycling_banks",
    "detect_cycle",
    "deviation_gains",
    "epsilon",
    "mixed_epsilon",
    "mixed_fallback",
    "regret_matching",
    "sample_profile",
    "score_block",
    "stage_equilibrium",
    "start_search",
    "sweep",
]

MixedMethod = Literal["regret_matching", "none"]
MIXED_METHODS: tuple[str, ...] = ("regret_matching", "none")
"""Values of ``SolverOptions.mixed``."""


def _whole(value: object) -> bool:
    """True for an integer >= 1 (Python or NumPy; bools are not integers here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class SolverOptions:
    """Knobs of ``stage_equilibrium``, validated once here: a bad value raises ``ConfigError``
    naming the field, the value and what is allowed."""

    max_sweeps: int = 10
    """Best-response sweep cap (search and full sweeps alike), an integer >= 1. Calm states of
    the env converge in 4-9 sweeps at N = 100; when best responses cycle the cap bounds the cost."""
    tol: float = 1e-9
    """Smallest deviation gain that counts as an improvement, in utility units, >= 0."""
    block_worlds: int = 128
    """Most deviation worlds scored per block (one scoring call), an integer >= 1."""
    block_banks: int | None = None
    """Most banks per block, an integer >= 1, or None: no limit beyond ``block_worlds``. 1 gives
    the classical sequential best-response dynamics (every bank isolated from the start)."""
    shortlist: int | None = 6
    """Candidates per bank kept after its full scoring (its best ones; its current candidate is
    always scored too), an integer >= 1: search sweeps score only these, and a full sweep
    verifies before convergence is declared, so the answer is exact. None scores every
    candidate in every sweep."""
    mixed: MixedMethod = "regret_matching"
    """Fallback when no pure equilibrium is found: "regret_matching" (the cycling banks mix) or
    "none" (return the last best-response profile)."""
    mixed_iters: int = 32
    """Regret-matching rounds of the fallback, an integer >= 1 (each scores the cycling banks
    only)."""
    mixed_samples: int = 1
    """Sampled profiles of the Monte Carlo mixed epsilon, an integer >= 1 (each one full scoring
    of every bank; exact games such as ``MatrixGame`` need none)."""

    def __post_init__(self) -> None:
        for name in ("max_sweeps", "block_worlds", "mixed_iters", "mixed_samples"):
            value = getattr(self, name)
            if not _whole(value):
                raise ConfigError(f"{name} = {value!r} is not allowed: expected an integer >= 1")
            object.__setattr__(self, name, int(value))
        for name in ("block_banks", "shortlist"):
            value = getattr(self, name)
            if value is not None and not _whole(value):
                raise ConfigError(
                    f"{name} = {value!r} is not allowed: expected an integer >= 1 or None"
                )
            object.__setattr__(self, name, None if value is None else int(value))
        tol = self.tol
        if not (isinstance(tol, numbers.Real) and not isinstance(tol, bool) and tol >= 0):
            raise ConfigError(f"tol = {tol!r} is not allowed: expected a number >= 0")
        object.__setattr__(self, "tol", float(tol))
        if self.mixed not in MIXED_METHODS:
            raise ConfigError(
                f"mixed = {self.mixed!r} is not allowed: expected one of {MIXED_METHODS}"
            )


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


# ----------------------------------------------------------------------------- the solver
@dataclass
class SearchState:
    """Where best-response iteration stands; ``sweep`` and ``detect_cycle`` update it in place.

    Per-bank arrays are (N,) or (N, C) over the game's candidates. "Since the last isolation"
    means since ``detect_cycle`` last isolated oscillating banks (or since the start).
    """

    profile: np.ndarray
    """(N,) int: the candidate index each bank plays now."""
    players: np.ndarray
    """(P,) int: banks with more than one valid candidate (the others never move)."""
    block_banks: int
    """Most banks per block (``SolverOptions.block_banks``; N when that is None)."""
    allowed: np.ndarray
    """(N, C) bool: each listed bank's shortlist (every valid candidate until first listed)."""
    listed: np.ndarray
    """(N,) bool: the bank has a shortlist, so search sweeps score only ``allowed``."""
    outside: np.ndarray
    """(N,) utility: best unlisted payoff at the bank's last full scoring (-inf if none)."""
    held: np.ndarray
    """(N, C) bool: candidates each bank has played since the last isolation."""
    alone: np.ndarray
    """(N,) bool: isolated banks, scored in blocks where only one bank switches."""
    checked: np.ndarray = field(init=False)
    """(N,) bool: fully scored against the current profile, nobody switching since."""
    gains: np.ndarray = field(init=False)
    """(N,) utility: each checked bank's best deviation gain (0 for the others)."""
    last_moved: np.ndarray = field(init=False)
    """(N,) int: the sweep of each bank's last switch (-1: never)."""
    returns: np.ndarray = field(init=False)
    """(N,) int: switches back to a held candidate since the last isolation."""
    joint: bool = False
    """A block switched several banks at once since the last isolation."""
    full_next: bool = False
    """The next sweep scores every candidate (the last search sweep switched nobody)."""
    sweeps: int = 0
    """Sweeps started."""
    evaluations: int = 0
    """Bank best-response evaluations made."""
    used: int = 1
    """Largest block (banks scored together) of the last sweep."""
    history: list[float] = field(default_factory=list)
    """Sum of the switchers' gains in each sweep."""
    stop: str = "max_sweeps"
    """"converged", "cycle" or "max_sweeps" (also while the iteration runs)."""
    cycle: np.ndarray | None = None
    """Banks caught in a detected cycle (None until ``stop == "cycle"``)."""

    def __post_init__(self) -> None:
        n = len(self.profile)
        self.checked = np.zeros(n, dtype=bool)
        self.gains = np.zeros(n)
        self.last_moved = np.full(n, -1)
        self.returns = np.zeros(n, dtype=np.int64)


def start_search(
    game: Game, start: np.ndarray | None, shortlists: np.ndarray | None, options: SolverOptions
) -> SearchState:
    """The state before the first sweep: ``start`` (N,) candidate indices (default: all 0, i.e.
    HOLD) and, when ``options.shortlist`` is set, the warm-start ``shortlists`` (N, C) bool.
    Raises ``ConfigError`` if either does not fit the game."""
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
    block_banks = n if options.block_banks is None else options.block_banks
    allowed = valid.copy()
    listed = np.zeros(n, dtype=bool)
    if shortlists is not None and options.shortlist is not None:
        given = np.asarray(shortlists, dtype=bool)
        if given.shape != (n, c):
            raise ConfigError(f"shortlists has shape {given.shape}: expected ({n}, {c})")
        given = given & valid
        given[np.arange(n), profile] = True
        listed = given.sum(axis=1) > 1
        allowed[listed] = given[listed]
    held = np.zeros((n, c), dtype=bool)
    held[np.arange(n), profile] = True
    players = np.nonzero(valid.sum(axis=1) > 1)[0]
    return SearchState(
        profile=profile,
        players=players,
        block_banks=block_banks,
        allowed=allowed,
        listed=listed,
        outside=np.full(n, -np.inf),
        held=held,
        alone=np.full(n, block_banks == 1),
        full_next=options.shortlist is None,
        stop="converged" if len(players) == 0 else "max_sweeps",
    )


def sweep(
    game: Game, search: SearchState, options: SolverOptions, rng: np.random.Generator
) -> None:
    """One best-response sweep: the players in a random order (``rng``), split into blocks of at
    most ``options.block_worlds`` deviation worlds (isolated banks in blocks of their own), each
    block scored in one call against the current profile (``score_block``). A full sweep scores
    every candidate, a search sweep only the shortlists. Sets ``search.stop = "converged"`` as
    soon as every player is checked."""
    s = search
    s.sweeps += 1
    full_sweep = s.full_next
    scope = np.where(full_sweep | ~s.listed[:, None], game.valid, s.allowed)
    cost = scope.sum(axis=1) - 1
    switched_gain, s.used = 0.0, 1
    order = rng.permutation(s.players)
    for blk, single in _blocks(order, cost, options.block_worlds, s.block_banks, s.alone):
        blk = blk[~s.checked[blk]]
        if len(blk) == 0:
            continue
        s.used = max(s.used, len(blk))
        switched_gain += score_block(game, s, blk, scope[blk], full_sweep, single, options)
        if s.checked[s.players].all():
            s.stop = "converged"
            break
    s.history.append(switched_gain)
    s.full_next = options.shortlist is None or not (s.last_moved == s.sweeps).any()


def score_block(
    game: Game,
    search: SearchState,
    blk: np.ndarray,
    scope: np.ndarray,
    full_sweep: bool,
    single: bool,
    options: SolverOptions,
) -> float:
    """Score the deviations of banks ``blk`` within ``scope`` (len(blk), C) bool in one call and
    switch those whose gain exceeds ``options.tol`` (only the largest gain if ``single``: an
    isolated block). Banks scored fully get fresh shortlists; if nobody switches they are
    checked. Returns the summed gain of the switches."""
    s = search
    best, gain, _, scored = _deviations(game, s.profile, blk, scope)
    best = np.where(gain > options.tol, best, s.profile[blk])
    s.evaluations += len(blk)
    full = full_sweep | ~s.listed[blk]
    if options.shortlist is not None and full.any():
        _relist(s, blk[full], scored[full], game.valid[blk[full]], options.shortlist)
    # A shortlist whose best payoff fell below what the best unlisted candidate paid at the
    # bank's last full scoring may be stale: score that bank fully next time.
    s.listed[blk[~full & (scored.max(axis=1) < s.outside[blk])]] = False
    move = best != s.profile[blk]
    if single and move.sum() > 1:  # isolated banks: one switch at a time
        move = np.arange(len(blk)) == np.argmax(np.where(move, gain, -np.inf))
    if not move.any():
        s.checked[blk[full]] = True
        s.gains[blk[full]] = gain[full]
        return 0.0
    movers, to = blk[move], best[move]
    s.returns[movers] += s.held[movers, to]
    s.joint |= len(movers) > 1
    s.held[movers, to] = True
    s.profile[movers] = to
    s.allowed[movers, to] = True
    s.last_moved[movers] = s.sweeps
    s.checked[:] = False
    s.gains[:] = 0.0
    if len(movers) == 1 and full[move][0]:
        # A lone mover's own deviation payoffs u_i(c, a_-i) do not depend on a_i, so its full
        # scoring still holds at the new profile, where its gain is 0.
        s.checked[movers] = True
    return float(gain[move].sum())


def _relist(
    search: SearchState, banks: np.ndarray, scored: np.ndarray, valid: np.ndarray, size: int
) -> None:
    """New shortlists of ``banks`` after their full scoring ``scored`` (n, C), -inf where not
    scored: their ``size`` best valid candidates, and the payoff of the best one left out."""
    ranked = np.argsort(-scored, axis=1, kind="stable")
    search.allowed[banks] = _with_top(valid, ranked[:, :size])
    search.listed[banks] = True
    unlisted = np.take_along_axis(scored, ranked[:, size : size + 1], axis=1)
    search.outside[banks] = unlisted[:, 0] if unlisted.shape[1] else -np.inf


def detect_cycle(search: SearchState) -> None:
    """After a sweep: if some bank went back, for the second time, to a candidate it had left,
    either isolate the banks that went back (when a joint move may have caused it and some of
    them are not isolated yet; the counts restart) or declare a cycle: ``stop = "cycle"`` and
    ``cycle`` = the banks that went back or switched in this sweep."""
    s = search
    if s.stop == "converged" or s.returns.max(initial=0) < 2:
        return
    went_back = s.returns > 0
    if s.joint and not s.alone[went_back].all():  # may be an artefact of joint moves
        s.alone |= went_back
        s.joint = False
        s.returns[:] = 0
        s.held[:] = False
        s.held[np.arange(len(s.profile)), s.profile] = True
        return
    s.stop = "cycle"
    s.cycle = np.nonzero(went_back | (s.last_moved == s.sweeps))[0]


def cycling_banks(search: SearchState) -> np.ndarray:
    """Banks that randomise in the mixed fallback: those of a detected cycle; at the sweep cap,
    those that went back to a held candidate since the last isolation, else those that switched
    in the last two sweeps."""
    if search.cycle is not None:
        return search.cycle
    banks = np.nonzero(search.returns > 0)[0]
    if len(banks) == 0:
        banks = np.nonzero(search.last_moved >= search.sweeps - 1)[0]
    return banks


def mixed_fallback(
    game: Game,
    search: SearchState,
    banks: np.ndarray,
    options: SolverOptions,
    rng: np.random.Generator,
) -> Equilibrium:
    """The "mixed" result: ``banks`` run ``options.mixed_iters`` rounds of regret matching over
    the candidates they held since the last isolation while every other bank keeps its current
    candidate; epsilon over every bank's full candidate set (``mixed_epsilon``)."""
    strategy = regret_matching(
        game, options.mixed_iters, rng, players=banks, support=search.held, base=search.profile
    )
    eps, gains, estimated = mixed_epsilon(game, strategy, rng, options.mixed_samples)
    mode = np.where(game.valid, strategy, -1.0).argmax(axis=1)
    return Equilibrium(
        "mixed",
        False,
        search.sweeps,
        eps,
        estimated,
        mode,
        game.candidates[np.arange(len(mode)), mode],
        gains,
        strategy=strategy,
        evaluations=search.evaluations,
        mixed_iterations=options.mixed_iters,
        mixed_players=banks,
        **_report(game, search),
    )


def _pure(game: Game, search: SearchState, gains: np.ndarray, evaluations: int) -> Equilibrium:
    """The "pure" result at the current profile with the given per-bank ``gains``."""
    profile = search.profile
    return Equilibrium(
        "pure",
        search.stop == "converged",
        search.sweeps,
        float(gains.max(initial=0.0)),
        False,
        profile,
        game.candidates[np.arange(len(profile)), profile],
        gains,
        evaluations=evaluations,
        **_report(game, search),
    )


def _report(game: Game, search: SearchState) -> dict:
    """The ``Equilibrium`` fields every kind of result shares."""
    return {
        "candidates": game.candidates,
        "block_banks": search.used,
        "history": search.history,
        "stop": search.stop,
        "shortlists": search.allowed & search.listed[:, None],
        "isolated": int(search.alone.sum()) if search.block_banks > 1 else 0,
    }


def stage_equilibrium(
    game: Game,
    start: np.ndarray | None = None,
    *,
    options: SolverOptions | None = None,
    rng: np.random.Generator | None = None,
    shortlists: np.ndarray | None = None,
) -> Equilibrium:
    """A Nash equilibrium of ``game`` by block Gauss-Seidel best responses (module docstring).

    Args:
        game: the payoff oracle.
        start: (N,) candidate indices to start from (default: all 0, i.e. HOLD).
        options: the solver's knobs (default ``SolverOptions()``).
        rng: seeded generator (sweep orders, mixed sampling); default seed 0.
        shortlists: (N, C) bool initial shortlists (ignored when ``options.shortlist`` is None):
            a bank with any listed candidate besides its start one skips its first full scoring.
    """
    options = SolverOptions() if options is None else options
    rng = np.random.default_rng(0) if rng is None else rng
    search = start_search(game, start, shortlists, options)
    while search.stop == "max_sweeps" and search.sweeps < options.max_sweeps:
        sweep(game, search, options, rng)
        detect_cycle(search)
    if search.stop == "converged":
        return _pure(game, search, search.gains, search.evaluations)
    banks = cycling_banks(search)
    if options.mixed == "none" or len(banks) == 0:
        _, gains, _ = deviation_gains(game, search.profile)
        return _pure(game, search, gains, search.evaluations + len(search.players))
    return mixed_fallback(game, search, banks, options, rng)


def _with_top(valid: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """(n, C) bool: the ranked columns of each row, restricted to valid candidates."""
    out = np.zeros(valid.shape, dtype=bool)
    np.put_along_axis(out, ranked, True, axis=1)
    return out & valid
