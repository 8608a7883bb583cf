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

Stopping (this is the *exact phase*: a switch needs a gain above ``tol``, 1e-9 by default, and
the sweeps stop at ``max_sweeps``): the iteration has *converged* once every player has been
fully scored against the current profile with nobody switching since — then every recorded gain
is <= tol, the profile is a pure equilibrium (up to tol) and epsilon is the largest recorded
gain, with no extra call.
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

The fallback: polish, then a mixed stage
----------------------------------------
When the exact phase stops without a pure equilibrium (``max_sweeps`` or a cycle), the answer
comes from the fallback, and its epsilon is always computed over every bank's full candidate
set.

*Polish* (``polish``, ``settle``). The last profile is scored exactly: every bank, every
candidate (one full sweep's worth of worlds, Jacobi: all against the same profile), which gives
its exact gains g_i and epsilon. While that epsilon exceeds ``epsilon_target``, a round of moves
follows: the banks with g_i > ``fallback_tol`` move one at a time, largest gain first
(sequential best responses, which do not overshoot the way joint moves do). The table of
deviation payoffs from the exact scoring goes stale as banks move, so a bank's gain is estimated
as its best tabled payoff minus its current payoff; the current payoffs of all banks are scored
again after every move (one world), and the bank with the largest estimate is scored again in
full (one call) before it moves. A move that pushes another bank into default drops that bank's
current payoff by about the default penalty, so that bank is scored next and moves out of
default if any candidate lets it. When a profile comes round again — best responses cycle, e.g.
one bank avoids default only by matching a counterparty that would rather not be matched — or
the round has scored banks again as many times as there are players, it goes back to the profile
it left with the smallest estimated epsilon (the gain of the bank that moved away from it, the
largest estimate there). The new profile is then scored exactly. After ``polish_rounds`` rounds,
or as soon as the exact epsilon is at most ``epsilon_target`` or a round moves nobody, the best
profile scored is the answer (``kind = "pure"``, ``fallback = "polish"``, exact epsilon;
``converged`` if that epsilon is <= ``tol``). A bank that would default although some candidate
avoids it has a gain of the order of the default penalty, so the polish prefers any scored
profile without one, and the epsilon reported shows it when none was found.

*Mixed stage* (``mixed``; only when the polished epsilon exceeds ``mixed_above``, by default
``epsilon_target``; its answer is taken only if its epsilon is smaller). With ``mixed="cce"``
(the default) the banks whose gain at the polished profile exceeds ``epsilon_target`` run regret
matching (Hart & Mas-Colell, 2000) over their full candidate sets while every other bank keeps
its polished action (``cce_regret_matching``): round t plays sigma^t, sigma_i^t proportional to
the positive part of the cumulative regrets R_i (the polished candidate while none is positive);
v_i^t(c) is the payoff of candidate c against the others' sigma^t_{-i} — exact when the game
offers ``expected_deviation_payoffs``, else against one profile sampled from sigma^t — and
r_i^t = v_i^t - sigma_i^t . v_i^t is added to R_i. The answer is the *coarse correlated*
profile z = (1/T) sum_t sigma^t (a device draws a round t uniformly, then each bank draws from
sigma_i^t; ``kind = "correlated"``, ``device`` holds the T profiles), and its epsilon is

    epsilon(z) = max_i max_c E_{a~z}[u_i(c, a_{-i}) - u_i(a)]  =  max_i max_c R_i(c) / T

for the players (a bank gains at most this by committing to one candidate instead of following
the device; 0 for a CCE, and a Nash equilibrium is the special case of a product z), and the
same gap, computed directly, for the banks held fixed. A fixed bank whose gap exceeds
``epsilon_target`` (say it defaults when another bank's mixing lands on a loan call) joins the
players and the run restarts (``CCE_PASSES`` runs at most).

The stated bound: since sigma_i^t is proportional to the positive part of R_i^{t-1},
R_i^{t-1,+} . r_i^t = 0 for every t, so |R_i^{T,+}|^2 <= sum_t |r_i^t|^2 and

    max_c R_i(c) / T  <=  sqrt(sum_t |r_i^t|^2) / T  <=  Delta_i sqrt(C_i / T),

Delta_i the range of i's payoffs over its C_i candidates. ``epsilon_bound`` reports the middle
term, the largest over the players. It is exact for exact games (``MatrixGame``); in a sampled
game the rounds use one sampled profile each, so the players' gaps are estimates, and the fixed
banks' gaps are estimated over ``mixed_samples`` profiles drawn from z (each a full scoring;
``epsilon_estimated = True``). Such a run scores the players' candidates T times, so in the env
it is meant for the rare states the polish cannot settle.

``mixed="regret_matching"`` is the older stage: the banks caught in the cycle and those the
polish left unsatisfied run sampled regret matching over the candidates they held while the best
responses cycled (``regret_matching``); the product of their time-averaged strategies is the
answer (``kind = "mixed"``), with its Nash epsilon exact for matrix games and otherwise a Monte
Carlo estimate over ``mixed_samples`` sampled profiles (``mixed_epsilon``). In two-player
zero-sum games the averages converge to a Nash equilibrium; in general games (Shapley's game)
they need not, which is why the default reports the correlated profile, whose gap is bounded.
``mixed="none"`` skips the stage.

The code
--------
``stage_equilibrium`` is a short driver over named parts: ``start_search`` builds the
``SearchState`` (profile, shortlists, checked banks, cycle counters) from the start profile and a
frozen ``SolverOptions`` (validated once, when built); ``sweep`` runs one sweep, scoring each
block with ``score_block``; ``detect_cycle`` isolates oscillating banks or declares a cycle;
when no pure equilibrium was found, ``fallback`` runs ``polish`` (with ``settle``) and, if
needed, ``correlated_fallback`` or ``mixed_fallback``.
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
    "RegretRun",
    "SearchState",
    "SolverOptions",
    "best_response",
    "cce_regret_matching",
    "correlated_epsilon",
    "correlated_fallback",
    "cycling_banks",
    "detect_cycle",
    "deviation_gains",
    "epsilon",
    "fallback",
    "mixed_epsilon",
    "mixed_fallback",
    "polish",
    "regret_matching",
    "sample_profile",
    "score_block",
    "settle",
    "stage_equilibrium",
    "start_search",
    "sweep",
]

MixedMethod = Literal["cce", "regret_matching", "none"]
MIXED_METHODS: tuple[str, ...] = ("cce", "regret_matching", "none")
"""Values of ``SolverOptions.mixed``."""

CCE_PASSES = 3
"""Most regret-matching runs of the correlated fallback: each run after the first adds the fixed
banks whose gap exceeded ``epsilon_target`` to the players."""


def _whole(value: object, least: int = 1) -> bool:
    """True for an integer >= ``least`` (Python or NumPy; bools are not integers here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def _real(value: object) -> bool:
    """True for a real number >= 0 (Python or NumPy; not a bool, not NaN)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class SolverOptions:
    """Knobs of ``stage_equilibrium``, validated once here: a bad value raises ``ConfigError``
    naming the field, the value and what is allowed."""

    max_sweeps: int = 5
    """Best-response sweep cap of the exact phase (search and full sweeps alike), an integer
    >= 1. Calm states of the env converge in 3-6 sweeps at N = 100; past the cap the fallback's
    polish settles the rest for less (README, Benchmarks: along N = 100 episodes 5 kept the
    slowest decision cheaper than 6 at three seeds out of three, and than 4 at seed 0)."""
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
    fallback_tol: float = 0.01
    """Smallest gain that moves a bank in the polish, in utility units, >= 0 (0.01 is 0.1 % of
    the env's default penalty of 10)."""
    epsilon_target: float = 0.1
    """The epsilon the polish is content with, in utility units, >= 0 (0.1 is 1 % of the env's
    default penalty of 10): it stops once its exact epsilon is at most this."""
    polish_rounds: int = 2
    """Rounds of moves in the polish, an integer >= 0. The polish scores the last profile
    exactly (every bank, every candidate: one full sweep's worth of worlds); while its epsilon
    exceeds ``epsilon_target``, a round lets the banks that gain more than ``fallback_tol`` move
    one at a time, largest gain first (``settle``), and scores the new profile exactly. The
    best profile scored is kept."""
    mixed_above: float | None = None
    """The polished epsilon above which the mixed stage is tried, in utility units, >= 0, or
    None: ``epsilon_target``."""
    mixed: MixedMethod = "cce"
    """The stage after the polish: "cce" (regret matching toward a coarse correlated equilibrium),
    "regret_matching" (the cycling banks mix independently) or "none"; its answer replaces the
    polished profile only if its epsilon is smaller."""
    mixed_iters: int = 32
    """Regret-matching rounds of the mixed stage, an integer >= 1 (each scores the mixing banks'
    candidates only)."""
    mixed_samples: int = 1
    """Sampled profiles of the Monte Carlo epsilon of a mixed or correlated answer, an integer
    >= 1 (each one full scoring of every bank; exact games such as ``MatrixGame`` need none)."""

    def __post_init__(self) -> None:
        counts = {"max_sweeps": 1, "block_worlds": 1, "mixed_iters": 1, "mixed_samples": 1}
        counts |= {"polish_rounds": 0}
        for name, least in counts.items():
            value = getattr(self, name)
            if not _whole(value, least):
                raise ConfigError(
                    f"{name} = {value!r} is not allowed: expected an integer >= {least}"
                )
            object.__setattr__(self, name, int(value))
        for name in ("block_banks", "shortlist"):
            value = getattr(self, name)
            if value is not None and not _whole(value):
                raise ConfigError(
                    f"{name} = {value!r} is not allowed: expected an integer >= 1 or None"
                )
            object.__setattr__(self, name, None if value is None else int(value))
        for name in ("tol", "fallback_tol", "epsilon_target"):
            value = getattr(self, name)
            if not _real(value):
                raise ConfigError(f"{name} = {value!r} is not allowed: expected a number >= 0")
            object.__setattr__(self, name, float(value))
        above = self.mixed_above
        if above is not None and not _real(above):
            raise ConfigError(
                f"mixed_above = {above!r} is not allowed: expected a number >= 0 or None"
            )
        object.__setattr__(self, "mixed_above", None if above is None else float(above))
        if self.mixed not in MIXED_METHODS:
            raise ConfigError(
                f"mixed = {self.mixed!r} is not allowed: expected one of {MIXED_METHODS}"
            )


@dataclass
class Equilibrium:
    """Result of ``stage_equilibrium``."""

    kind: Literal["pure", "mixed", "correlated"]
    """"pure": ``profile`` is the answer; "mixed": ``strategy`` is (independent mixing);
    "correlated": ``device`` is (a coarse correlated equilibrium)."""
    converged: bool
    """True iff the answer is a pure equilibrium up to ``tol`` (epsilon <= tol), reached by the
    exact phase or, in the fallback, by the polish (``fallback`` tells which)."""
    iterations: int
    """Best-response sweeps started."""
    epsilon: float
    """Largest gain any bank could still get by deviating alone (see the module docstring);
    for "correlated", by committing to one candidate instead of following the device."""
    epsilon_estimated: bool
    """True if epsilon is a Monte Carlo estimate (mixed or correlated answer of a sampled
    game); a "pure" answer's epsilon is always exact."""
    profile: np.ndarray
    """(N,) candidate indices of the pure profile (otherwise each bank's most likely one)."""
    actions: np.ndarray
    """(N,) flat actions of ``profile``."""
    gains: np.ndarray
    """(N,) each bank's best deviation gain at the returned answer."""
    candidates: np.ndarray | None = None
    """(N, C) the game's candidate actions (``profile`` and ``strategy`` index its columns)."""
    strategy: np.ndarray | None = None
    """(N, C) each bank's (marginal) mixed strategy over candidates ("mixed", "correlated")."""
    device: np.ndarray | None = None
    """(T, N, C) the correlated answer ("correlated" only): the uniform mixture over t of the
    independent profiles ``device[t]`` (draw t, then each bank from its row)."""
    epsilon_bound: float | None = None
    """"correlated" only: the regret-matching bound max_i sqrt(sum_t |r_i^t|^2) / T on the
    players' part of epsilon (module docstring), computed from the rounds played."""
    evaluations: int = 0
    """Bank best-response evaluations made."""
    block_banks: int = 0
    """Largest block (banks scored together) of the last sweep."""
    isolated: int = 0
    """Banks isolated after oscillating (scored in blocks where one switches at a time)."""
    mixed_iterations: int = 0
    """Regret-matching rounds ("mixed" and "correlated": of the last run)."""
    mixed_players: np.ndarray | None = None
    """Banks that randomise ("mixed", "correlated"); every other bank plays ``profile``."""
    stop: str = "converged"
    """Why the exact phase stopped: "converged", "cycle" (a bank switched back to an action it
    had left for the second time, under one-bank blocks) or "max_sweeps"."""
    fallback: str = "none"
    """Which stage gave the answer: "none" (the exact phase converged), "polish" (the best
    exactly scored profile of the polish), "cce" or "regret_matching" (the mixed stage)."""
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
            "fallback": self.fallback,
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


@dataclass
class RegretRun:
    """What ``cce_regret_matching`` returns (arrays over the game's N banks and C candidates)."""

    device: np.ndarray
    """(T, N, C): round t's independent profile sigma^t; the coarse correlated candidate is the
    uniform mixture over t (non-players are one-hot at their base candidate in every round)."""
    regret: np.ndarray
    """(N, C): cumulative regrets R_i(c) = sum_t r_i^t(c) of the players (and, in an exact game,
    of every bank); 0 for banks not tracked."""
    sumsq: np.ndarray
    """(N,): sum_t |r_i^t|^2, the regret-matching bound's ingredient."""
    exact: bool
    """True if the rounds used exact expectations (``expected_deviation_payoffs``); False if
    each round scored one sampled profile."""


def cce_regret_matching(
    game: Game,
    iters: int,
    rng: np.random.Generator,
    *,
    players: np.ndarray | None = None,
    base: np.ndarray | None = None,
) -> RegretRun:
    """Regret matching (Hart & Mas-Colell, 2000) of ``players`` (default: every bank) over
    their full candidate sets toward a coarse correlated equilibrium, the other banks playing
    ``base`` (default 0); the module docstring gives the rounds and the bound.

    Round t: sigma_i^t is proportional to the positive part of R_i (the base candidate when
    none is positive, as in round 1); v_i^t(c), the payoff of each candidate c against the
    others' sigma^t, is exact if the game offers ``expected_deviation_payoffs`` and otherwise
    the payoff against one profile sampled from sigma^t (one scoring call of the players);
    r_i^t = v_i^t - sigma_i^t . v_i^t accumulates into R_i."""
    valid = game.valid
    n, c = valid.shape
    players = np.arange(n) if players is None else np.asarray(players, dtype=np.int64)
    base = np.zeros(n, dtype=np.int64) if base is None else np.asarray(base, dtype=np.int64)
    exact = getattr(game, "expected_deviation_payoffs", None)
    sigma = np.zeros((n, c))
    sigma[np.arange(n), base] = 1.0
    start = sigma[players].copy()
    sp = valid[players]
    regret, sumsq = np.zeros((n, c)), np.zeros(n)
    device = np.empty((iters, n, c))
    for t in range(iters):
        pos = np.maximum(regret[players], 0.0) * sp
        tot = pos.sum(axis=1, keepdims=True)
        sigma[players] = np.where(tot > 0, pos / np.where(tot > 0, tot, 1.0), start)
        device[t] = sigma
        if exact is not None:
            rows, ev = np.arange(n), exact(sigma)
        else:
            prof = base.copy()
            prof[players] = sample_profile(sigma[players], rng)
            rows, ev = players, game.deviation_payoffs(prof, players)
        ev = np.where(valid[rows], np.nan_to_num(ev), 0.0)
        r = np.where(valid[rows], ev - (sigma[rows] * ev).sum(axis=1, keepdims=True), 0.0)
        regret[rows] += r
        sumsq[rows] += (r * r).sum(axis=1)
    return RegretRun(device, regret, sumsq, exact is not None)


def correlated_epsilon(
    game: Game, device: np.ndarray, rng: np.random.Generator | None = None, samples: int = 16
) -> tuple[float, np.ndarray, bool]:
    """epsilon of the coarse correlated candidate given by ``device`` (T, N, C), the uniform
    mixture over t of the independent profiles device[t]: ``(epsilon, gains (N,), estimated)``
    with gains_i = max_c E[u_i(c, a_-i)] - E[u_i(a)] over a drawn from the mixture.

    Exact if the game has ``expected_deviation_payoffs`` (one call per t); otherwise a Monte
    Carlo estimate over ``samples`` profiles drawn from the mixture (one scoring call each).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    valid = game.valid
    if getattr(game, "expected_deviation_payoffs", None) is not None:
        evs = [np.where(valid, game.expected_deviation_payoffs(d), 0.0) for d in device]
        value = np.mean([(d * e).sum(axis=1) for d, e in zip(device, evs, strict=True)], axis=0)
        ev, estimated = np.where(valid, np.mean(evs, axis=0), -np.inf), False
    else:
        n = device.shape[1]
        total, value = np.zeros(valid.shape), np.zeros(n)
        for _ in range(samples):
            prof = sample_profile(device[rng.integers(len(device))], rng)
            pay = np.nan_to_num(game.deviation_payoffs(prof, np.arange(n)))
            total += pay
            value += pay[np.arange(n), prof]
        ev, value, estimated = np.where(valid, total / samples, -np.inf), value / samples, True
    gains = np.maximum(ev.max(axis=1) - value, 0.0)
    return float(gains.max(initial=0.0)), gains, estimated


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
    exact_stop: str = ""
    """Why the exact phase stopped, once the fallback has started ("" before)."""

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
    """Banks caught in the best responses' cycle (with those the polish left unsatisfied, they
    mix in the "regret_matching" stage): those of a detected cycle; at the sweep cap, those that
    went back to a held candidate since the last isolation, else those that switched in the last
    two sweeps."""
    if search.cycle is not None:
        return search.cycle
    banks = np.nonzero(search.returns > 0)[0]
    if len(banks) == 0:
        banks = np.nonzero(search.last_moved >= search.sweeps - 1)[0]
    return banks


def settle(game: Game, search: SearchState, payoffs: np.ndarray, options: SolverOptions) -> None:
    """Sequential best responses, largest gain first, from an exact scoring ``payoffs`` (N, C;
    NaN: invalid) of ``search.profile``, scoring banks again at most as many times as there
    are players (4 at least).

    The table of deviation payoffs goes stale as banks move, so a bank's gain is estimated as
    its best tabled payoff minus its current payoff, and the current payoffs of every bank are
    scored again after each move (one world). The bank with the largest estimate is scored
    again (all its candidates, one call) unless its row is fresh, and moves if it gains more
    than ``options.fallback_tol``; a row stays fresh until someone else moves (a bank's own
    deviation payoffs do not depend on its own action). A move that pushes another bank into
    default drops that bank's current payoff by about the default penalty, so that bank comes
    next. The mover's gain is the largest estimate at the profile it leaves, that profile's
    estimated epsilon. Stops when no estimate exceeds ``fallback_tol``; when a profile comes
    round again (best responses cycle) or the scorings run out, it goes back to the profile left
    with the smallest estimated epsilon. (Every move but the first follows a scoring, so the
    moves are bounded too.)"""
    s, rows, tol = search, np.arange(len(search.profile)), options.fallback_tol
    table = np.where(game.valid & ~np.isnan(payoffs), payoffs, -np.inf)
    table[~np.isin(rows, s.players)] = -np.inf  # banks with one candidate never move
    current = payoffs[rows, s.profile]
    fresh = np.ones(len(rows), dtype=bool)
    unscored = np.zeros(game.valid.shape, dtype=bool)
    left: dict[bytes, float] = {}
    best, smallest, calls = s.profile.copy(), np.inf, max(len(s.players), 4)
    while True:
        estimate = table.max(axis=1) - current
        bank = int(np.argmax(estimate))
        if estimate[bank] <= tol:
            return
        if not fresh[bank]:
            if calls == 0:
                break
            calls -= 1
            row = game.deviation_payoffs(s.profile, rows[bank : bank + 1])[0]
            table[bank] = np.where(game.valid[bank] & ~np.isnan(row), row, -np.inf)
            current[bank], fresh[bank] = row[s.profile[bank]], True
            s.evaluations += 1
            continue
        key = s.profile.tobytes()
        if key in left:  # a cycle
            break
        left[key] = estimate[bank]
        if estimate[bank] < smallest:
            best, smallest = s.profile.copy(), estimate[bank]
        s.profile[bank] = int(np.argmax(table[bank]))
        fresh[:] = rows == bank
        current = game.deviation_payoffs(s.profile, rows, unscored)[rows, s.profile]
    s.profile[:] = best


def polish(game: Game, search: SearchState, options: SolverOptions) -> np.ndarray:
    """An exact scoring of the last profile (every bank, every candidate), then up to
    ``options.polish_rounds`` rounds of ``settle`` moves seeded by the last exact scoring, each
    followed by an exact scoring of the new profile; stops once the exact epsilon is at most
    ``options.epsilon_target`` or a round moves nobody. Leaves ``search.profile`` at the best
    profile scored (smallest epsilon; the first on ties) and returns its exact gains (N,)."""
    s = search
    best, best_gains = s.profile.copy(), None
    for rnd in range(options.polish_rounds + 1):
        _, gains, payoffs = deviation_gains(game, s.profile)
        s.evaluations += len(s.players)
        if best_gains is None or gains.max(initial=0.0) < best_gains.max(initial=0.0):
            best, best_gains = s.profile.copy(), gains
        if gains.max(initial=0.0) <= options.epsilon_target or rnd == options.polish_rounds:
            break
        before = s.profile.copy()
        settle(game, s, payoffs, options)
        if (s.profile == before).all():  # nobody moved: scoring it again would tell nothing
            break
    s.profile = best
    return best_gains


def correlated_fallback(
    game: Game,
    search: SearchState,
    gains: np.ndarray,
    options: SolverOptions,
    rng: np.random.Generator,
) -> Equilibrium:
    """The "correlated" result: the banks whose ``gains`` (N,) at the polished profile exceed
    ``options.epsilon_target`` run ``cce_regret_matching`` over their full candidate sets while
    the others keep ``search.profile``; a fixed bank whose gap in the result exceeds
    ``epsilon_target`` joins the players and the run restarts (at most ``CCE_PASSES`` runs).
    Epsilon: in an exact game the exact gap of every bank (max_c R_i(c) / T); otherwise the
    players' gaps estimated from the rounds and the others' from ``options.mixed_samples``
    profiles drawn from the result (``correlated_epsilon``)."""
    players = np.nonzero(gains > options.epsilon_target)[0]
    for _ in range(CCE_PASSES):
        run = cce_regret_matching(
            game, options.mixed_iters, rng, players=players, base=search.profile
        )
        gaps = np.maximum(run.regret.max(axis=1, initial=0.0), 0.0) / options.mixed_iters
        if not run.exact:
            _, sampled, _ = correlated_epsilon(game, run.device, rng, options.mixed_samples)
            gaps = np.where(np.isin(np.arange(len(gaps)), players), gaps, sampled)
        over = search.players[gaps[search.players] > options.epsilon_target]
        joiners = np.setdiff1d(over, players)
        if len(joiners) == 0:
            break
        players = np.union1d(players, joiners)
    bound = np.sqrt(run.sumsq[players].max(initial=0.0)) / options.mixed_iters
    return _result(
        game,
        search,
        "cce",
        gaps,
        kind="correlated",
        strategy=run.device.mean(axis=0),
        estimated=not run.exact,
        device=run.device,
        epsilon_bound=float(bound),
        mixed_players=players,
        mixed_iterations=options.mixed_iters,
    )


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
    _, gains, estimated = mixed_epsilon(game, strategy, rng, options.mixed_samples)
    return _result(
        game,
        search,
        "regret_matching",
        gains,
        kind="mixed",
        strategy=strategy,
        estimated=estimated,
        mixed_players=banks,
        mixed_iterations=options.mixed_iters,
    )


def fallback(
    game: Game, search: SearchState, options: SolverOptions, rng: np.random.Generator
) -> Equilibrium:
    """The answer when the exact phase found no pure equilibrium (module docstring): the
    ``polish``'s best exactly scored profile; if its epsilon exceeds ``options.mixed_above``,
    the mixed stage (``options.mixed``), whose answer is taken only if its epsilon is
    smaller."""
    search.exact_stop = search.stop
    gains = polish(game, search, options)
    pure = _result(game, search, "polish", gains)
    pure.converged = pure.epsilon <= options.tol
    above = options.epsilon_target if options.mixed_above is None else options.mixed_above
    if pure.epsilon <= above or options.mixed == "none":
        return pure
    if options.mixed == "cce":
        other = correlated_fallback(game, search, gains, options, rng)
    else:
        unsatisfied = np.nonzero(gains > options.fallback_tol)[0]
        banks = np.intersect1d(np.union1d(cycling_banks(search), unsatisfied), search.players)
        other = mixed_fallback(game, search, banks, options, rng)
    return other if other.epsilon < pure.epsilon else pure


def _result(
    game: Game,
    search: SearchState,
    stage: str,
    gains: np.ndarray,
    *,
    kind: Literal["pure", "mixed", "correlated"] = "pure",
    strategy: np.ndarray | None = None,
    estimated: bool = False,
    **extra,
) -> Equilibrium:
    """The result of ``stage`` (``Equilibrium.fallback``) with per-bank ``gains``: pure at
    ``search.profile``, or with ``strategy`` (N, C) and its most likely candidates."""
    if strategy is None:
        profile = search.profile.copy()
    else:
        profile = np.where(game.valid, strategy, -1.0).argmax(axis=1)
    return Equilibrium(
        kind,
        stage == "none",
        search.sweeps,
        float(gains.max(initial=0.0)),
        estimated,
        profile,
        game.candidates[np.arange(len(profile)), profile],
        gains,
        candidates=game.candidates,
        strategy=strategy,
        evaluations=search.evaluations,
        block_banks=search.used,
        history=search.history,
        stop=search.exact_stop or search.stop,
        fallback=stage,
        shortlists=search.allowed & search.listed[:, None],
        isolated=int(search.alone.sum()) if search.block_banks > 1 else 0,
        **extra,
    )


def _iterate(
    game: Game, search: SearchState, options: SolverOptions, rng: np.random.Generator, cap: int
) -> None:
    """Sweeps and cycle checks until the search stops or has started ``cap`` sweeps."""
    while search.stop == "max_sweeps" and search.sweeps < cap:
        sweep(game, search, options, rng)
        detect_cycle(search)


def stage_equilibrium(
    game: Game,
    start: np.ndarray | None = None,
    *,
    options: SolverOptions | None = None,
    rng: np.random.Generator | None = None,
    shortlists: np.ndarray | None = None,
) -> Equilibrium:
    """A Nash equilibrium of ``game`` by block Gauss-Seidel best responses, or the fallback's
    answer when they find none (module docstring).

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
    _iterate(game, search, options, rng, options.max_sweeps)
    if search.stop == "converged":
        return _result(game, search, "none", search.gains)
    return fallback(game, search, options, rng)


def _with_top(valid: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """(n, C) bool: the ranked columns of each row, restricted to valid candidates."""
    out = np.zeros(valid.shape, dtype=bool)
    np.put_along_axis(out, ranked, True, axis=1)
    return out & valid
