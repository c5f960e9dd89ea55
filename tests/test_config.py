"""config.yaml validation, environment and flag overrides."""
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import yaml

from detector.config import ConfigError
from realtime.config import load_config
from tests.conftest import ROOT, free_port


def _write(tmp_path, data) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_shipped_config_is_valid_and_documented():
    config = load_config(ROOT / "config.yaml", env={})
    assert config.server.port == 5001 and config.server.async_mode == "eventlet"
    assert "*" not in config.server.cors_allowed_origins
    text = (ROOT / "config.yaml").read_text()
    lines = iter(text.splitlines())

    def documented(section: dict) -> None:  # in file order, so a key is found on its own line
        for key, value in section.items():
            line = next(row for row in lines if row.strip().startswith(f"{key}:"))
            if isinstance(value, dict):  # a section or a profile: its keys say what they are
                documented(value)
            else:
                assert "#" in line, f"{key} is not documented inline"

    documented(yaml.safe_load(text))


def test_shipped_config_says_what_the_defaults_are():
    """config.yaml shows every default: the file and the dataclasses agree, key by key."""
    shipped = ROOT / "config.yaml"
    assert load_config(shipped, env={}) == replace(load_config(os.devnull, env={}), path=shipped)


@pytest.mark.parametrize("data,message", [
    ({"server": {"port": "abc"}}, "server.port"),
    ({"server": {"port": 70000}}, "server.port"),
    ({"server": {"async_mode": "gevent"}}, "server.async_mode"),
    ({"server": {"max_cameras": 0}}, "server.max_cameras"),
    ({"server": {"rate_burst": 0}}, "server.rate_burst"),
    ({"server": {"annotate_quality": 101}}, "server.annotate_quality"),
    ({"tracking": {"camera_idle_s": 0}}, "camera_idle_s"),
    ({"server": {"nonsense": 1}}, "unknown setting"),
    ({"profiles": {"camera": {"imgsz": 333}}}, "profiles.camera.imgsz"),
    ({"profiles": {"photo": {"imgsz": 2048}}}, "profiles.photo.imgsz"),
    ({"detector": {"onnx_threads": -1}}, "detector.onnx_threads"),
    ({"profiles": {"photo": {"network": "../elsewhere"}}}, "profiles.photo.network"),
    ({"profiles": {"camera": {"weights": "model.bin"}}}, "profiles.camera.weights"),
    ({"profiles": {"careful": {"weights": "model.bin"}}}, "profiles.careful.weights"),
    ({"profiles": {"camera": {"nonsense": 1}}}, "profiles.camera: unknown setting"),
    ({"profiles": {"gate": {}}}, "unknown profile"),
    ({"profiles": {"photo": 4}}, "profiles.photo: expected a mapping"),
    ({"detector": {"confidence": 2}}, "detector.confidence"),
    ({"detector": {"device": "tpu"}}, "detector.device"),
    ({"reader": {"min_confidence": "high"}}, "reader.min_confidence"),
    ({"profiles": {"photo": {"crops": 0}}}, "profiles.photo.crops"),
    ({"profiles": {"careful": {"crops": 5}}}, "profiles.careful.crops"),
    ({"profiles": {"photo": {"stop_at": 1.5}}}, "profiles.photo.stop_at"),
    ({"reader": {"level": "yes"}}, "reader.level"),
    ({"profiles": {"photo": {"both_splits": 1}}}, "profiles.photo.both_splits"),
    # settings of the first design name where they went
    ({"detector": {"photo_imgsz": 480}}, "detector.photo_imgsz is now profiles.photo.imgsz"),
    ({"reader": {"network": "vn_plate"}}, "reader.network is now profiles.camera.network"),
    ({"careful": {"cpu_share": 0}}, "careful.cpu_share"),
    ({"careful": {"wide_look_s": -1}}, "careful.wide_look_s"),
    ({"careful": {"gather_s": 5}}, "careful.gather_s"),
    ({"careful": {"fuse_frames": 0}}, "careful.fuse_frames"),
    ({"careful": {"threads": 0}}, "careful.threads"),
    ({"careful": {"agree_at": 0.65}}, "careful.agree_at"),
    ({"careful": {"min_confidence": 0.8, "decide_at": 0.7}}, "careful.decide_at"),
    ({"server": {"message_queue": "amqp://localhost"}}, "server.message_queue: expected a Redis URL"),
    ({"server": {"camera_lease_s": 0}}, "server.camera_lease_s"),
    ({"cameras": {}}, "unknown section"),
])
def test_wrong_values_name_the_key(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, data), env={})


def test_environment_then_flags_override(tmp_path):
    path = _write(tmp_path, {"server": {"port": 6000, "host": "127.0.0.1"}})
    config = load_config(None, env={"CONFIG": path, "PORT": "6001", "HOST": "0.0.0.0", "AUTH_TOKEN": "t",
                                    "CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example"})
    assert (config.server.port, config.server.host, config.server.auth_token) == (6001, "0.0.0.0", "t")
    assert config.server.cors_allowed_origins == ("https://a.example", "https://b.example")
    assert config.server.message_queue is None  # one process unless told
    queued = load_config(None, env={"CONFIG": path, "MESSAGE_QUEUE": "redis://10.0.0.5:6379/0"})
    assert queued.server.message_queue == "redis://10.0.0.5:6379/0"
    assert (
        load_config(None, env={"CONFIG": path, "PORT": "6001"}, overrides={"port": 6002}).server.port == 6002
    )
    with pytest.raises(ConfigError, match="PORT"):
        load_config(path, env={"PORT": "http"})


@pytest.mark.slow
def test_server_refuses_to_start_on_a_bad_config_or_missing_weights(tmp_path):
    bad = _write(tmp_path, {"server": {"async_mode": "asyncio"}})
    proc = subprocess.run(
        [sys.executable, "server.py", "--config", bad], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "server.async_mode" in proc.stderr
    missing = _write(tmp_path, {"profiles": {"camera": {"weights": str(tmp_path / "gone.pt")}}})
    proc = subprocess.run(
        [sys.executable, "server.py", "--config", missing],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "gone.pt" in proc.stderr
    (tmp_path / "garbage.sqlite3").write_bytes(b"not a database" * 100)
    (tmp_path / "a-file").write_text("")
    for database in (tmp_path / "garbage.sqlite3", tmp_path / "a-file" / "plates.sqlite3"):
        proc = subprocess.run([sys.executable, "server.py", "--config", _write(tmp_path, {"events": {
            "database": str(database)}})], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "events.database" in proc.stderr and str(database) in proc.stderr
        assert "Traceback" not in proc.stderr
    (tmp_path / "broken.onnx").write_bytes(b"not a model" * 100)
    broken = _write(tmp_path, {"profiles": {"camera": {"weights": str(tmp_path / "broken.onnx")}}})
    proc = subprocess.run(
        [sys.executable, "server.py", "--config", broken, "--port", str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 3 and "broken.onnx" in proc.stderr  # found while loading: the server stops


@pytest.mark.slow
def test_the_server_sets_threads_and_monkey_patches_before_any_model_library_loads():
    """server.py reads the config, then sets torch's thread count and eventlet's monkey patching:
    nothing before that may import torch, EasyOCR or Ultralytics, and both must hold once torch loads."""
    code = ("import sys, server; from realtime.config import load_config; config = load_config(env={}); "
            "early = sorted(m for m in ('torch', 'easyocr', 'ultralytics') if m in sys.modules); "
            "server.prepare_process(config); import eventlet.patcher, torch, detector.persistent; "
            "print(early, torch.get_num_threads(), eventlet.patcher.is_monkey_patched('socket'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    threads = load_config(env={}).vision.detector.torch_threads
    assert proc.returncode == 0 and proc.stdout.strip() == f"[] {threads} True", proc.stdout + proc.stderr
