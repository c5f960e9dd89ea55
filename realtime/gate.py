"""The gate: what a camera's plate event means for the barrier, the lists and the parking sessions.

config.yaml `gate.cameras` gives a camera a role and rules. Each vehicle's plate event (when it is
announced: new, or its text corrected) is looked up on the camera's lists (realtime/plate_lists.py,
in memory) and decided:
    entry / exit  `denied` when on a `deny` list, `open` when on an `allow` list (or `open_unlisted`),
                  else `denied` (a plate on an allow list as read beats one a confusion away on a deny list)
    watch         `alert` when on a `deny` list, `known` when on an `allow` list, else `unknown`
then the camera's actions run: `on_match` when the plate is on one of its lists, else `on_no_match`
(`emit`: a `gate_decision` event to the camera's sender and viewers; `webhook`: POSTed to the
camera's URL, signed (realtime/webhooks.py); `log`: a line in the server's log). An entry opens
a parking session for the plate and an exit closes it (realtime/parking.py), whatever the decision.
All of it runs on the loop side in memory, or is queued: a decision never waits on a database or
a receiver.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from detector.config import ConfigError, from_mapping
from realtime.events import PlateEvent
from realtime.parking import ParkingSessions
from realtime.plate_lists import ListMatch, PlateLists
from realtime.stats import Stats
from realtime.webhooks import Webhooks

log = logging.getLogger("plates")
ROLES = ("entry", "exit", "watch")
ACTIONS = ("emit", "webhook", "log")
CAMERA_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class CameraRule:
    role: str = "watch"  # entry | exit | watch
    allow: tuple[str, ...] = ()  # lists whose plates open the barrier
    deny: tuple[str, ...] = ()  # lists whose plates are refused (entry, exit) or alerted (watch), first
    open_unlisted: bool = False  # entry/exit: a plate on no list opens too (an exit gate, visitors welcome)
    on_match: tuple[str, ...] = ("emit", "log")  # actions when the plate is on one of the camera's lists
    on_no_match: tuple[str, ...] = ("emit", "log")  # ... when it is on none
    webhook: str = ""  # where the `webhook` action POSTs (http:// or https://)

    def validate(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"role: expected one of {', '.join(ROLES)}, got {self.role!r}")
        for name in ("on_match", "on_no_match"):
            wrong = [a for a in getattr(self, name) if a not in ACTIONS]
            if wrong:
                raise ConfigError(f"{name}: unknown action(s) {', '.join(wrong)}; "
                                  f"known: {', '.join(ACTIONS)}")
        wants_webhook = "webhook" in self.on_match + self.on_no_match
        if wants_webhook and not self.webhook.startswith(("http://", "https://")):
            raise ConfigError("webhook: the webhook action needs an http:// or https:// URL")


@dataclass(frozen=True)
class GateConfig:
    cameras: dict[str, CameraRule] = field(default_factory=dict)  # camera id -> its role and rules
    webhook_secret: str = ""  # HMAC key of X-Plates-Signature (env GATE_WEBHOOK_SECRET)
    webhook_timeout_s: float = 2.0  # one try gives up after this long
    webhook_retries: int = 3  # a failed try (no answer, 5xx, 429) is tried again this many times
    webhook_backoff_s: float = 1.0  # after this long, then twice as long each time
    webhook_queue: int = 1000  # deliveries waiting at most (the oldest dropped, counted)
    webhook_senders: int = 4  # deliveries in flight at once (a hung receiver holds one)
    public_url: str = ""  # the server's address as webhook receivers reach it, for crop_url; "": host:port
    session_overdue_h: float = 24.0  # an open parking session older than this is flagged `overdue`
    lists_refresh_s: float = 5.0  # another process's list changes are seen within this long

    def validate(self) -> None:
        times = (self.webhook_timeout_s, self.webhook_backoff_s, self.session_overdue_h, self.lists_refresh_s)
        if min(times) <= 0:
            raise ConfigError("gate: webhook_timeout_s, webhook_backoff_s, session_overdue_h and "
                              "lists_refresh_s must be positive")
        if self.webhook_retries < 0 or self.webhook_queue < 1 or self.webhook_senders < 1:
            raise ConfigError("gate: webhook_retries must be at least 0, webhook_queue and webhook_senders 1")
        uses_webhooks = any("webhook" in r.on_match + r.on_no_match for r in self.cameras.values())
        if uses_webhooks and not self.webhook_secret:
            raise ConfigError("gate.webhook_secret: webhooks are signed; set a secret "
                              "(or GATE_WEBHOOK_SECRET)")


def gate_config(data: Any, secret: str | None = None) -> GateConfig:
    """gate: from config.yaml; `secret` (the environment's) replaces webhook_secret."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError("gate: expected a mapping")
    data = dict(data or {})
    cameras = data.pop("cameras", None) or {}
    if not isinstance(cameras, dict):
        raise ConfigError("gate.cameras: expected a mapping of camera id to its rules")
    rules = {}
    for camera_id, rule in cameras.items():
        if not isinstance(camera_id, str) or not CAMERA_ID.match(camera_id):
            raise ConfigError(f"gate.cameras: {camera_id!r} is not a camera id (1-64 of A-Z a-z 0-9 _ . : -)")
        try:
            rules[camera_id] = from_mapping(CameraRule, f"gate.cameras.{camera_id}", rule)
        except ConfigError as exc:
            message = str(exc)
            prefix = f"gate.cameras.{camera_id}"
            raise ConfigError(message if message.startswith(prefix) else f"{prefix}.{message}") from None
    if secret:
        data["webhook_secret"] = secret
    config = replace(from_mapping(GateConfig, "gate", data), cameras=rules)
    config.validate()
    return config


@dataclass(frozen=True)
class GateDecision:
    event: PlateEvent
    role: str
    decision: str  # open | denied (entry, exit); alert | known | unknown (watch)
    match: ListMatch | None

    def to_dict(self, public_url: str) -> dict:
        event = self.event
        return {"event_id": event.id, "camera_id": event.camera_id, "role": self.role, "plate": event.text,
                "confidence": round(event.confidence, 4), "decision": self.decision,
                "list": self.match.list if self.match else None,
                "match": self.match.to_dict() if self.match else None,
                "first_seen": event.first_seen, "last_seen": event.last_seen,
                "crop_url": f"{public_url}/events/{event.id}/crop"}


class Gate:
    def __init__(self, config: GateConfig, lists: PlateLists, sessions: ParkingSessions, webhooks: Webhooks,
                 stats: Stats, public_url: str):
        self.config, self.lists, self.sessions, self.webhooks = config, lists, sessions, webhooks
        self.stats, self.public_url = stats, public_url

    def decide(self, event: PlateEvent) -> dict | None:
        """Run the camera's rules on an announced event; the `gate_decision` payload to emit, if any."""
        rule = self.config.cameras.get(event.camera_id)
        if rule is None:
            return None
        day = datetime.fromtimestamp(event.first_seen).date().isoformat()
        denied = self.lists.match(event.text, rule.deny, day)
        allowed = self.lists.match(event.text, rule.allow, day)
        if denied and allowed and allowed.kind == "exact" != denied.kind:
            denied = None  # the plate itself is allowed; the blocked one is only a misread away
        allowed = None if denied else allowed
        if rule.role == "watch":
            decision = "alert" if denied else "known" if allowed else "unknown"
        else:
            decision = "open" if allowed or (rule.open_unlisted and not denied) else "denied"
        result = GateDecision(event, rule.role, decision, denied or allowed)
        self.stats.m_decisions.labels(decision).inc()
        if rule.role == "entry":
            self.sessions.entry(event)
        elif rule.role == "exit":
            self.sessions.exit(event)
        actions = rule.on_match if result.match else rule.on_no_match
        payload = result.to_dict(self.public_url)
        if "log" in actions:
            how = f" ({result.match.describe()})" if result.match else ""
            log.info("gate %s camera=%r plate %s: %s%s", rule.role, event.camera_id, event.text, decision,
                     how)
        if "webhook" in actions:
            self.webhooks.send(rule.webhook, {"type": "gate_decision", **payload})
        return payload if "emit" in actions else None
