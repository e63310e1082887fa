"""``report.html`` and ``report.md`` of a pipeline run.

The HTML is self-contained: plots (PNG) and videos (MP4) are embedded as data URIs, so the file can be
mailed or attached to an issue. The Markdown links the same files by relative path.

Inputs, all read from the run directory (paths from :class:`~robolearn.pipeline.layout.RunLayout`):
``config.yaml``, ``stages/*.json`` (time per stage), ``eval/*.json`` (success rates),
``refine/<method>/curve.json`` (``[{"env_steps", "success_rate"}]``) and the videos listed in the
evaluation records.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from robolearn.pipeline.comparison import COMPARISON_HEADER, best_base_variants, comparison_rows
from robolearn.pipeline.layout import REFINE_STAGE_PREFIX, RunLayout
from robolearn.pipeline.records import load_evals


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _order(record: dict[str, Any]) -> tuple[int, str, str]:
    """Expert and demonstrator first, then the base, the refined branches, and ROS runs last."""
    name = record["policy"]
    rank = 0 if name == "expert" else 1 if name.startswith("demonstrator") else 2 if name == "base" else (
        4 if "ROS" in name else 3)
    return rank, name, "" if record["dynamics"] == "nominal" else record["dynamics"]


BEST_MARK = " (best base)"
"""Appended to the policy cell of the best base variant on each dynamics."""


def _rows(evals: list[dict[str, Any]]) -> list[list[str]]:
    rows, best = [], best_base_variants(evals)
    for r in sorted(evals, key=_order):
        lo, hi = r["ci95"]
        name = r["policy"] + (BEST_MARK if best.get(r["dynamics"]) == r["policy"] else "")
        rows.append([name, r["dynamics"], _pct(r["success_rate"]), f"[{_pct(lo)}, {_pct(hi)}]",
                     f"{r['successes']}/{r['episodes']}",
                     "-" if r["mean_return"] is None else f"{r['mean_return']:.3f}", f"{r['mean_length']:.1f}",
                     _success_length(r)])
    return rows


def _success_length(record: dict[str, Any]) -> str:
    """``"293.1 [288.0, 298.2]"``: mean length of the successful episodes (steps) with its interval."""
    won = record.get("success_length")  # absent in records written before it was recorded
    if not won:
        return "-"
    lo, hi = won["ci95"]
    return f"{won['mean']:.1f} [{lo:.1f}, {hi:.1f}]"


HEADER = ["policy", "dynamics", "success", "95% CI", "n", "return", "length", "length of successes [95% CI]"]


def learning_curves(run_dir: Path) -> dict[str, list[dict[str, float]]]:
    """``{method: [{"env_steps", "success_rate"}, ...]}`` for every refinement branch."""
    return {path.parent.name: json.loads(path.read_text()) for path in RunLayout(run_dir).curves()}


def plot_curves(curves: dict[str, list[dict[str, float]]], base_rate: float | None, out: Path,
                zero_noise_rate: float | None = None, selected: dict[str, dict[str, float]] | None = None
                ) -> Path | None:
    """Success rate vs environment steps for each method (PNG); ``selected[method]`` (env_steps,
    success_rate) marks the evaluation whose actor became the refined policy (``select_best``)."""
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=100)
    for i, (method, points) in enumerate(curves.items()):
        ax.plot([p["env_steps"] for p in points], [p["success_rate"] for p in points], marker="o", label=method,
                color=f"C{i}")
        pick = (selected or {}).get(method)
        if pick:
            ax.plot([pick["env_steps"]], [pick["success_rate"]], marker="*", markersize=16, color=f"C{i}",
                    markeredgecolor="black", linestyle="none", label=f"{method}: kept (best evaluation)")
    if base_rate is not None:
        ax.axhline(base_rate, color="grey", linestyle="--", label="base policy")
    if zero_noise_rate is not None:
        ax.axhline(zero_noise_rate, color="grey", linestyle=":", label="base from zero noise")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _stage_times(layout: RunLayout) -> list[tuple[str, float]]:
    """``(stage, seconds)`` of every finished stage, in the order they finished."""
    times = []
    for path in sorted(layout.stages_dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
        record = json.loads(path.read_text())
        times.append((record["stage"], float(record["seconds"])))
    return times


def _videos(evals: list[dict[str, Any]], root: Path) -> list[tuple[str, Path]]:
    """``(policy, video)`` of the nominal evaluations' videos that exist under the run directory ``root``."""
    nominal = [r for r in evals if r["dynamics"] == "nominal"]
    found = [(r["policy"], _in_run(Path(v), root)) for r in nominal for v in r["videos"]]
    return [(policy, path) for policy, path in found if path is not None]


def _in_run(video: Path, root: Path) -> Path | None:
    """``video`` as a file under ``root``. A record keeps the path it was written with, so in a run directory
    that was moved or copied it points at the old place; the same ``eval/...`` part under ``root`` is used then.
    None when neither exists (or the recorded path leads outside the run)."""
    parts = video.parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "eval":
            moved = root.joinpath(*parts[i:])
            if moved.resolve().is_relative_to(root.resolve()) and moved.is_file():
                return moved
            break
    return None


def _selected(layout: RunLayout) -> dict[str, dict[str, float]]:
    """``{method: {"env_steps", "success_rate"}}`` of the evaluation each finished branch kept."""
    selected = {}
    for path in layout.refine_markers():
        record = json.loads(path.read_text())
        if record.get("selected"):
            selected[record["stage"].removeprefix(REFINE_STAGE_PREFIX)] = record["selected"]
    return selected


def selection_rows(layout: RunLayout) -> list[list[str]]:
    """One row per finished branch: which actor it kept and the evaluation episodes that choice consumed."""
    rows = []
    for path in layout.refine_markers():
        record = json.loads(path.read_text())
        sel = record.get("selection")
        if not sel:
            continue
        picked = record.get("selected") or {}
        kept = (f"best in-loop evaluation (at {picked.get('env_steps', '?')} env steps)" if sel["rule"] == "best"
                else "last actor")
        rows.append([record["stage"].removeprefix(REFINE_STAGE_PREFIX), kept,
                     f"{sel['evaluations']} x {sel['episodes_per_evaluation']}", str(sel["selection_episodes"])])
    return rows


SELECTION_TITLE = "How each kept policy was chosen"
SELECTION_NOTE = ("In-loop evaluations run on the refinement's own seeds; every figure above uses the held-out "
                  "evaluation seeds, which no choice saw.")
SELECTION_HEADER = ["branch", "kept", "in-loop evaluations x episodes", "episodes the choice read"]

COMPARISON_TITLE = "Refined policies against the best base variant"
COMPARISON_NOTE = ("Each refined policy against the best of its base's variants on the same dynamics (random- and "
                   "zero-noise sampling for a diffusion base); better or worse only when the 95% intervals are "
                   "apart.")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(row) + " |" for row in rows]


def _markdown(title: str, rows: list[list[str]], compared: list[list[str]], plot: Path | None,
              times: list[tuple[str, float]], videos: list[tuple[str, Path]], config: str, root: Path,
              selection: list[list[str]] | None = None) -> str:
    """The Markdown report; files are linked relative to the run directory ``root``."""
    md = [f"# {title}", "", "## Success rates (95% Wilson intervals)", "", *_md_table(HEADER, rows)]
    if compared:
        md += ["", f"## {COMPARISON_TITLE}", "", COMPARISON_NOTE, "", *_md_table(COMPARISON_HEADER, compared)]
    if selection:
        md += ["", f"## {SELECTION_TITLE}", "", SELECTION_NOTE, "", *_md_table(SELECTION_HEADER, selection)]
    if plot:
        md += ["", "## Learning curves", "", f"![learning curves]({plot.relative_to(root)})"]
    md += ["", "## Time per stage", "", "| stage | seconds |", "|---|---|"]
    md += [f"| {name} | {sec:.0f} |" for name, sec in times]
    md += [f"| **total** | {sum(s for _, s in times):.0f} |"]
    if videos:
        md += ["", "## Videos", ""] + [f"- {name}: [{p.name}]({p.relative_to(root)})" for name, p in videos]
    md += ["", "## Configuration", "", "```yaml", config.rstrip(), "```", ""]
    return "\n".join(md)


def _html_table(header: list[str], rows: list[list[str]], table_id: str) -> str:
    esc = html.escape
    body = "".join(f"<tr>{''.join(f'<td>{esc(c)}</td>' for c in row)}</tr>" for row in rows)
    return f"<table id='{table_id}'><tr>{''.join(f'<th>{esc(h)}</th>' for h in header)}</tr>{body}</table>"


def _html(title: str, rows: list[list[str]], compared: list[list[str]], plot: Path | None,
          times: list[tuple[str, float]], videos: list[tuple[str, Path]], config: str,
          selection: list[list[str]] | None = None) -> str:
    """The self-contained HTML report (plot and videos embedded as data URIs)."""
    esc = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}video{margin:4px}</style></head><body>",
        f"<h1>{esc(title)}</h1><h2>Success rates (95% Wilson intervals)</h2>",
        _html_table(HEADER, rows, "success"),
    ]
    if compared:
        parts += [f"<h2>{esc(COMPARISON_TITLE)}</h2><p>{esc(COMPARISON_NOTE)}</p>",
                  _html_table(COMPARISON_HEADER, compared, "comparison")]
    if selection:
        parts += [f"<h2>{esc(SELECTION_TITLE)}</h2><p>{esc(SELECTION_NOTE)}</p>",
                  _html_table(SELECTION_HEADER, selection, "selection")]
    if plot:
        parts.append(f"<h2>Learning curves</h2><img id='curves' alt='learning curves' "
                     f"src='{_data_uri(plot, 'image/png')}'>")
    parts.append("<h2>Time per stage</h2><table><tr><th>stage</th><th>seconds</th></tr>")
    parts += [f"<tr><td>{esc(n)}</td><td>{s:.0f}</td></tr>" for n, s in times]
    parts.append(f"<tr><td><b>total</b></td><td>{sum(s for _, s in times):.0f}</td></tr></table>")
    if videos:
        parts.append("<h2>Videos</h2>")
        for name, path in videos:
            parts.append(f"<figure><video controls muted width='256' src='{_data_uri(path, 'video/mp4')}'></video>"
                         f"<figcaption>{esc(name)}</figcaption></figure>")
    parts.append(f"<h2>Configuration</h2><pre>{esc(config)}</pre></body></html>")
    return "".join(parts)


def write_report(run_dir: str | Path, title: str = "robolearn pipeline") -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``run_dir``; return their paths."""
    layout = RunLayout(Path(run_dir))
    evals = load_evals(layout.root)
    base = next((r["success_rate"] for r in evals if r["policy"] == "base" and r["dynamics"] == "nominal"), None)
    zero = next((r["success_rate"] for r in evals
                 if r["policy"] == "base (zero noise)" and r["dynamics"] == "nominal"), None)
    plot = plot_curves(learning_curves(layout.root), base, layout.learning_curves_plot, zero, _selected(layout))
    config = layout.config.read_text() if layout.config.is_file() else ""
    times, videos = _stage_times(layout), _videos(evals, layout.root)
    rows, compared = _rows(evals), comparison_rows(evals)
    selection = selection_rows(layout)
    layout.report_md.write_text(_markdown(title, rows, compared, plot, times, videos, config, layout.root, selection))
    layout.report_html.write_text(_html(title, rows, compared, plot, times, videos, config, selection))
    return layout.report_html, layout.report_md
