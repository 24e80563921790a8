"""The room's own small WSGI app: the participant pages and their static files, nothing else.

It is a separate Flask app sharing the officer app's settings and database, so that an officer route is
not hidden behind a check: it does not exist here (404). In front of it, `RoomWSGI` refuses any Host
header the listener did not announce (421), answers an unchanged poll with 304 straight from the
in-memory board version, and answers the other polls from what the room keeps in memory
(services/room_memory.py) when it holds everything the answer needs: no Flask request, no session, no
query, no template. Anything else (a first poll, a phone or board not seen yet, a snapshot to read
again, a value to refuse) goes to Flask, which answers the same.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from flask import Flask
from werkzeug.http import parse_cookie

from .. import SECURITY_HEADERS

# GET /r/<code>/b/<board uid>/state with If-None-Match: the poll every phone makes every few seconds.
POLL_PATH = re.compile(r"/r/([2-9A-Z]{6})/b/([0-9a-f-]{36})/state")
_HEADERS = [(name, value) for name, value in SECURITY_HEADERS.items()]


class RoomWSGI:
    """The WSGI entry of the room listener: Host check, then the poll's fast path, then Flask."""

    def __init__(self, flask_app: Flask, allowed_hosts: Iterable[str] = ()) -> None:
        self.flask_app = flask_app
        self.allowed_hosts: frozenset[str] = frozenset(allowed_hosts)
        # (code, board uid) → board id, filled by the slow path once it has checked that the board belongs to
        # the open workshop of that code; emptied when a room closes.
        self.poll_boards: dict[tuple[str, str], tuple[int, int]] = {}  # → (board id, workshop id)
        from ..services import board_versions

        self._published = board_versions.published

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("HTTP_HOST", "").lower() not in self.allowed_hosts:
            start_response("421 Misdirected Request", [("Content-Type", "text/plain; charset=utf-8"),
                                                       ("Content-Length", "21"), *_HEADERS])
            return [b"Unknown Host header.\n"]
        etag = environ.get("HTTP_IF_NONE_MATCH")
        if etag and environ.get("REQUEST_METHOD") == "GET":
            match = POLL_PATH.fullmatch(environ.get("PATH_INFO", ""))
            known = self.poll_boards.get(match.groups()) if match else None  # type: ignore[call-overload]
            if (known is not None and known[1] in self.flask_app.extensions["piu_room_open"]
                    and etag == f'"b{self._published(known[0])}"'):
                start_response("304 Not Modified", [("ETag", etag), ("Cache-Control", "no-cache"), *_HEADERS])
                return [b""]
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO", "").endswith("/state"):
            match = POLL_PATH.fullmatch(environ.get("PATH_INFO", ""))
            answer = self._poll_from_memory(environ, *match.groups()) if match else None
            if answer is not None:
                start_response(answer[0], answer[1])
                return [answer[2]]
        return self.flask_app.wsgi_app(environ, start_response)

    def _poll_from_memory(self, environ: dict[str, Any], code: str, board_uid: str
                          ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """A poll's answer from memory, the same as participate.state's, or None to let Flask answer."""
        from ..services import board_versions, room_memory
        from ..services import room as room_service
        from .participate import DEVICE_COOKIE, GZIP_MIN_BYTES, JSON_GZIP_LEVEL

        query = environ.get("QUERY_STRING", "")
        if "\x00" in query or "%00" in query:
            return None  # Flask refuses it, with the phone's language
        token = parse_cookie(environ.get("HTTP_COOKIE", "")).get(DEVICE_COOKIE)
        if not room_service.valid_token(token):
            return None
        workshop_id = room_memory.kept_workshop_id(code)
        if workshop_id is None or workshop_id not in self.flask_app.extensions["piu_room_open"]:
            return None
        participant_id = room_memory.kept_participant_id(workshop_id, room_service.device_hash(token))
        known = self.poll_boards.get((code, board_uid))
        if participant_id is None or known is None or known[1] != workshop_id:
            return None
        board_id = known[0]
        author = room_service.author_key(self.flask_app.config["SECRET_KEY"], token)
        need = board_versions.must_show(board_id, author)
        snap = room_memory.kept_snapshot(board_id, board_uid, need)
        if snap is None or not room_service.seen_by_room(snap, board_uid, workshop_id):
            return None
        view = room_memory.kept_phone_view(snap, author, participant_id, need)
        if view is None:
            return None
        etag = f'"b{snap.version}"'
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            return "304 Not Modified", [("ETag", etag), ("Cache-Control", "no-cache"), *_HEADERS], b""
        since = parse_qs(query).get("since", [None])[0]
        body = room_service.state_json(snap, view, since=since).encode()
        headers = [("Content-Type", "application/json"), ("ETag", etag), ("Cache-Control", "no-cache"), *_HEADERS]
        if len(body) >= GZIP_MIN_BYTES and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=JSON_GZIP_LEVEL)  # as participate._compressed does
            headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        headers.append(("Content-Length", str(len(body))))
        return "200 OK", headers, body

    def forget_boards(self) -> None:
        self.poll_boards.clear()


def create_room_app(officer_app: Flask, *, open_workshops: set[int] | None = None,
                    allowed_hosts: Iterable[str] = ()) -> RoomWSGI:
    """Build the room app over the officer app's settings and database; return its WSGI entry."""
    from ..database import configure_engine
    from ..extensions import babel, db
    from . import participate

    app = Flask("piu_app.room", root_path=officer_app.root_path, static_folder=None,
                template_folder="templates", instance_path=officer_app.instance_path)
    app.config.update(officer_app.config)
    app.config["SESSION_COOKIE_NAME"] = "piu_room_session"  # never used: the room keeps no session
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    babel.init_app(app, default_locale="fr", locale_selector=participate.select_locale)
    app.extensions["piu_room_open"] = open_workshops if open_workshops is not None else set()
    app.register_blueprint(participate.bp)
    participate.install(app)
    entry = RoomWSGI(app, allowed_hosts)
    app.extensions["piu_room_wsgi"] = entry
    return entry
