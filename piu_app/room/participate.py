"""The participant blueprint: the only pages the room listener serves (phones, no account).

A phone is recognised by a random device token in an HttpOnly, SameSite=Lax cookie (the server stores
only its SHA-256). There is no Flask session: every form carries a per-device key (an HMAC of the token)
instead of a CSRF token, and the language comes from a small cookie or the phone's Accept-Language.
Every page works without JavaScript (plain forms, post/redirect/get); `static/room/room.js` improves it.
"""

from __future__ import annotations

import gzip
import hmac
import mimetypes
import secrets
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from .. import SECURITY_HEADERS
from ..database import reset_write_intent, set_write_intent
from ..extensions import db
from ..i18n import LOCALES
from ..models import Board, Workshop, WorkshopParticipant
from ..services import ConflictError, DomainError, InvalidInputError, NotFoundError, vocabularies
from ..services import room as room_service

bp = Blueprint("participate", __name__)

DEVICE_COOKIE = "piu_device"
LANG_COOKIE = "piu_lang"
DEVICE_COOKIE_DAYS = 30
STATIC_DIR = Path(__file__).resolve().parents[1] / "static" / "room"
ASSETS = ("room.css", "room.js")
GZIP_MIN_BYTES = 600
# A poll's JSON is made for one phone and sent once, several times a second in a busy room: the fastest level
# (a third of level 6's CPU, about a tenth larger); pages and scripts keep level 6.
JSON_GZIP_LEVEL = 1
PAGE_NOTES = 100  # the board page without JavaScript: the latest notes of the others, then a link to all


def select_locale() -> str:
    """The phone's choice (the language link), else its Accept-Language between French and English."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(LOCALES, default="fr") or "fr"


# --- request life ------------------------------------------------------------------------------------------

def install(app: Flask) -> None:
    """Add the room app's gatekeeper, headers, compression and error pages."""

    @app.before_request
    def _gatekeeper():
        g._write_token = set_write_intent(request.method not in ("GET", "HEAD"))
        if request.routing_exception is not None:
            raise request.routing_exception  # no such page here (every officer route): 404 before any check
        token = request.cookies.get(DEVICE_COOKIE)
        if room_service.valid_token(token):
            g.device_token, g.new_device = token, False
        else:
            g.device_token, g.new_device = room_service.new_device_token(), True
        if _carries_nul():
            raise InvalidInputError(_("Caractère de contrôle invisible interdit (%(code)s) : retirez-le "
                                      "(il vient souvent d'un copier-coller).", code="U+0000"))
        if request.method == "POST":
            if g.new_device:
                raise InvalidInputError(_("Votre navigateur n'a pas gardé le cookie de l'atelier : "
                                          "autorisez les cookies puis rechargez la page."))
            sent = request.form.get("fk", "")
            if not hmac.compare_digest(sent.encode(), _form_key().encode()):
                raise InvalidInputError(_("Le formulaire ne vient pas de cette page : rechargez-la."))
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if getattr(g, "new_device", False) and response.status_code < 400:
            response.set_cookie(DEVICE_COOKIE, g.device_token, max_age=DEVICE_COOKIE_DAYS * 86400,
                                httponly=True, samesite="Lax", path="/")
        return _compressed(response)

    @app.teardown_request
    def _reset(_exc):
        token = g.pop("_write_token", None)
        if token is not None:
            reset_write_intent(token)

    def _page(status: int, message: str):
        db.session.rollback()
        if _wants_json():
            return jsonify({"error": message}), status
        return render_template("room/error.html", status=status, message=message), status

    app.register_error_handler(NotFoundError, lambda e: _page(404, e.message))
    app.register_error_handler(DomainError, lambda e: _page(_status(e), e.message))
    app.register_error_handler(404, lambda e: _page(404, _("Cette page n'existe pas.")))
    app.register_error_handler(405, lambda e: _page(405, _("Cette action n'est pas permise ici.")))
    app.register_error_handler(413, lambda e: _page(413, _("Envoi trop volumineux.")))
    app.register_error_handler(500, lambda e: _page(500, _(
        "Une erreur inattendue s'est produite ; rien n'a été enregistré. Le détail est dans le journal.")))
    app.jinja_env.globals.update(form_key=_form_key, lang_now=select_locale)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # a note, a name: nothing bigger comes from a phone


def _carries_nul() -> bool:
    if "\x00" in request.path:
        return True
    fields = [request.args] + ([request.form] if request.method == "POST" else [])
    return any("\x00" in k or "\x00" in v for multi in fields for k, v in multi.items(multi=True))


def _status(exc: DomainError) -> int:
    return 409 if isinstance(exc, ConflictError) else 400


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.path.endswith("/state")


def _form_key() -> str:
    return room_service.form_key(current_app.config["SECRET_KEY"], g.device_token)


def _author() -> str:
    return room_service.author_key(current_app.config["SECRET_KEY"], g.device_token)


def _compressed(response: Response) -> Response:
    """Gzip text answers when the phone accepts it (the first load must stay under 30 KB)."""
    if (response.direct_passthrough or response.status_code != 200 or "gzip" not in request.headers.get(
            "Accept-Encoding", "") or response.headers.get("Content-Encoding")
            or not (response.mimetype or "").startswith(("text/", "application/json", "application/javascript"))):
        return response
    data = response.get_data()
    if len(data) < GZIP_MIN_BYTES:
        return response
    level = JSON_GZIP_LEVEL if response.mimetype == "application/json" else 6
    response.set_data(gzip.compress(data, compresslevel=level))
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response


# --- helpers ----------------------------------------------------------------------------------------------

def _open_ids() -> set[int]:
    return current_app.extensions["piu_room_open"]


def _workshop(code: str) -> Workshop:
    return room_service.workshop_by_code(code, _open_ids())


def _participant(workshop: Workshop) -> WorkshopParticipant | None:
    return room_service.participant_for(workshop, g.device_token)


def _board(workshop: Workshop | int, board_uid: str, code: str = "") -> Board:
    """The board of the workshop (or workshop id, with its join `code`) that the room may see."""
    board = room_service.board_of(workshop, board_uid)
    join_code = code if isinstance(workshop, int) else workshop.join_code
    # From now on an unchanged poll of this board is answered before Flask (see app.RoomWSGI).
    current_app.extensions["piu_room_wsgi"].poll_boards[(join_code, board.uid)] = (board.id, board.workshop_id)
    return board


def _actor_groups() -> list[tuple[str, str]]:
    return vocabularies.choices(room_service.ACTOR_GROUP_VOCABULARY, select_locale())


# --- static files -------------------------------------------------------------------------------------------

_asset_cache: dict[str, tuple[bytes, bytes, str]] = {}


@bp.get("/s/<name>")
def asset(name: str):
    """Serve the room's own CSS and JS (held in memory, gzipped once)."""
    if name not in ASSETS:
        abort(404)
    if name not in _asset_cache:
        raw = (STATIC_DIR / name).read_bytes()
        _asset_cache[name] = (raw, gzip.compress(raw, compresslevel=9), secrets.token_hex(8))
    raw, packed, tag = _asset_cache[name]
    etag = f'"{tag}"'
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag})
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    response = Response(packed if use_gzip else raw, mimetype=mimetypes.guess_type(name)[0] or "text/plain")
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "max-age=3600"
    return response


# --- pages ----------------------------------------------------------------------------------------------------

@bp.get("/")
def index():
    """Type the code shown on the screen."""
    code = request.args.get("code")
    if code is not None:
        normal = room_service.normalise_code(code)
        if normal and _known(normal):
            return redirect(url_for(".workshop", code=normal))
        return render_template("room/index.html", error=_(
            "Aucun atelier ouvert avec ce code. Vérifiez-le auprès de l'animateur.")), 404
    return render_template("room/index.html")


def _known(code: str) -> bool:
    try:
        _workshop(code)
    except NotFoundError:
        return False
    return True


@bp.get("/lang/<code>")
def set_language(code: str):
    if code not in LOCALES:
        abort(404)
    target = request.args.get("next", "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = url_for(".index")
    response = redirect(target)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


@bp.get("/r/<code>")
def workshop(code: str):
    """The workshop's door: say who you are (optional), then go to the open board."""
    ws = _workshop(code)
    participant = _participant(ws)
    boards = room_service.open_boards(ws)
    if participant is not None and len(boards) == 1 and "profile" not in request.args:
        return redirect(url_for(".board", code=ws.join_code, board_uid=boards[0].uid))
    return render_template("room/workshop.html", workshop=ws, participant=participant, boards=boards,
                           actor_groups=_actor_groups())


@bp.post("/r/<code>/join")
def join(code: str):
    ws = _workshop(code)
    form = request.form
    try:
        room_service.join(ws, token=g.device_token, name=form.get("name", ""),
                          organisation=form.get("organisation", ""), actor_group=form.get("actor_group", ""),
                          consent_named=form.get("consent") == "1")
    except InvalidInputError as exc:
        db.session.rollback()
        return render_template("room/workshop.html", workshop=ws, participant=None,
                               boards=room_service.open_boards(ws), actor_groups=_actor_groups(),
                               error=exc.message, values=form), 400
    db.session.commit()
    return redirect(url_for(".workshop", code=ws.join_code))


def _need_participant(ws: Workshop) -> WorkshopParticipant:
    participant = _participant(ws)
    if participant is None:
        raise _NotJoinedError
    return participant


class _NotJoinedError(Exception):
    pass


@bp.errorhandler(_NotJoinedError)
def _not_joined(_exc):
    db.session.rollback()
    if _wants_json():
        return jsonify({"error": _("Rejoignez d'abord l'atelier."), "join": True}), 403
    return redirect(url_for(".workshop", code=request.view_args.get("code", "") if request.view_args else ""))


def _board_page(ws: Workshop, board: Board, participant: WorkshopParticipant, *, status: int = 200,
                error: str = "", text: str = "", category: str = "") -> tuple[str, int]:
    state = room_service.board_state(board, author=_author(), participant=participant)
    labels = {c.uid: c.label for c in board.categories}
    mine, votes = set(state["mine"]), state["my_votes"]
    shared = [{**n, "mine": n["id"] in mine, "my_votes": votes.get(n["id"], 0)} for n in state["notes"]]
    own = [{**n, "mine": True, "my_votes": 0} for n in state["own"]] + [n for n in shared if n["mine"]]
    others = [n for n in shared if not n["mine"]]
    # Without JavaScript the page shows the latest notes and a link to all of them: a board of 1 500 notes is
    # 250 KB of HTML for an old phone, and the room renders this page for every phone that joins (with
    # JavaScript the first poll brings the whole board anyway).
    more = len(others) if len(others) > PAGE_NOTES and "all" not in request.args else 0
    return render_template("room/board.html", workshop=ws, board=board, participant=participant, state=state,
                           own=own, others=others[-PAGE_NOTES:] if more else others, more=more, labels=labels,
                           client_key=secrets.token_urlsafe(16), error=error, text=text,
                           category=category), status


@bp.get("/r/<code>/b/<board_uid>")
def board(code: str, board_uid: str):
    ws = _workshop(code)
    participant = _need_participant(ws)
    return _board_page(ws, _board(ws, board_uid), participant)


@bp.get("/r/<code>/b/<board_uid>/state")
def state(code: str, board_uid: str):
    """The board as JSON for the phone's script; ETag = the board's version (304 comes from RoomWSGI).
    Answered from what the room keeps in memory (services/room_memory.py): a poll is most of what the room
    answers, and once the room runs it reads nothing from the database."""
    workshop_id = room_service.open_workshop_id(code, _open_ids())
    participant_id = room_service.participant_id_for(workshop_id, g.device_token)
    if participant_id is None:
        raise _NotJoinedError
    join_code = room_service.normalise_code(code)
    known = current_app.extensions["piu_room_wsgi"].poll_boards.get((join_code, board_uid))
    board_id = known[0] if known is not None and known[1] == workshop_id else _board(workshop_id, board_uid,
                                                                                       join_code).id
    version, body = room_service.board_state_json(board_id, board_uid=board_uid, workshop_id=workshop_id,
                                                  author=_author(),
                                                  participant=participant_id, since=request.args.get("since"))
    etag = f'"b{version}"'
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
    response = Response(body, mimetype="application/json")
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    return response


def _writing(code: str, board_uid: str) -> tuple[int, str, WorkshopParticipant, Board]:
    """(workshop id, join code, participant, board) for a phone's note or vote: the workshop's row is not
    read (a post is one short write; the room keeps the code's workshop id and the device's participant id)."""
    workshop_id = room_service.open_workshop_id(code, _open_ids())
    participant_id = room_service.participant_id_for(workshop_id, g.device_token)
    participant = db.session.get(WorkshopParticipant, participant_id) if participant_id is not None else None
    if participant is None:
        raise _NotJoinedError
    join_code = room_service.normalise_code(code)
    return workshop_id, join_code, participant, _board(workshop_id, board_uid, join_code)


@bp.post("/r/<code>/b/<board_uid>/notes")
def post_note(code: str, board_uid: str):
    workshop_id, join_code, participant, board = _writing(code, board_uid)
    form = request.form
    try:
        note, created = room_service.post_note(board, participant, author=_author(), text=form.get("text"),
                                               category_uid=form.get("category", ""),
                                               client_key=form.get("client_key"))
    except DomainError as exc:
        db.session.rollback()
        if _wants_json():
            return jsonify({"error": exc.message}), _status(exc)
        return _board_page(db.session.get(Workshop, workshop_id), board, participant, status=400,
                           error=exc.message, text=form.get("text", "")[:5000], category=form.get("category", ""))
    db.session.commit()
    if _wants_json():
        return jsonify({"id": note.uid, "created": created, "pending": note.pending}), 201 if created else 200
    return redirect(url_for(".board", code=join_code, board_uid=board.uid) + "#mine")


@bp.post("/r/<code>/b/<board_uid>/votes")
def vote(code: str, board_uid: str):
    workshop_id, join_code, participant, board = _writing(code, board_uid)
    raw = request.form.get("delta")
    delta = 1 if raw == "1" else -1 if raw == "-1" else 0
    try:
        weight = room_service.vote(board, participant, note_uid=request.form.get("note"), delta=delta,
                                   author=_author())
    except DomainError as exc:
        db.session.rollback()
        if _wants_json():
            return jsonify({"error": exc.message}), _status(exc)
        return _board_page(db.session.get(Workshop, workshop_id), board, participant, status=_status(exc),
                           error=exc.message)
    db.session.commit()
    if _wants_json():
        return jsonify({"my_votes": weight})
    return redirect(url_for(".board", code=join_code, board_uid=board.uid) + "#board")
