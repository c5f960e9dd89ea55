"""The gate's HTTP routes, behind the token like the rest: plate lists (/lists) and parking sessions
(/sessions). The dashboard's pages web/lists.html and web/sessions.html use them.

A request is read on the loop; its database work runs off it (realtime/threads.py off_the_loop), so a
large import or a slow database never holds the cameras up. A list opens a barrier: without
server.auth_token set, lists are changed only from this machine (403 `token_required` from others).
"""
from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping

from flask import Blueprint, Response, jsonify, request

from realtime.parking import sessions_csv
from realtime.plate_lists import ListError
from realtime.plate_log import PlateLogUnavailable
from realtime.runtime import Runtime
from realtime.threads import off_the_loop

CSV_TYPE = "text/csv; charset=utf-8"


def session_query(args: Mapping[str, str]) -> dict:
    """GET /sessions' filters as ParkingSessions.query takes them; ValueError names a bad one."""
    limit = int(args.get("limit", 100))
    if not 1 <= limit <= 10000:
        raise ValueError("limit must be 1..10000")
    times = {k: float(args[k]) for k in ("since", "until") if args.get(k)}
    flags = {k: args.get(k, "") in ("1", "true", "yes") for k in ("open", "flagged")}
    return {"prefix": args.get("prefix", "").upper(), **times, "open_only": flags["open"],
            "flagged": flags["flagged"], "limit": limit}


def json_object() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ListError("expected a JSON object body")
    return data


def csv_reply(text: str, name: str) -> Response:
    disposition = f'attachment; filename="{name}"'
    return Response(text, mimetype=CSV_TYPE, headers={"Content-Disposition": disposition})


def from_this_machine(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def add_gate_routes(routes: Blueprint, runtime: Runtime, error: Callable[[str, str, int], tuple]) -> None:
    lists, sessions = runtime.gate.lists, runtime.gate.sessions

    @routes.before_request
    def changes_need_a_token():
        """Anyone on the network could list their own plate and open the barrier: with no token set, lists
        are changed from this machine only."""
        changing = request.method in ("PUT", "POST", "DELETE") and request.path.startswith("/lists/")
        if changing and not runtime.config.server.auth_token and not from_this_machine(request.remote_addr):
            return error("token_required", "plate lists open barriers: set server.auth_token (AUTH_TOKEN) "
                         "to change them from another machine", 403)
        return None

    def answers(handler: Callable) -> Callable:
        """The handler's answer, or its JSON error: 400/404 bad input, 503 the database away."""
        @functools.wraps(handler)
        def answer(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except ListError as exc:
                return error("not_found" if exc.status == 404 else "invalid_request", str(exc), exc.status)
            except (ValueError, TypeError) as exc:
                return error("invalid_request", str(exc), 400)
            except PlateLogUnavailable as exc:
                return error("plate_log_unavailable", str(exc), 503)
        return answer

    @routes.get("/lists")
    @answers
    def all_lists():
        return jsonify({"lists": off_the_loop(lists.lists)})

    @routes.get("/lists/<name>")
    @answers
    def list_plates(name: str):
        return jsonify({"name": name, "plates": off_the_loop(lists.plates, name)})

    @routes.put("/lists/<name>")
    @answers
    def make_list(name: str):
        data = request.get_json(silent=True)
        off_the_loop(lists.create, name, data.get("description", "") if isinstance(data, dict) else "")
        return jsonify({"name": name})

    @routes.delete("/lists/<name>")
    @answers
    def delete_list(name: str):
        off_the_loop(lists.delete, name)
        return Response(status=204)

    @routes.post("/lists/<name>/plates")
    @answers
    def add_plates(name: str):
        """One plate {plate, label?, valid_from?, valid_until?}, or several: {plates: [...]}."""
        data = json_object()
        entries = data["plates"] if isinstance(data.get("plates"), list) else [data]
        added = off_the_loop(lists.add, name, entries)
        return jsonify({"plates": [p.__dict__ for p in added]}), 201

    @routes.delete("/lists/<name>/plates/<path:plate>")
    @answers
    def remove_plate(name: str, plate: str):
        off_the_loop(lists.remove, name, plate)
        return Response(status=204)

    @routes.get("/lists/<name>/csv")
    @answers
    def export_list(name: str):
        return csv_reply(off_the_loop(lists.export_csv, name), f"{name}.csv")

    @routes.route("/lists/<name>/csv", methods=["POST", "PUT"])
    @answers
    def import_list(name: str):
        """POST adds the CSV's plates to the list; PUT makes them the whole list."""
        text = request.get_data(as_text=True)
        imported = off_the_loop(lists.import_csv, name, text, request.method == "PUT")
        return jsonify({"name": name, "imported": len(imported)})

    @routes.get("/sessions")
    @answers
    def all_sessions():
        found = off_the_loop(functools.partial(sessions.query, **session_query(request.args)))
        return jsonify({"sessions": found, "overdue_h": runtime.config.gate.session_overdue_h})

    @routes.get("/sessions.csv")
    @answers
    def sessions_export():
        found = off_the_loop(functools.partial(sessions.query, **session_query(request.args)))
        return csv_reply(sessions_csv(found), "sessions.csv")
