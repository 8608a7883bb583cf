"""Rendering: an ANSI table of banks and the network drawn with matplotlib (Agg backend).

``draw_analysis``: a figure of a network analysis (``rudra_env.analysis``).

``draw_network``: banks labelled by index, node area by total assets, colour by equity ratio with
a colour bar (red = thin capital, green = well capitalised), defaulted banks as grey crosses, edge
width and opacity by exposure (loan size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState, balance_sheet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rudra_env.analysis import NetworkAnalysis

__all__ = ["ansi_table", "draw_analysis", "draw_network", "network_layout"]


def ansi_table(s: NetworkState, p: Params, world: int = 0, max_rows: int = 40) -> str:
    """A fixed-width table of the banks of one world (largest by assets first)."""
    bs = balance_sheet(s)
    eq, assets = bs["equity"][world], bs["assets"][world]
    alive = s.alive[world]
    order = np.argsort(-np.where(alive, assets, -1.0), kind="stable")[:max_rows]
    lines = [
        f"step {int(s.t[world])}  alive {int(alive.sum())}/{len(alive)}  prices "
        + "  ".join(f"{name}={s.price[world, m]:.2f}" for m, name in enumerate(p.market_names)),
        f"{'bank':>6} {'state':>8} {'equity':>9} {'assets':>9} {'lev':>6} {'cash':>8} "
        f"{'ib_lent':>8} {'ib_borr':>8} {'belief':>6}",
    ]
    for i in order:
        if alive[i]:
            lev = assets[i] / max(eq[i], 1e-9)
            valid = s.slots[world, i] >= 0
            bel = float(s.belief[world, i][valid].mean()) if valid.any() else 0.0
            lines.append(
                f"{i:>6} {'alive':>8} {eq[i]:9.2f} {assets[i]:9.2f} {lev:6.1f} "
                f"{s.cash[world, i]:8.2f} {bs['ib_assets'][world, i]:8.2f} "
                f"{bs['ib_liab'][world, i]:8.2f} {bel:6.3f}"
            )
        else:
            lines.append(
                f"{i:>6} {'DEFAULT':>8} {'-':>9} {'-':>9} {'-':>6} {'-':>8} {'-':>8} "
                f"{'-':>8} {'-':>6}  (step {int(s.default_step[world, i])})"
            )
    return "\n".join(lines)


def network_layout(loans: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, 2) positions in [-1, 1]^2: a spring layout of the exposure graph (fixed seed), or a
    circle (no edge, or more than 300 banks). Banks without any exposure sit on an outer ring,
    so they do not squeeze the connected banks into a corner."""
    import networkx as nx

    n = loans.shape[0]
    g = nx.Graph()
    g.add_nodes_from(range(n))
    ii, jj = np.nonzero(loans + loans.T)
    g.add_edges_from((int(i), int(j)) for i, j in zip(ii, jj, strict=True) if i < j)
    linked = [i for i in range(n) if g.degree(i) > 0]
    if n > 300 or not linked:
        pos = nx.circular_layout(g)
        return np.array([pos[i] for i in range(n)])
    out = np.zeros((n, 2))
    sub = nx.spring_layout(g.subgraph(linked), seed=seed, iterations=50)
    core = np.array([sub[i] for i in linked])
    core -= core.mean(axis=0)
    core /= max(float(np.abs(core).max()), 1e-9)
    out[linked] = core * (0.85 if len(linked) < n else 1.0)
    lonely = np.setdiff1d(np.arange(n), linked)
    angle = 2 * np.pi * np.arange(len(lonely)) / max(len(lonely), 1)
    out[lonely] = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return out


def draw_network(
    s: NetworkState,
    p: Params,
    pos: np.ndarray,
    world: int = 0,
    size: tuple[float, float] = (6.0, 6.0),
    dpi: int = 80,
) -> np.ndarray:
    """(H, W, 3) uint8 image of one world's network (``size`` inches at ``dpi``).

    Live banks are discs labelled with their index, area by total assets, colour by equity ratio
    (equity / assets, the colour bar on the right: red = thin capital, green = well capitalised);
    defaulted banks are grey crosses, labelled too. An edge joins two banks with exposure either
    way; its width and opacity grow with the exposure (``loans[i, j] + loans[j, i]``, square
    root scale), fade with the number of edges, and the largest exposures are drawn last, so
    edges stay visible in dense cores; discs shrink with N and are slightly transparent for the
    same reason. With more than ``_MAX_LABELS`` banks only
    the largest (by assets) and the defaulted are labelled.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    bs = balance_sheet(s)
    loans = s.loans[world]
    alive = s.alive[world]
    n = len(alive)
    assets = bs["assets"][world]
    ratio = np.divide(bs["equity"][world], assets, out=np.zeros_like(assets), where=assets > 0)
    fig = Figure(figsize=size, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.80, 0.90))
    cax = fig.add_axes((0.86, 0.12, 0.035, 0.70))
    ii, jj, w = _undirected_edges(loans)
    if len(w):
        order = np.argsort(w, kind="stable")  # largest exposures drawn last (on top)
        ii, jj, w = ii[order], jj[order], w[order]
        scale = np.sqrt(w / w.max())
        dense = min(1.0, np.sqrt(80.0 / len(w)))  # thinner, fainter edges in dense networks
        colors = np.zeros((len(w), 4))
        colors[:, :3] = (0.15, 0.2, 0.45)
        colors[:, 3] = np.maximum((0.2 + 0.65 * scale) * dense, 0.08)
        segs = np.stack([pos[ii], pos[jj]], axis=1)
        ax.add_collection(LineCollection(segs, linewidths=0.3 + 2.5 * scale * dense, colors=colors))
    shrink = min(1.0, 30.0 / max(n, 1))  # disc area per bank shrinks with N
    amax = max(float(assets[alive].max()) if alive.any() else 1.0, 1e-9)
    norm = Normalize(vmin=0.0, vmax=0.15)
    ax.scatter(
        pos[alive, 0],
        pos[alive, 1],
        s=shrink * (30 + 400 * assets[alive] / amax),
        c=ratio[alive],
        cmap="RdYlGn",
        norm=norm,
        alpha=0.85,
        edgecolors="black",
        linewidths=0.5,
        zorder=3,
    )
    ax.scatter(pos[~alive, 0], pos[~alive, 1], s=60 * shrink, marker="x", c="grey", zorder=3)
    labelled = np.arange(n)
    if n > _MAX_LABELS:
        big = np.argsort(-np.where(alive, assets, -np.inf), kind="stable")[:_MAX_LABELS]
        labelled = np.union1d(big, np.flatnonzero(~alive))
    font = 7 if n <= 30 else 5
    for i in labelled.tolist():
        ax.annotate(
            str(i),
            pos[i],
            xytext=(0, 0) if alive[i] else (4, 4),  # beside a cross, inside a disc
            textcoords="offset points",
            ha="center" if alive[i] else "left",
            va="center" if alive[i] else "bottom",
            fontsize=font,
            color="black" if alive[i] else "dimgrey",
            zorder=4,
        )
    ax.set_xlim(pos[:, 0].min() - 0.15, pos[:, 0].max() + 0.15)
    ax.set_ylim(pos[:, 1].min() - 0.15, pos[:, 1].max() + 0.15)
    ax.set_axis_off()
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap="RdYlGn"), cax=cax, extend="max")
    bar.set_label("equity / assets", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(
        f"step {int(s.t[world])}: {int(alive.sum())}/{n} alive  "
        f"(size = assets, x = defaulted, edge = exposure)",
        fontsize=9,
    )
    canvas.draw()
    img = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return img


_MAX_LABELS = 40
"""Banks labelled at most in ``draw_network`` (the largest live ones, plus every defaulted)."""


def _undirected_edges(loans: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``i < j`` with exposure either way and their total ``loans[i, j] + loans[j, i]``."""
    both = np.triu(loans + loans.T, k=1)
    ii, jj = np.nonzero(both)
    return ii, jj, both[ii, jj]


def draw_analysis(result: NetworkAnalysis, title: str = "", dpi: int = 100) -> Figure:
    """A figure of ``rudra_env.analysis.analyze_network``'s result (save it with ``savefig``).

    Left, the live network (``network_layout``): banks labelled by index, colour by DebtRank
    (the share of the others' economic value lost when the bank alone fails, colour bar), area
    by PageRank, edges by exposure (above 60 banks only the 15 largest DebtRanks are labelled).
    Right, the ten banks with the largest DebtRank, each with its
    bottleneck score when computed (third parties' distress avoided per source by removing it).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13.0, 5.5), dpi=dpi)
    FigureCanvasAgg(fig)
    net, bars = fig.add_gridspec(1, 2, width_ratios=(1.25, 1.0)).subplots()
    net.set_axis_off()
    banks, dr = result.banks, np.nan_to_num(result.cascades.distress)
    pos = network_layout(result.loans) if len(banks) else np.zeros((0, 2))
    ii, jj, w = _undirected_edges(result.loans)
    if len(w):
        scale = np.sqrt(w / w.max())
        segs = np.stack([pos[ii], pos[jj]], axis=1)
        net.add_collection(
            LineCollection(segs, linewidths=0.3 + 2.0 * scale, colors="#3a4a7a", alpha=0.35)
        )
    norm = Normalize(vmin=0.0, vmax=max(float(dr.max()) if len(dr) else 1.0, 1e-9))
    pr = result.centrality["pagerank"]
    shrink = min(1.0, 30.0 / max(len(banks), 1))
    dots = net.scatter(
        pos[:, 0],
        pos[:, 1],
        s=shrink * (40 + 900 * pr / max(pr.max(initial=0), 1e-12)),
        c=dr,
        cmap="OrRd",
        norm=norm,
        edgecolors="black",
        linewidths=0.5,
        zorder=3,
    )
    labels = _MAX_LABELS if len(banks) <= 60 else 15  # dense networks: the most systemic only
    for k in np.argsort(-dr, kind="stable")[:labels].tolist():
        ink = "white" if norm(dr[k]) > 0.6 else "black"  # readable on dark discs
        net.annotate(
            str(banks[k]), pos[k], ha="center", va="center", fontsize=7, color=ink, zorder=4
        )
    bar = fig.colorbar(dots, ax=net, shrink=0.7)
    bar.set_label("DebtRank (bank fails alone)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    net.set_title("network: colour = DebtRank, size = PageRank", fontsize=9)
    _top_bars(bars, result)
    fig.suptitle(title or "network analysis", fontsize=10)
    return fig


def _top_bars(ax: Any, result: NetworkAnalysis, top: int = 10) -> None:
    """Horizontal bars: the ``top`` DebtRanks, beside the ``top`` bottleneck scores."""
    order = result.order()[:top]
    labels = [f"bank {b}" for b in result.banks[order]]
    y = np.arange(len(order))
    ax.barh(
        y - 0.2,
        np.nan_to_num(result.cascades.distress[order]),
        0.4,
        label="DebtRank",
        color="#c0392b",
    )
    if result.bottleneck is not None:
        ax.barh(
            y + 0.2,
            np.nan_to_num(result.bottleneck.distress[order]),
            0.4,
            label="bottleneck (distress avoided per source)",
            color="#2c7fb8",
        )
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncols=2)
    ax.set_title(f"the {len(order)} most systemic banks", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
