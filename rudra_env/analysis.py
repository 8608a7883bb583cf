r"""Network analysis of one interbank network (DESIGN section 9), with networkx.

Pure functions over one world's loans matrix and balance sheet: they hold no state, draw no
random numbers and do not touch the environment. ``analyze_network`` runs them all; the CLI
``rudra analyze`` writes its result as Markdown, JSON and a figure.

Conventions
-----------
``loans[i, j]`` (N, N), currency units, ``>= 0``, zero diagonal: what bank ``i`` lent bank ``j``,
an asset of ``i`` and a liability of ``j``, i.e. ``i``'s exposure to ``j`` — the ``exposures`` of
``rudra_env.contagion``. ``equity`` (N,) and ``assets`` (N,) in currency units. Three graphs:

* the **lending graph** ``G``: directed, an edge ``i -> j`` when ``loans[i, j] > 0``, weight
  ``loans[i, j]``. Credit flows along the edges; distress flows against them (``j``'s default
  hits its lender ``i``). networkx's centralities of a directed graph score a node by its
  *incoming* edges (who lends to it), so on ``G`` they score a bank by the banks exposed to it:
  its importance as a *source of contagion*.
* the **exposure graph** ``U``: undirected, weight ``loans[i, j] + loans[j, i]``.
* the **impact graph**: an edge ``j -> i`` with weight ``W_ij = min(1, loans[i, j] / E_i)``
  (DebtRank's impact of ``j``'s distress on ``i``), for banks with ``E_i > 0``.

1. Centralities (``centralities``)
----------------------------------
With :math:`k^{in}_i, k^{out}_i` the number of lenders and borrowers of ``i`` and :math:`A` the
weighted adjacency of ``G`` (:math:`A_{ij}` = ``loans[i, j]``):

* degree :math:`(k^{in}_i + k^{out}_i) / (N - 1)` (``nx.degree_centrality``; up to 2);
* betweenness :math:`\sum_{s \ne i \ne t} \sigma_{st}(i) / \sigma_{st}` over directed shortest
  paths (hops) of ``G``, divided by :math:`(N-1)(N-2)` (``nx.betweenness_centrality``);
* closeness :math:`\frac{r_i}{N-1} \cdot \frac{r_i}{\sum_{v} d(v, i)}`, ``d(v, i)`` the hops from
  ``v`` to ``i`` in ``G`` (``v`` is exposed to ``i`` through a chain of loans) over the ``r_i``
  banks that reach ``i`` (``nx.closeness_centrality``, Wasserman–Faust scaling);
* eigenvector: :math:`\lambda x = B x`, :math:`B_{ij} = A_{ij} + A_{ji}`, unit norm, on the
  exposure graph ``U`` (``nx.eigenvector_centrality``). The directed version is undefined when
  ``G`` is not strongly connected (a bank that only lends), which PageRank and Katz repair;
* PageRank: :math:`\pi = \pi M`, ``M = nx.google_matrix(G, alpha=damping)`` (rows of ``A``
  normalised to 1, damping 0.85, uniform teleport and uniform rows for banks that lend nothing),
  ``sum(pi) = 1`` — what ``nx.pagerank`` returns, found here by power iteration with numpy
  (``nx.pagerank`` needs scipy);
* Katz: :math:`x_i = \alpha \sum_j \hat A_{ji} x_j + 1`, :math:`\hat A = A / \max A`,
  :math:`\alpha = \text{katz\_share} / \rho(\hat A)` (``katz_share`` if the spectral radius
  :math:`\rho` is 0), unit norm (``nx.katz_centrality``); ``katz_share < 1`` makes the series
  converge whatever the network.

2. Systemic importance (``debtrank_ranking``)
---------------------------------------------
Bank ``s``'s DebtRank :math:`R_s` is the system DebtRank (Battiston et al. 2012,
``rudra_env.contagion.debtrank``) when ``s`` alone starts fully distressed, :math:`h(1) = e_s`:
:math:`R_s = \sum_{j \ne s} v_j h^s_j(T)`, the economic value (weights ``v``, default each bank's
share of interbank assets) lost by the *other* banks. Banks without positive equity are left out
(the impact is undefined for them).

3. Contagion paths (``contagion_paths``)
----------------------------------------
``W_ij`` is read as the probability that ``j``'s default passes to ``i``; a path's probability is
the product of its edges' (independent transmissions). The strongest path from ``s`` to each
bank maximises that product, i.e. is the shortest path under the cost :math:`-\ln W_{ij} \ge 0`
(Dijkstra). Paths below ``threshold`` are dropped.

4. Cascade sizes and bottlenecks (``cascade_sizes``, ``bottlenecks``)
--------------------------------------------------------------------
For a source ``s``: its DebtRank :math:`R_s` (distress) and the number of *other* banks that fail
in a Furfine (2003) cascade started by ``s`` with capital = equity (``rudra_env.contagion.furfine``,
loss given default ``lgd``). Removing bank ``k`` deletes its row and column (its exposures
vanish: ``k`` is ring-fenced). Its bottleneck scores are what the *third parties* (neither the
source nor ``k``) lose less, averaged over the sources ``s != k``:

.. math::

    \Delta^{distress}_k = \frac{1}{|S| - 1} \sum_{s \ne k} \Bigl[\sum_{j \notin \{s,k\}} v_j
    h^s_j - \sum_{j \notin \{s,k\}} v_j h^{s,-k}_j\Bigr], \qquad
    \Delta^{defaults}_k = \frac{1}{|S| - 1} \sum_{s \ne k} \bigl[D^s_{\setminus k} - D^{s,-k}\bigr],

with the weights ``v`` of the whole network. Removing ``k`` changes nothing for a source whose
cascade never reaches ``k`` (``h^s_k = 0``): those pairs are not recomputed. Furfine defaults
only shrink when a bank is removed; DebtRank's distress can grow (each bank propagates once, so
a later, stronger hit can carry more), hence a signed score, ranked by its size.

5. Concentration (``hhi``)
--------------------------
Herfindahl–Hirschman indices :math:`H = \sum_k s_k^2` of shares ``s`` summing to 1 (1 = one
counterparty; ``1/n`` = ``n`` equal ones): per bank over its borrowers (lending, row shares of
``loans``) and over its lenders (borrowing, column shares); for the system over banks' shares of
total interbank lending and of total interbank borrowing. NaN where there is nothing to share.

6. Interconnectedness (``interconnectedness``)
----------------------------------------------
Links :math:`m` of ``G``; density :math:`m / (N(N-1))`; reciprocity (share of links whose reverse
exists); mean degree :math:`m / N` (lenders per bank = borrowers per bank); average clustering
of ``U`` (unweighted); weakly connected components; largest strongly connected component as a
share of ``N``; interbank share :math:`\sum_{ij} L_{ij} / \sum_i \text{assets}_i`.

References: Battiston et al. (2012), *Sci. Rep.* 2, 541; Furfine (2003), *JMCB* 35(1); Page et
al. (1999), the PageRank citation ranking; Katz (1953), *Psychometrika* 18; Freeman (1977),
*Sociometry* 40; Wasserman & Faust (1994), *Social Network Analysis*.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from rudra_env.contagion import debtrank, furfine
from rudra_env.errors import InputError

__all__ = [
    "CENTRALITIES",
    "Bottlenecks",
    "CascadeSizes",
    "Concentration",
    "ContagionPath",
    "NetworkAnalysis",
    "analysis_markdown",
    "analyze_network",
    "bottlenecks",
    "cascade_sizes",
    "centralities",
    "contagion_paths",
    "debtrank_ranking",
    "exposure_graph",
    "hhi",
    "impact_matrix",
    "interconnectedness",
    "lending_graph",
    "pagerank",
]

CENTRALITIES = ("degree", "betweenness", "eigenvector", "pagerank", "katz", "closeness")
"""The centralities ``centralities`` returns, in this order."""

Progress = Callable[[Sequence[Any]], Iterable[Any]]
"""Wraps a sequence to show progress (e.g. ``tqdm``); ``list`` when not given."""


# ---------------------------------------------------------------------------- inputs and graphs
def _loans(loans: Any) -> np.ndarray:
    """A validated (N, N) finite, non-negative, zero-diagonal float copy of ``loans``."""
    arr = np.array(loans, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise InputError(f"loans must have shape (N, N), got {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(f"loans[{i}, {j}] = {float(arr[i, j])!r}: loans must be finite and >= 0")
    if np.any(np.diagonal(arr) != 0):
        i = int(np.flatnonzero(np.diagonal(arr))[0])
        raise InputError(f"loans[{i}, {i}] = {float(arr[i, i])!r}: a bank lends nothing to itself")
    return arr


def _vector(name: str, value: Any, n: int) -> np.ndarray:
    arr = np.array(value, dtype=float)
    if arr.shape != (n,):
        raise InputError(f"{name} must have shape ({n},) for N = {n} banks, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise InputError(f"{name}[{i}] = {float(arr[i])!r}: {name} must be finite")
    return arr


def lending_graph(loans: Any) -> nx.DiGraph:
    """The lending graph: nodes ``0..N-1``, an edge ``i -> j`` with ``weight = loans[i, j]`` for
    every ``loans[i, j] > 0``."""
    arr = _loans(loans)
    g = nx.DiGraph()
    g.add_nodes_from(range(arr.shape[0]))
    ii, jj = np.nonzero(arr)
    g.add_weighted_edges_from(zip(ii.tolist(), jj.tolist(), arr[ii, jj].tolist(), strict=True))
    return g


def exposure_graph(loans: Any) -> nx.Graph:
    """The undirected exposure graph: an edge ``{i, j}`` with ``weight = loans[i, j] + loans[j,
    i]`` wherever it is positive."""
    arr = _loans(loans)
    both = np.triu(arr + arr.T, k=1)
    g = nx.Graph()
    g.add_nodes_from(range(arr.shape[0]))
    ii, jj = np.nonzero(both)
    g.add_weighted_edges_from(zip(ii.tolist(), jj.tolist(), both[ii, jj].tolist(), strict=True))
    return g


def impact_matrix(loans: Any, equity: Any) -> np.ndarray:
    """(N, N) ``W[i, j] = min(1, loans[i, j] / equity[i])``; rows of banks with ``equity <= 0``
    are NaN (the impact is undefined)."""
    arr = _loans(loans)
    eq = _vector("equity", equity, arr.shape[0])
    out = np.full_like(arr, np.nan)
    pos = eq > 0
    out[pos] = np.minimum(1.0, arr[pos] / eq[pos, None])
    return out


# ---------------------------------------------------------------------------- 1. centralities
def _as_array(scores: dict[int, float], n: int) -> np.ndarray:
    return np.array([scores[i] for i in range(n)], dtype=float)


def pagerank(g: nx.DiGraph, damping: float = 0.85, tol: float = 1e-12) -> np.ndarray:
    """(N,) PageRank: the stationary distribution of ``nx.google_matrix(g, alpha=damping)``.

    Power iteration :math:`\\pi \\leftarrow \\pi M` from the uniform vector until
    :math:`\\|\\Delta\\pi\\|_1 < N \\cdot tol` (the contraction rate is ``damping``)."""
    n = g.number_of_nodes()
    if n == 0:
        return np.zeros(0)
    m = np.asarray(nx.google_matrix(g, alpha=damping, nodelist=range(n), weight="weight"))
    pi = np.full(n, 1.0 / n)
    for _ in range(10_000):
        new = pi @ m
        if np.abs(new - pi).sum() < n * tol:
            return new / new.sum()
        pi = new
    raise InputError(f"PageRank did not converge with damping = {damping!r}")  # pragma: no cover


def centralities(
    loans: Any, *, damping: float = 0.85, katz_share: float = 0.5
) -> dict[str, np.ndarray]:
    """Centralities of every bank (module docstring, section 1) as ``{name: (N,) array}``.

    Args:
        loans: (N, N) ``loans[i, j]``: what bank i lent bank j (currency units).
        damping: PageRank's damping factor, in (0, 1).
        katz_share: Katz's attenuation as a share of ``1 / rho``, in (0, 1).
    """
    if not 0 < damping < 1:
        raise InputError(f"damping = {damping!r} is not allowed: expected a number in (0, 1)")
    if not 0 < katz_share < 1:
        raise InputError(f"katz_share = {katz_share!r} is not allowed: expected (0, 1)")
    g = lending_graph(loans)
    n = g.number_of_nodes()
    if n == 0:
        return {name: np.zeros(0) for name in CENTRALITIES}
    arr = nx.to_numpy_array(g, nodelist=range(n))
    top = float(arr.max())
    rho = float(np.abs(np.linalg.eigvals(arr / top)).max()) if top > 0 else 0.0
    for u, v, w in g.edges(data="weight"):
        g[u][v]["relative"] = w / top
    undirected = exposure_graph(arr)
    return {
        "degree": _as_array(nx.degree_centrality(g), n) if n > 1 else np.zeros(n),
        "betweenness": _as_array(nx.betweenness_centrality(g, normalized=True), n),
        "eigenvector": _as_array(
            nx.eigenvector_centrality(undirected, max_iter=10_000, tol=1e-10, weight="weight"), n
        ),
        "pagerank": pagerank(g, damping),
        "katz": _as_array(
            nx.katz_centrality(
                g,
                alpha=katz_share / rho if rho > 1e-12 else katz_share,
                beta=1.0,
                max_iter=10_000,
                tol=1e-10,
                weight="relative",
            ),
            n,
        ),
        "closeness": _as_array(nx.closeness_centrality(g), n),
    }


# ---------------------------------------------------------------------------- 2. DebtRank
def _solvent(equity: np.ndarray) -> np.ndarray:
    return np.flatnonzero(equity > 0)


def _default_weights(loans: np.ndarray, banks: np.ndarray) -> np.ndarray:
    """(N,) each solvent bank's share of the solvent banks' interbank assets (uniform if none);
    0 for the others (``rudra_env.contagion.debtrank``'s default on the solvent sub-network)."""
    v = np.zeros(loans.shape[0])
    assets = loans[np.ix_(banks, banks)].sum(axis=1)
    v[banks] = assets / assets.sum() if assets.sum() > 0 else 1.0 / max(len(banks), 1)
    return v


def _source_run(
    sub: np.ndarray, eq: np.ndarray, v: np.ndarray, s: int, lgd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Final DebtRank distress ``h`` and Furfine default mask of a cascade started by ``s``
    alone, on a solvent sub-network (indices local to it)."""
    start = np.zeros(len(eq), dtype=bool)
    start[s] = True
    h = debtrank(sub, eq, start.astype(float), weights=v).h
    return np.asarray(h), np.asarray(furfine(sub, eq, start, lgd).defaulted)


def debtrank_ranking(loans: Any, equity: Any, weights: Any | None = None) -> np.ndarray:
    """(N,) ``R_s``: the DebtRank of the system when bank ``s`` alone starts fully distressed
    (module docstring, section 2); NaN for banks with ``equity <= 0``, which are left out.

    Args:
        loans: (N, N) ``loans[i, j]``: what bank i lent bank j (currency units).
        equity: (N,) currency units.
        weights: (N,) economic weights ``v`` (default: share of the solvent banks' interbank
            assets).
    """
    return cascade_sizes(loans, equity, weights=weights).distress


@dataclass(frozen=True)
class CascadeSizes:
    """Per source bank ``s`` (NaN / -1 for banks left out: ``equity <= 0``)."""

    distress: np.ndarray
    """(N,) DebtRank ``R_s`` (economic value lost by the other banks)."""
    defaults: np.ndarray
    """(N,) int: banks other than ``s`` that fail in its Furfine cascade (-1: left out)."""
    h: np.ndarray
    """(N, N) ``h[s, j]``: bank j's final DebtRank distress when s starts (NaN: left out)."""
    failed: np.ndarray
    """(N, N) bool ``failed[s, j]``: j fails in s's Furfine cascade (s included)."""
    weights: np.ndarray
    """(N,) the economic weights ``v`` used."""


def cascade_sizes(
    loans: Any, equity: Any, *, weights: Any | None = None, lgd: float = 1.0
) -> CascadeSizes:
    """DebtRank and Furfine cascade of every solvent bank as the only initial failure.

    Banks with ``equity <= 0`` take no part (neither as sources nor as victims); ``weights``
    default to the solvent banks' shares of their interbank assets; ``lgd`` is Furfine's loss
    given default (capital = equity). See the module docstring, section 4.
    """
    arr = _loans(loans)
    n = arr.shape[0]
    eq = _vector("equity", equity, n)
    banks = _solvent(eq)
    v = _default_weights(arr, banks) if weights is None else _vector("weights", weights, n)
    sub, sub_eq, sub_v = arr[np.ix_(banks, banks)], eq[banks], v[banks]
    h = np.full((n, n), np.nan)
    failed = np.zeros((n, n), dtype=bool)
    distress = np.full(n, np.nan)
    defaults = np.full(n, -1, dtype=np.int64)
    for local, s in enumerate(banks):
        hs, fs = _source_run(sub, sub_eq, sub_v, local, lgd)
        h[s, banks], failed[s, banks] = hs, fs
        distress[s] = float(sub_v @ hs - sub_v[local])
        defaults[s] = int(fs.sum()) - 1
    return CascadeSizes(distress=distress, defaults=defaults, h=h, failed=failed, weights=v)


# ---------------------------------------------------------------------------- 3. contagion paths
@dataclass(frozen=True)
class ContagionPath:
    """The strongest chain by which ``source``'s default reaches ``target``."""

    source: int
    target: int
    path: tuple[int, ...]
    """Banks from ``source`` to ``target``; each one's default hits the next (its lender)."""
    probability: float
    """Product of the impacts ``W`` along the path, in (0, 1]."""


def contagion_paths(
    loans: Any, equity: Any, source: int, threshold: float = 0.1
) -> list[ContagionPath]:
    """Strongest contagion path from ``source`` to each bank it reaches with probability >=
    ``threshold`` (module docstring, section 3), most probable first (ties by target)."""
    w = impact_matrix(loans, equity)
    n = w.shape[0]
    if not 0 <= int(source) < n:
        raise InputError(f"source = {source!r} is not a bank: expected an index in 0..{n - 1}")
    if not 0 < threshold <= 1:
        raise InputError(f"threshold = {threshold!r} is not allowed: expected (0, 1]")
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    lender, borrower = np.nonzero(np.nan_to_num(w) > 0)
    g.add_weighted_edges_from(
        (int(j), int(i), -math.log(w[i, j])) for i, j in zip(lender, borrower, strict=True)
    )
    lengths, paths = nx.single_source_dijkstra(g, int(source), weight="weight")
    out = [
        ContagionPath(int(source), t, tuple(paths[t]), math.exp(-cost))
        for t, cost in lengths.items()
        if t != source and math.exp(-cost) >= threshold
    ]
    return sorted(out, key=lambda p: (-p.probability, p.target))


# ---------------------------------------------------------------------------- 4. bottlenecks
@dataclass(frozen=True)
class Bottlenecks:
    """How much a bank's removal reduces third parties' losses (module docstring, section 4)."""

    distress: np.ndarray
    """(N,) ``Delta^distress_k`` (NaN: left out, or fewer than two solvent banks)."""
    defaults: np.ndarray
    """(N,) ``Delta^defaults_k``, third-party Furfine defaults avoided per source (NaN: left
    out)."""


def bottlenecks(
    loans: Any,
    equity: Any,
    *,
    weights: Any | None = None,
    lgd: float = 1.0,
    base: CascadeSizes | None = None,
    candidates: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> Bottlenecks:
    """Bottleneck scores of every solvent bank: remove it, re-run the cascades it was part of.

    ``base`` may pass ``cascade_sizes(loans, equity, weights=weights, lgd=lgd)`` already
    computed; ``candidates`` limits the banks removed (the others' scores stay NaN; the cost is
    up to ``N`` cascades per candidate); ``progress`` wraps the loop over removed banks (e.g.
    ``tqdm``).
    """
    arr = _loans(loans)
    n = arr.shape[0]
    eq = _vector("equity", equity, n)
    base = base or cascade_sizes(arr, eq, weights=weights, lgd=lgd)
    banks = _solvent(eq)
    v = base.weights
    distress, defaults = np.full(n, np.nan), np.full(n, np.nan)
    if len(banks) < 2:
        return Bottlenecks(distress=distress, defaults=defaults)
    tested = banks if candidates is None else np.intersect1d(banks, np.asarray(candidates, int))
    for k in (progress or list)(tested.tolist()):
        keep = banks[banks != k]
        sub, sub_eq, sub_v = arr[np.ix_(keep, keep)], eq[keep], v[keep]
        d_sum = f_sum = 0.0
        for local, s in enumerate(keep):
            if not base.h[s, k] > 0:  # s's cascade never reaches k: removing k changes nothing
                continue
            hs, fs = _source_run(sub, sub_eq, sub_v, local, lgd)
            others = np.ones(len(keep), dtype=bool)
            others[local] = False
            d_sum += float(v[keep][others] @ (base.h[s, keep][others] - hs[others]))
            f_sum += int(base.failed[s, keep][others].sum()) - int(fs[others].sum())
        distress[k], defaults[k] = d_sum / len(keep), f_sum / len(keep)
    return Bottlenecks(distress=distress, defaults=defaults)


# ---------------------------------------------------------------------------- 5. concentration
@dataclass(frozen=True)
class Concentration:
    """Herfindahl–Hirschman indices (module docstring, section 5)."""

    lending: np.ndarray
    """(N,) HHI of each bank's lending over its borrowers (NaN: lends nothing)."""
    borrowing: np.ndarray
    """(N,) HHI of each bank's borrowing over its lenders (NaN: borrows nothing)."""
    system_lending: float
    """HHI of the banks' shares of total interbank lending (NaN: no loans)."""
    system_borrowing: float
    """HHI of the banks' shares of total interbank borrowing (NaN: no loans)."""


def _hhi_rows(amounts: np.ndarray) -> np.ndarray:
    total = amounts.sum(axis=-1, keepdims=True)
    shares = np.divide(amounts, total, out=np.zeros_like(amounts), where=total > 0)
    return np.where(total[..., 0] > 0, (shares**2).sum(axis=-1), np.nan)


def hhi(loans: Any) -> Concentration:
    """HHI of each bank's lending and borrowing and of the interbank market."""
    arr = _loans(loans)
    return Concentration(
        lending=_hhi_rows(arr),
        borrowing=_hhi_rows(arr.T),
        system_lending=float(_hhi_rows(arr.sum(axis=1))),
        system_borrowing=float(_hhi_rows(arr.sum(axis=0))),
    )


# ---------------------------------------------------------------------------- 6. interconnectedness
def interconnectedness(loans: Any, assets: Any) -> dict[str, float]:
    """System indices (module docstring, section 6): ``banks``, ``links``, ``density``,
    ``reciprocity``, ``mean_degree``, ``clustering``, ``components``, ``largest_scc_share``,
    ``interbank_share``."""
    arr = _loans(loans)
    n = arr.shape[0]
    total_assets = _vector("assets", assets, n).sum()
    g = lending_graph(arr)
    m = g.number_of_edges()
    return {
        "banks": n,
        "links": m,
        "density": m / (n * (n - 1)) if n > 1 else 0.0,
        "reciprocity": float(nx.overall_reciprocity(g)) if m else 0.0,
        "mean_degree": m / n if n else 0.0,
        "clustering": float(nx.average_clustering(exposure_graph(arr))) if n else 0.0,
        "components": nx.number_weakly_connected_components(g),
        "largest_scc_share": (
            max(len(c) for c in nx.strongly_connected_components(g)) / n if n else 0.0
        ),
        "interbank_share": float(arr.sum() / total_assets) if total_assets > 0 else float("nan"),
    }


# ---------------------------------------------------------------------------- all together
@dataclass(frozen=True)
class NetworkAnalysis:
    """``analyze_network``'s result. Per-bank arrays are over the live banks ``banks`` (n,),
    in their order; ``ContagionPath`` and ``ranking`` use the banks' own indices."""

    banks: np.ndarray
    """(n,) int: the live banks analysed (defaulted banks hold nothing and are left out)."""
    num_banks: int
    """N, live and defaulted."""
    loans: np.ndarray
    """(n, n) the live banks' loans, ``loans[a, b]``: what ``banks[a]`` lent ``banks[b]``."""
    equity: np.ndarray
    """(n,) currency units."""
    centrality: dict[str, np.ndarray]
    """``{name: (n,)}`` for every name of ``CENTRALITIES``."""
    cascades: CascadeSizes
    """DebtRank ``distress`` and Furfine ``defaults`` of each bank as the initial failure."""
    bottleneck: Bottlenecks | None
    """Bottleneck scores (None when not computed)."""
    concentration: Concentration
    """HHI per bank and for the system."""
    system: dict[str, float]
    """``interconnectedness`` of the live network."""
    paths: list[ContagionPath]
    """Strongest contagion paths from the most systemic banks."""
    options: dict[str, Any]
    """The options the analysis ran with."""

    def order(self) -> np.ndarray:
        """(n,) positions into ``banks`` by DebtRank, largest first (ties by bank index; banks
        without positive equity last)."""
        r = np.nan_to_num(self.cascades.distress, nan=-np.inf)
        return np.lexsort((self.banks, -r))

    def ranking(self) -> list[int]:
        """Bank indices by DebtRank, largest first (as ``order``)."""
        return self.banks[self.order()].tolist()

    def rows(self) -> list[dict[str, Any]]:
        """One record per live bank, by ranking (NaN as None)."""
        out = []
        for rank, k in enumerate(self.order().tolist(), start=1):
            row: dict[str, Any] = {
                "rank": rank if np.isfinite(self.cascades.distress[k]) else None,
                "bank": int(self.banks[k]),
                "equity": self.equity[k],
                "debtrank": self.cascades.distress[k],
                "furfine_defaults": self.cascades.defaults[k],
                **{name: self.centrality[name][k] for name in CENTRALITIES},
                "hhi_lending": self.concentration.lending[k],
                "hhi_borrowing": self.concentration.borrowing[k],
            }
            if self.bottleneck is not None:
                row["bottleneck_distress"] = self.bottleneck.distress[k]
                row["bottleneck_defaults"] = self.bottleneck.defaults[k]
            out.append({key: _plain(v) for key, v in row.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: ``banks`` (``rows()``), ``defaulted``, ``system``, ``paths``,
        ``options``."""
        system = {
            **self.system,
            "hhi_lending": self.concentration.system_lending,
            "hhi_borrowing": self.concentration.system_borrowing,
        }
        return {
            "banks": self.rows(),
            "defaulted": sorted(set(range(self.num_banks)) - set(self.banks.tolist())),
            "system": {k: _plain(v) for k, v in system.items()},
            "paths": [
                {
                    "source": p.source,
                    "target": p.target,
                    "path": list(p.path),
                    "probability": p.probability,
                }
                for p in self.paths
            ],
            "options": dict(self.options),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def analyze_network(
    loans: Any,
    equity: Any,
    assets: Any,
    alive: Any | None = None,
    *,
    threshold: float = 0.1,
    paths_from: int = 3,
    with_bottlenecks: bool = True,
    bottleneck_top: int | None = None,
    lgd: float = 1.0,
    damping: float = 0.85,
    katz_share: float = 0.5,
    progress: Progress | None = None,
) -> NetworkAnalysis:
    """Every analysis of this module on the live banks of one network.

    Args:
        loans: (N, N) ``loans[i, j]``: what bank i lent bank j (currency units).
        equity, assets: (N,) currency units (a balance sheet's).
        alive: (N,) bool, default all; defaulted banks are left out.
        threshold: smallest probability of a contagion path listed.
        paths_from: contagion paths are listed from this many banks, the largest by DebtRank.
        with_bottlenecks: compute bottleneck scores (the slow part: up to n^2 cascades).
        bottleneck_top: remove only this many banks, the largest by betweenness (None: all).
        lgd, damping, katz_share: as ``cascade_sizes`` and ``centralities``.
        progress: wraps the bottleneck loop (e.g. ``tqdm``).
    """
    if not 0 < threshold <= 1:
        raise InputError(f"threshold = {threshold!r} is not allowed: expected a number in (0, 1]")
    full = _loans(loans)
    n_all = full.shape[0]
    live = np.ones(n_all, bool) if alive is None else np.array(alive, dtype=bool).reshape(-1)
    if live.shape != (n_all,):
        raise InputError(f"alive must have shape ({n_all},), got {live.shape}")
    banks = np.flatnonzero(live)
    sub = full[np.ix_(banks, banks)]
    eq = _vector("equity", equity, n_all)[banks]
    base = cascade_sizes(sub, eq, lgd=lgd)
    order = np.lexsort((banks, -np.nan_to_num(base.distress, nan=-np.inf)))
    sources = [k for k in order[:paths_from].tolist() if np.isfinite(base.distress[k])]
    paths = [
        ContagionPath(
            int(banks[p.source]),
            int(banks[p.target]),
            tuple(int(banks[b]) for b in p.path),
            p.probability,
        )
        for k in sources
        for p in contagion_paths(sub, eq, k, threshold)
    ]
    centrality = centralities(sub, damping=damping, katz_share=katz_share)
    candidates = None
    if bottleneck_top is not None:
        by_flow = np.lexsort((banks, -centrality["betweenness"]))
        candidates = by_flow[:bottleneck_top]
    return NetworkAnalysis(
        banks=banks,
        num_banks=n_all,
        loans=sub,
        equity=eq,
        centrality=centrality,
        cascades=base,
        bottleneck=bottlenecks(
            sub, eq, lgd=lgd, base=base, candidates=candidates, progress=progress
        )
        if with_bottlenecks
        else None,
        concentration=hhi(sub),
        system=interconnectedness(sub, _vector("assets", assets, n_all)[banks]),
        paths=paths,
        options={
            "threshold": threshold,
            "paths_from": paths_from,
            "lgd": lgd,
            "damping": damping,
            "katz_share": katz_share,
            "bottlenecks": with_bottlenecks,
            "bottleneck_top": bottleneck_top,
        },
    )


# ---------------------------------------------------------------------------- Markdown
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table; a column is left-aligned when its first value is text."""
    body = [list(row) for row in rows]
    align = [":---" if body and isinstance(v, str) else "---:" for v in (body or [header])[0]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in body]
    return lines


_COLUMNS = (
    ("rank", "rank"),
    ("bank", "bank"),
    ("equity", "equity"),
    ("debtrank", "DebtRank"),
    ("furfine_defaults", "defaults"),
    ("degree", "degree"),
    ("betweenness", "betweenness"),
    ("eigenvector", "eigenvector"),
    ("pagerank", "PageRank"),
    ("katz", "Katz"),
    ("closeness", "closeness"),
    ("hhi_lending", "HHI lending"),
    ("hhi_borrowing", "HHI borrowing"),
    ("bottleneck_distress", "bottleneck (distress)"),
    ("bottleneck_defaults", "bottleneck (defaults)"),
)


def analysis_markdown(result: NetworkAnalysis, title: str = "network", top: int = 20) -> str:
    """The analysis as Markdown: the banks by DebtRank (at most ``top`` rows), the bottleneck
    banks, the system's indices and the contagion paths."""
    data = result.to_dict()
    rows = data["banks"]
    cols = [(k, h) for k, h in _COLUMNS if not rows or k in rows[0]]
    dead = data["defaulted"]
    lines = [
        f"# Network analysis: {title}",
        "",
        f"{len(rows)} live banks of {result.num_banks}"
        + (f" (defaulted, left out: {dead})" if dead else "")
        + ". DebtRank: economic value the other banks lose when the bank alone fails (share "
        "of interbank assets); defaults: other banks failing in its Furfine cascade (capital "
        "= equity); centralities on the lending graph (formulas: `rudra_env.analysis`).",
        "",
        "## Systemic importance (by DebtRank)",
        "",
        *_table([h for _, h in cols], ([r[k] for k, _ in cols] for r in rows[:top])),
    ]
    if len(rows) > top:
        lines.append(f"\n{len(rows) - top} more banks in the JSON.")
    if result.bottleneck is not None:
        ranked = sorted(rows, key=lambda r: (-abs(r["bottleneck_distress"] or 0.0), r["bank"]))
        lines += ["", "## Bottleneck banks (removal that most changes third parties' losses)", ""]
        lines += _table(
            ["bank", "distress avoided per source", "defaults avoided per source"],
            ([r["bank"], r["bottleneck_distress"], r["bottleneck_defaults"]] for r in ranked[:5]),
        )
    lines += ["", "## System", "", *_table(["index", "value"], data["system"].items())]
    lines += ["", f"## Contagion paths (probability >= {result.options['threshold']})", ""]
    if result.paths:
        lines += _table(
            ["from", "to", "probability", "path"],
            (
                [p.source, p.target, p.probability, " → ".join(map(str, p.path))]
                for p in result.paths
            ),
        )
    else:
        lines.append("None above the threshold.")
    return "\n".join(lines) + "\n"
