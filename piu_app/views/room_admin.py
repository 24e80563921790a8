"""The facilitator's side of the room: open and close it, check it is reachable, and the projector page."""

from __future__ import annotations

import segno
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from markupsafe import Markup

from ..extensions import db
from ..room.listener import listener_for
from ..services import DomainError
from ..services import room as room_service
from .access import require_role

bp = Blueprint("room_admin", __name__, url_prefix="/workshops")


def _qr(payload: str, *, scale: int) -> Markup:
    """An inline SVG QR code (attributes only, no style: the CSP forbids inline styles)."""
    svg = segno.make(payload, error="m").svg_inline(scale=scale, dark="#000", light="#fff", border=2)
    return Markup(svg)  # noqa: S704 - segno's own markup; the payload is encoded in the modules, not the text


def _wifi_qr_text(ssid: str, password: str, security: str) -> str:
    def escape(value: str) -> str:
        for char in "\\;,:\"":
            value = value.replace(char, "\\" + char)
        return value

    return f"WIFI:T:{security};S:{escape(ssid)};P:{escape(password)};;"


@bp.get("/<uid>/room")
@require_role("reader")
def room(uid: str):
    workshop = room_service.workshop_by_uid(uid)
    listener = listener_for(current_app._get_current_object())  # type: ignore[attr-defined]
    is_open = listener.is_open(workshop.id)
    checks = listener.self_check() if is_open and request.args.get("check") else []
    return render_template("workshops/room.html", workshop=workshop, listener=listener, is_open=is_open,
                           checks=checks, boards=room_service.open_boards(workshop))


@bp.post("/<uid>/room/open")
@require_role("editor")
def open_room(uid: str):
    workshop = room_service.workshop_by_uid(uid)
    try:
        room_service.ensure_join_code(workshop)
        db.session.commit()
        listener_for(current_app._get_current_object()).open(workshop.id)  # type: ignore[attr-defined]
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(_("La salle est ouverte : code %(code)s.", code=workshop.join_code), "success")
    return redirect(url_for(".room", uid=workshop.uid, check=1))


@bp.post("/<uid>/room/close")
@require_role("editor")
def close_room(uid: str):
    workshop = room_service.workshop_by_uid(uid)
    listener_for(current_app._get_current_object()).close(workshop.id)  # type: ignore[attr-defined]
    flash(_("La salle est fermée : les téléphones ne peuvent plus se connecter."), "success")
    return redirect(url_for(".room", uid=workshop.uid))


@bp.get("/<uid>/projector")
@require_role("reader")
def projector(uid: str):
    workshop = room_service.workshop_by_uid(uid)
    listener = listener_for(current_app._get_current_object())  # type: ignore[attr-defined]
    board = room_service.projector_board(workshop, request.args.get("board"))
    is_open = listener.is_open(workshop.id)
    join_urls = [f"{url}/r/{workshop.join_code}" for url in listener.urls()] if is_open else []
    wifi = listener.wifi if is_open else None
    state = room_service.projector_state(board) if board else None
    return render_template("workshops/projector.html", workshop=workshop, board=board, state=state,
                           is_open=is_open, join_urls=join_urls,
                           qr=_qr(join_urls[0], scale=8) if join_urls else None,
                           wifi=wifi, wifi_qr=_qr(_wifi_qr_text(*wifi), scale=5) if wifi else None,
                           labels={c.uid: c.label for c in board.categories} if board else {})


@bp.get("/<uid>/projector/state")
@require_role("reader")
def projector_state(uid: str):
    """The live board for the projector's script (polled like the phones, ETag = board version)."""
    workshop = room_service.workshop_by_uid(uid)
    board = room_service.projector_board(workshop, request.args.get("board"))
    if board is None:
        return jsonify({"v": 0, "notes": [], "counts": {}, "total": 0})
    from ..services import board_versions

    etag = f'"p{board.id}.{board_versions.current(board.id)}"'
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
    response = jsonify(room_service.projector_state(board))
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.post("/<uid>/projector/wifi")
@require_role("editor")
def projector_wifi(uid: str):
    """Show a Wi-Fi QR code on the projector (kept in memory while the room is open, never stored)."""
    workshop = room_service.workshop_by_uid(uid)
    listener = listener_for(current_app._get_current_object())  # type: ignore[attr-defined]
    if request.form.get("clear"):
        listener.wifi = None
    else:
        try:
            wifi = room_service.wifi_payload(request.form.get("ssid"), request.form.get("password"),
                                             request.form.get("security", "WPA"))
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".room", uid=workshop.uid))
        if not listener.is_open(workshop.id):
            flash(_("Ouvrez d'abord la salle."), "error")
            return redirect(url_for(".room", uid=workshop.uid))
        listener.wifi = wifi
    return redirect(url_for(".projector", uid=workshop.uid))
