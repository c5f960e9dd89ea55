"""The streaming benchmark runs in a short mode in CI so it never rots (no thresholds here)."""
import json
import subprocess
import sys

from tests.conftest import ROOT


def test_stream_bench_short_mode_reports(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.stream_bench", "--short", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (report_path,) = tmp_path.glob("*.json")
    report = json.loads(report_path.read_text())
    ours = report["ours"]
    assert ours["offered"] > 0 and ours["processed"] > 0
    assert ours["latency_ms"]["p50"] is not None and ours["samples"]
    assert (tmp_path / report_path.name.replace(".json", ".png")).stat().st_size > 1000
    assert "p95" in proc.stdout
