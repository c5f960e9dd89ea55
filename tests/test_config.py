"""config.yaml validation, environment and flag overrides."""
import subprocess
import sys

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
    for section in yaml.safe_load(text).values():
        for key in section:
            line = next(l for l in text.splitlines() if l.strip().startswith(f"{key}:"))
            assert "#" in line, f"{key} is not documented inline"


@pytest.mark.parametrize("data,message", [
    ({"server": {"port": "abc"}}, "server.port"),
    ({"server": {"port": 70000}}, "server.port"),
    ({"server": {"async_mode": "gevent"}}, "server.async_mode"),
    ({"server": {"max_cameras": 0}}, "server.max_cameras"),
    ({"server": {"nonsense": 1}}, "unknown setting"),
    ({"detector": {"imgsz": 333}}, "detector.imgsz"),
    ({"detector": {"photo_imgsz": 2048}}, "detector.photo_imgsz"),
    ({"detector": {"onnx_threads": -1}}, "detector.onnx_threads"),
    ({"reader": {"photo_network": "../elsewhere"}}, "reader.photo_network"),
    ({"detector": {"weights": "model.bin"}}, "detector.weights"),
    ({"detector": {"photo_weights": "model.bin"}}, "detector.photo_weights"),
    ({"detector": {"confidence": 2}}, "detector.confidence"),
    ({"detector": {"device": "tpu"}}, "detector.device"),
    ({"reader": {"min_confidence": "high"}}, "reader.min_confidence"),
    ({"reader": {"photo_crops": 0}}, "reader.photo_crops"),
    ({"reader": {"photo_crops": 5}}, "reader.photo_crops"),
    ({"reader": {"level": "yes"}}, "reader.level"),
    ({"reader": {"photo_both_splits": 1}}, "reader.photo_both_splits"),
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
    assert load_config(None, env={"CONFIG": path, "PORT": "6001"}, overrides={"port": 6002}).server.port == 6002
    with pytest.raises(ConfigError, match="PORT"):
        load_config(path, env={"PORT": "http"})


def test_server_refuses_to_start_on_a_bad_config_or_missing_weights(tmp_path):
    bad = _write(tmp_path, {"server": {"async_mode": "asyncio"}})
    proc = subprocess.run([sys.executable, "server.py", "--config", bad], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "server.async_mode" in proc.stderr
    missing = _write(tmp_path, {"detector": {"weights": str(tmp_path / "gone.pt")}})
    proc = subprocess.run([sys.executable, "server.py", "--config", missing], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "gone.pt" in proc.stderr
    (tmp_path / "broken.onnx").write_bytes(b"not a model" * 100)
    broken = _write(tmp_path, {"detector": {"weights": str(tmp_path / "broken.onnx")}})
    proc = subprocess.run([sys.executable, "server.py", "--config", broken, "--port", str(free_port())], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 3 and "broken.onnx" in proc.stderr  # found while loading: the server stops
