"""The gate's HTTP routes, behind the token like the rest: plate lists (/lists) and parking sessions
(/sessions). The dashboard's pages web/lists.html and web/sessions.html use them."""
from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Blueprint, Response, jsonify, request

from realtime.parking import sessions_csv
from realtime.plate_lists import ListError
from realtime.plate_log import PlateLogUnavailable
from realtime.runtime import Runtime

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


def add_gate_routes(routes: Blueprint, runtime: Runtime, error: Callable[[str, str, int], tuple]) -> None:
    gate = runtime.gate

    def answer(work: Callable[[], Response | tuple]) -> Response | tuple:
        """A list or session request's answer, or its JSON error: 400/404 bad input, 503 the database away."""
        try:
            return work()
        except ListError as exc:
            return error("not_found" if exc.status == 404 else "invalid_request", str(exc), exc.status)
        except (ValueError, TypeError) as exc:
            return error("invalid_request", str(exc), 400)
        except PlateLogUnavailable as exc:
            return error("plate_log_unavailable", str(exc), 503)

    def body() -> dict:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ListError("expected a JSON object body")
        return data

    def csv_reply(text: str, name: str) -> Response:
        disposition = f'attachment; filename="{name}"'
        return Response(text, mimetype=CSV_TYPE, headers={"Content-Disposition": disposition})

    @routes.get("/lists")
    def lists():
        return answer(lambda: jsonify({"lists": gate.lists.lists()}))

    @routes.get("/lists/<name>")
    def list_plates(name: str):
        return answer(lambda: jsonify({"name": name, "plates": gate.lists.plates(name)}))

    @routes.put("/lists/<name>")
    def make_list(name: str):
        def work():
            gate.lists.create(name, (request.get_json(silent=True) or {}).get("description", ""))
            return jsonify({"name": name}), 200
        return answer(work)

    @routes.delete("/lists/<name>")
    def delete_list(name: str):
        return answer(lambda: (gate.lists.delete(name), Response(status=204))[1])

    @routes.post("/lists/<name>/plates")
    def add_plates(name: str):
        def work():
            data = body()
            entries = data["plates"] if isinstance(data.get("plates"), list) else [data]
            added = gate.lists.add(name, entries)
            return jsonify({"plates": [p.__dict__ for p in added]}), 201
        return answer(work)

    @routes.delete("/lists/<name>/plates/<path:plate>")
    def remove_plate(name: str, plate: str):
        return answer(lambda: (gate.lists.remove(name, plate), Response(status=204))[1])

    @routes.get("/lists/<name>/csv")
    def export_list(name: str):
        return answer(lambda: csv_reply(gate.lists.export_csv(name), f"{name}.csv"))

    @routes.route("/lists/<name>/csv", methods=["POST", "PUT"])
    def import_list(name: str):
        """POST adds the CSV's plates to the list; PUT makes them the whole list."""
        def work():
            text = request.get_data(as_text=True)
            imported = gate.lists.import_csv(name, text, replace=request.method == "PUT")
            return jsonify({"name": name, "imported": len(imported)}), 200
        return answer(work)

    @routes.get("/sessions")
    def sessions():
        return answer(lambda: jsonify({"sessions": gate.sessions.query(**session_query(request.args)),
                                       "overdue_h": runtime.config.gate.session_overdue_h}))

    @routes.get("/sessions.csv")
    def sessions_export():
        return answer(lambda: csv_reply(sessions_csv(gate.sessions.query(**session_query(request.args))),
                                        "sessions.csv"))
