"""Learn from peers: who tried an innovation or a theme elsewhere, in a territory like ours (every role)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from ..i18n import current_lang
from ..registry import INNOVATIONS
from ..services import peers as peer_service
from ..services import records as record_service
from ..services import vocabularies
from .access import require_role

bp = Blueprint("peers", __name__, url_prefix="/peers")


@bp.app_context_processor
def _peer_preview():
    # the innovation page shows the first few peers (without their lessons) and links to the full page
    return {"peer_preview": lambda record: peer_service.for_innovation(record, limit=3, lang=current_lang(),
                                                                       details=False)}


@bp.get("/")
@require_role("reader")
def index():
    code = request.args.get("theme", "")
    if code:  # the theme picker is a plain GET form, so it works without JavaScript
        return redirect(url_for(".theme", code=code))
    return render_template("peers/index.html", themes=vocabularies.themes(), home=peer_service.home_territory())


@bp.get("/innovations/<uid>")
@require_role("reader")
def innovation(uid: str):
    record = record_service.get(INNOVATIONS, uid, include_deleted=False)
    found = peer_service.for_innovation(record, lang=current_lang())
    return render_template("peers/results.html", innovation=record, theme=None, themes=vocabularies.themes(),
                           home=peer_service.home_territory(), results=found.same, similar=found.similar)


@bp.get("/themes/<code>")
@require_role("reader")
def theme(code: str):
    chosen = peer_service.theme(code)
    return render_template("peers/results.html", innovation=None, theme=chosen, themes=vocabularies.themes(),
                           home=peer_service.home_territory(),
                           results=peer_service.who_tried(theme_code=chosen.code, lang=current_lang()), similar=[])
