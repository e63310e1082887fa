"""The report: tables with intervals, learning curves, stage times, embedded media; loads in a browser."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from robolearn.core.durable import atomic_write_json
from robolearn.pipeline.layout import RunLayout
from robolearn.pipeline.report import write_report
from robolearn.rollout import write_video


def _fake_run(tmp_path: Path) -> Path:
    """A run directory with real files of every kind the report reads (evaluations, curves, a video)."""
    run = tmp_path / "run"
    layout = RunLayout(run)
    frames = [np.full((64, 64, 3), 40 * i, np.uint8) for i in range(6)]
    video = write_video(frames, layout.eval_videos("base") / "episode_000.mp4", fps=10)
    for policy, rate, videos in (("expert", 1.0, []), ("base", 0.4, [str(video)]), ("residual", 0.9, [])):
        n = 100
        atomic_write_json(layout.eval_record(policy, "nominal"), {
            "policy": policy, "dynamics": "nominal", "episodes": n, "successes": int(rate * n),
            "success_rate": rate, "ci95": [rate - 0.1, min(1.0, rate + 0.1)], "mean_return": rate,
            "mean_length": 60.0, "videos": videos})
    atomic_write_json(layout.branch_curve("residual"),
                      [{"env_steps": s, "success_rate": r} for s, r in ((0, 0.4), (5000, 0.7), (10000, 0.9))])
    atomic_write_json(layout.stage_marker("collect"), {"stage": "collect", "seconds": 12.0})
    layout.config.write_text("env_id: robolearn/PandaLift-v0\n")
    return run


def test_report_contents(tmp_path):
    run = _fake_run(tmp_path)
    html_path, md_path = write_report(run)
    md = md_path.read_text()
    assert "| residual | nominal | 90.0% |" in md and "| base (best base) | nominal | 40.0% |" in md
    assert md.index("| expert") < md.index("| base") < md.index("| residual")
    plot = RunLayout(run).learning_curves_plot
    assert str(plot.relative_to(run)) in md and plot.stat().st_size > 1000
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 1 and page.count("data:video/mp4;base64,") == 1
    assert "collect" in page and "env_id: robolearn/PandaLift-v0" in page


def test_report_of_a_moved_run_directory_finds_its_videos(tmp_path):
    """Records keep the paths they were written with; a copied run's report uses its own copies of the videos
    and never a path outside it."""
    shutil.copytree(_fake_run(tmp_path), tmp_path / "copy")
    shutil.rmtree(tmp_path / "run")
    write_report(tmp_path / "copy")
    md = RunLayout(tmp_path / "copy").report_md.read_text()
    assert "- base: [episode_000.mp4](eval/videos/base/episode_000.mp4)" in md
    outside = tmp_path / "copy" / "eval" / ".." / ".." / "elsewhere" / "eval" / "videos" / "x.mp4"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(b"not in the run")
    layout = RunLayout(tmp_path / "copy")
    record = json.loads(layout.eval_record("base", "nominal").read_text())
    atomic_write_json(layout.eval_record("base", "nominal"), {**record, "videos": ["../../eval/../../x.mp4"]})
    write_report(tmp_path / "copy")
    assert "## Videos" not in layout.report_md.read_text()


def _record(policy: str, dynamics: str, successes: int, n: int = 100) -> dict:
    from robolearn.pipeline.records import eval_record

    return eval_record(policy, dynamics, [True] * successes + [False] * (n - successes), [50.0] * n)


def test_records_give_the_time_to_success_with_its_interval(tmp_path):
    """The mean length of the successful episodes (QuadGates' lap time) comes with a bootstrap interval,
    is absent when no episode succeeded, and shows in the report's table."""
    from robolearn.pipeline.records import eval_record

    record = eval_record("base", "nominal", [True, False, True, True], [290.0, 1000.0, 300.0, 310.0])
    mean, (lo, hi) = record["success_length"]["mean"], record["success_length"]["ci95"]
    assert mean == pytest.approx(300.0) and 290.0 <= lo < mean < hi <= 310.0
    assert eval_record("base", "nominal", [False], [1000.0])["success_length"] is None
    run = _fake_run(tmp_path)
    atomic_write_json(RunLayout(run).eval_record("laps", "nominal"), record)
    write_report(run)
    assert "| 300.0 [" in RunLayout(run).report_md.read_text()


def test_refined_policies_are_compared_with_the_best_base_variant():
    """The best base variant is chosen per dynamics, and a verdict needs the intervals apart."""
    from robolearn.pipeline.comparison import best_base_variants, compare

    evals = [_record("expert", "nominal", 100), _record("base", "nominal", 34), _record("base", "real-gap", 38),
             _record("base (zero noise)", "nominal", 85), _record("base (zero noise)", "real-gap", 20),
             _record("residual", "nominal", 77), _record("residual", "real-gap", 79),
             _record("dsrl", "nominal", 97), _record("residual over ROS 2", "nominal", 86)]
    assert best_base_variants(evals) == {"nominal": "base (zero noise)", "real-gap": "base"}
    rows = {(c.policy, c.dynamics): c for c in compare(evals)}
    assert set(rows) == {("residual", "nominal"), ("residual", "real-gap"), ("dsrl", "nominal"),
                         ("residual over ROS 2", "nominal")}
    assert rows["residual", "nominal"].base == "base (zero noise)"
    assert rows["residual", "nominal"].gain == pytest.approx(-0.08)
    assert rows["residual", "nominal"].verdict == "within noise"  # 77% [67.8, 84.2] vs 85% [76.7, 90.7]
    assert rows["residual", "real-gap"].base == "base" and rows["residual", "real-gap"].verdict == "better"
    assert rows["dsrl", "nominal"].verdict == "better"  # 97% [91.5, 99.0] vs 85% [76.7, 90.7]


def test_report_shows_the_best_base_comparison(tmp_path):
    run = _fake_run(tmp_path)
    layout = RunLayout(run)
    atomic_write_json(layout.eval_record("base (zero noise)", "nominal"), _record("base (zero noise)", "nominal", 95))
    _, md_path = write_report(run)
    md = md_path.read_text()
    assert "| base (zero noise) (best base) | nominal | 95.0% |" in md and "| base | nominal | 40.0% |" in md
    assert "## Refined policies against the best base variant" in md
    assert "| residual | nominal | 90.0% [80.0, 100.0] | base (zero noise) | 95.0% [88.8, 97.8] | -5.0 pts |" \
        " within noise |" in md


def test_report_says_how_each_kept_policy_was_chosen(tmp_path):
    """Deliverable: the report says how many evaluation episodes the selection itself consumed."""
    from types import SimpleNamespace

    from robolearn.pipeline.branches import selection_record

    run = _fake_run(tmp_path)
    layout = RunLayout(run)
    evals = SimpleNamespace(evals=[{}] * 6)
    last = selection_record(SimpleNamespace(eval_episodes=8, select_best=False), evals)
    best = selection_record(SimpleNamespace(eval_episodes=8, select_best=True), evals)
    assert last["selection_episodes"] == 0 and last["in_loop_episodes"] == best["selection_episodes"] == 48
    atomic_write_json(layout.stage_marker("refine_residual"), {"stage": "refine_residual", "seconds": 1.0,
                                                               "selection": last})
    atomic_write_json(layout.stage_marker("refine_dsrl"), {"stage": "refine_dsrl", "seconds": 1.0, "selection": best,
                                                           "selected": {"env_steps": 4000, "success_rate": 0.9}})
    html_path, md_path = write_report(run)
    md = md_path.read_text()
    assert "## How each kept policy was chosen" in md
    assert "| residual | last actor | 6 x 8 | 0 |" in md
    assert "| dsrl | best in-loop evaluation (at 4000 env steps) | 6 x 8 | 48 |" in md
    assert "id='selection'" in html_path.read_text()


def _chrome():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
    if not (chromium and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make test installs them as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


@pytest.mark.slow
def test_report_loads_images_and_videos_in_a_headless_browser(tmp_path):
    run = _fake_run(tmp_path)
    html_path, _ = write_report(run)
    browser = _chrome()
    try:
        browser.get(html_path.resolve().as_uri())
        images = browser.execute_script(
            "return [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]);")
        assert images and all(ok and w > 100 and h > 100 for ok, w, h in images), images
        states = browser.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const videos = [...document.querySelectorAll('video')];
            const wait = v => v.readyState >= 1 ? Promise.resolve() : new Promise(r => {
                v.addEventListener('loadedmetadata', r); v.addEventListener('error', r); });
            Promise.all(videos.map(wait)).then(() =>
                done(videos.map(v => [v.readyState, v.duration, v.videoWidth, v.error && v.error.code])));
        """)
        assert states and all(r >= 1 and d > 0 and w == 64 and err is None for r, d, w, err in states), states
    finally:
        browser.quit()
