"""All settings of the server in one validated place: config.yaml, then environment, then flags.

Environment overrides: CONFIG (another file), HOST, PORT, ASYNC_MODE, AUTH_TOKEN,
CORS_ALLOWED_ORIGINS (comma-separated), LOG_LEVEL, MESSAGE_QUEUE, TRUSTED_PROXIES, and
GATE_WEBHOOK_SECRET (gate.webhook_secret). Flags (python server.py --port ...) override the environment.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from detector.config import (
    DEFAULT_CONFIG,
    ConfigError,
    VisionConfig,
    from_mapping,
    load_yaml,
    vision_config,
)
from detector.tracking import TrackingConfig
from realtime.careful import CarefulConfig
from realtime.gate import GateConfig, gate_config

ASYNC_MODES = ("eventlet", "threading")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 5001
    async_mode: str = "eventlet"  # eventlet | threading
    cors_allowed_origins: tuple[str, ...] = ()  # besides the server's own origin
    auth_token: str = ""  # empty: no token; else clients connect with auth {token: ...}
    max_auth_failures: int = 10  # wrong tokens an address may present in a minute before it is refused
    max_frame_bytes: int = 2_000_000  # encoded image bytes per frame
    max_image_pixels: int = 4096 * 4096  # width x height a POST /detect photo's header may claim
    # ... a video frame's: decoding is the worker's time, shared by every camera, and the lanes look at
    # 256 and 480 px, so a larger frame costs everyone and reads nothing more
    max_frame_pixels: int = 2560 * 1440
    max_cameras: int = 16  # distinct cameras streaming at once
    max_cameras_per_client: int = 8  # cameras one client may stream at once (the dashboard has six tiles)
    max_fps_per_camera: float = 15.0  # frames above this rate are refused with rate_limited
    rate_burst: int = 3  # frames a camera may send back to back before max_fps_per_camera applies
    max_subscriptions: int = 64  # cameras one client may watch at once
    max_clients: int = 200  # Socket.IO connections at once
    max_connections: int = 1000  # TCP connections at once (eventlet mode); past it, 503 and closed
    idle_timeout_s: float = 60.0  # a connection silent this long is closed (clients pong every 25 s)
    max_batch: int = 8  # frames taken by the inference worker in one go
    http_detect_timeout_s: float = 10.0  # POST /detect waits at most this for the worker
    annotate_quality: int = 80  # JPEG quality of annotated_frame (only frames that ask for it)
    log_level: str = "INFO"
    # several processes as one (realtime/message_queue.py): a Redis URL (redis://, rediss://, unix://);
    # None: this process alone
    message_queue: str | None = None
    camera_lease_s: float = 5.0  # with a message queue: a camera's lease lasts this long unrenewed
    publish_queue: int = 1000  # with a message queue: emits waiting to be published, at most
    # proxies in front of the server (nginx: 1) whose X-Forwarded-For names the client: auth failures then
    # count per client, not against the proxy that all clients come through; 0: the peer is the client
    trusted_proxies: int = 0

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"server.port: expected 1..65535, got {self.port}")
        if self.async_mode not in ASYNC_MODES:
            raise ConfigError(
                f"server.async_mode: expected one of {', '.join(ASYNC_MODES)}, got {self.async_mode!r}"
            )
        if "*" in self.cors_allowed_origins and len(self.cors_allowed_origins) > 1:
            raise ConfigError("server.cors_allowed_origins: '*' cannot be combined with other origins")
        for name in (
            "max_frame_bytes",
            "max_image_pixels",
            "max_frame_pixels",
            "max_cameras",
            "max_cameras_per_client",
            "max_clients",
            "max_connections",
            "max_batch",
            "rate_burst",
            "max_subscriptions",
            "max_auth_failures",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"server.{name}: expected a positive number, got {getattr(self, name)}")
        if min(self.max_fps_per_camera, self.http_detect_timeout_s, self.idle_timeout_s) <= 0:
            raise ConfigError(
                "server.max_fps_per_camera, http_detect_timeout_s and idle_timeout_s must be positive"
            )
        if self.message_queue is not None and not self.message_queue.startswith(REDIS_SCHEMES):
            raise ConfigError(f"server.message_queue: expected a Redis URL ({', '.join(REDIS_SCHEMES)}...) "
                              "or null")
        if self.camera_lease_s <= 0 or self.publish_queue < 1 or self.trusted_proxies < 0:
            raise ConfigError("server.camera_lease_s must be positive, server.publish_queue at least 1, "
                              "server.trusted_proxies at least 0")
        if not 1 <= self.annotate_quality <= 100:
            raise ConfigError(f"server.annotate_quality: expected 1..100, got {self.annotate_quality}")
        if self.log_level.upper() not in LOG_LEVELS:
            raise ConfigError(
                f"server.log_level: expected one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )


@dataclass(frozen=True)
class EventsConfig:
    # the plate log: a SQLite file (relative to the repo root), or a postgresql:// URL that processes share
    database: str = "data/plates.sqlite3"
    window_s: float = 60.0  # the same plate on the same camera within this long is the same event

    def validate(self) -> None:
        if self.window_s < 0:
            raise ConfigError(f"events.window_s: expected a number >= 0, got {self.window_s}")


@dataclass(frozen=True)
class AppConfig:
    server: ServerConfig
    vision: VisionConfig
    tracking: TrackingConfig
    events: EventsConfig
    careful: CarefulConfig
    gate: GateConfig
    path: Path


ENV_KEYS = {"HOST": "host", "PORT": "port", "ASYNC_MODE": "async_mode", "AUTH_TOKEN": "auth_token",
            "CORS_ALLOWED_ORIGINS": "cors_allowed_origins", "LOG_LEVEL": "log_level",
            "MESSAGE_QUEUE": "message_queue", "TRUSTED_PROXIES": "trusted_proxies"}


def _from_text(key: str, text: str) -> Any:
    if key in ("port", "trusted_proxies"):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key.upper()}: expected a number, got {text!r}") from None
    if key == "cors_allowed_origins":
        return [o.strip() for o in text.split(",") if o.strip()]
    return text


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> AppConfig:
    """Read `path` (or $CONFIG, or config.yaml), apply environment then explicit overrides."""
    env = os.environ if env is None else env
    path = Path(path or env.get("CONFIG") or DEFAULT_CONFIG)
    data = load_yaml(path)
    unknown = sorted(
        set(data) - {"server", "detector", "reader", "profiles", "tracking", "events", "careful", "gate"}
    )
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}")
    server_data = dict(data.get("server") or {})
    for env_key, key in ENV_KEYS.items():
        if env.get(env_key):
            server_data[key] = _from_text(key, env[env_key])
    server_data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    server = from_mapping(ServerConfig, "server", server_data)
    return AppConfig(replace(server, log_level=server.log_level.upper()), vision_config(data),
                     from_mapping(TrackingConfig, "tracking", data.get("tracking")),
                     from_mapping(EventsConfig, "events", data.get("events")),
                     from_mapping(CarefulConfig, "careful", data.get("careful")),
                     gate_config(data.get("gate"), env.get("GATE_WEBHOOK_SECRET")), path)
