"""Rendering: an ANSI table of banks and the network drawn with matplotlib (Agg backend).

``draw_network``: node area by total assets, colour by equity ratio (red = thin capital, green =
well capitalised), defaulted banks as grey crosses, edge width by exposure (loan size).
"""

from __future__ import annotations

import numpy as np

from rudra_env.core.params import Params
from rudra_env.core.state import NetworkState, balance_sheet

__all__ = ["ansi_table", "network_layout", "draw_network"]


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
    """(N, 2) positions: a spring layout of the exposure graph (fixed seed), or a circle."""
    import networkx as nx

    n = loans.shape[0]
    g = nx.Graph()
    g.add_nodes_from(range(n))
    ii, jj = np.nonzero(loans + loans.T)
    g.add_edges_from((int(i), int(j)) for i, j in zip(ii, jj, strict=True) if i < j)
    if n > 300 or g.number_of_edges() == 0:
        pos = nx.circular_layout(g)
    else:
        pos = nx.spring_layout(g, seed=seed, iterations=50)
    return np.array([pos[i] for i in range(n)])


def draw_network(
    s: NetworkState,
    p: Params,
    pos: np.ndarray,
    world: int = 0,
    size: tuple[float, float] = (6.0, 6.0),
    dpi: int = 80,
) -> np.ndarray:
    """(H, W, 3) uint8 image of one world's network."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    bs = balance_sheet(s)
    loans = s.loans[world]
    alive = s.alive[world]
    assets = bs["assets"][world]
    ratio = np.divide(bs["equity"][world], assets, out=np.zeros_like(assets), where=assets > 0)
    fig = Figure(figsize=size, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 0.93))
    ii, jj = np.nonzero(loans)
    if len(ii):
        w = loans[ii, jj]
        segs = np.stack([pos[ii], pos[jj]], axis=1)
        ax.add_collection(
            LineCollection(segs, linewidths=0.3 + 3.0 * w / w.max(), colors=(0.3, 0.3, 0.5, 0.35))
        )
    amax = max(float(assets[alive].max()) if alive.any() else 1.0, 1e-9)
    ax.scatter(
        pos[alive, 0],
        pos[alive, 1],
        s=30 + 400 * assets[alive] / amax,
        c=ratio[alive],
        cmap="RdYlGn",
        vmin=0.0,
        vmax=0.15,
        edgecolors="black",
        linewidths=0.5,
        zorder=3,
    )
    ax.scatter(pos[~alive, 0], pos[~alive, 1], s=60, marker="x", c="grey", zorder=3)
    ax.set_xlim(pos[:, 0].min() - 0.15, pos[:, 0].max() + 0.15)
    ax.set_ylim(pos[:, 1].min() - 0.15, pos[:, 1].max() + 0.15)
    ax.set_axis_off()
    fig.suptitle(
        f"step {int(s.t[world])}: {int(alive.sum())}/{len(alive)} alive "
        f"(size = assets, colour = equity ratio, x = defaulted)",
        fontsize=9,
    )
    canvas.draw()
    img = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return img
