"""Learn from peers: who tried an innovation or a theme elsewhere, in a territory like ours (every role)."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for

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


MAX_SHOWN = 200  # peers' experiments on one page at most, however many "show more" were asked


def _shown() -> int:
    """How many peers' experiments each list shows: a page's worth, and one more page per « show more »
    (`?n=`): 50 experiments with their lessons made a 50 KB page, heavy for a phone on a busy Wi-Fi."""
    step = current_app.config["PAGE_SIZE"]
    return min(max(step, request.args.get("n", step, type=int)), MAX_SHOWN)


def _cut(found: list, shown: int) -> tuple[list, bool]:
    """The first `shown` of a list asked one longer, and whether more can be shown."""
    return found[:shown], len(found) > shown and shown < MAX_SHOWN


@bp.get("/innovations/<uid>")
@require_role("reader")
def innovation(uid: str):
    record = record_service.get(INNOVATIONS, uid, include_deleted=False)
    shown = _shown()
    found = peer_service.for_innovation(record, limit=shown + 1, lang=current_lang())
    (results, more), (similar, more_similar) = _cut(found.same, shown), _cut(found.similar, shown)
    return render_template("peers/results.html", innovation=record, theme=None, themes=vocabularies.themes(),
                           home=peer_service.home_territory(), results=results, similar=similar,
                           more=more, more_similar=more_similar, shown=shown,
                           step=current_app.config["PAGE_SIZE"])


@bp.get("/themes/<code>")
@require_role("reader")
def theme(code: str):
    chosen = peer_service.theme(code)
    shown = _shown()
    results, more = _cut(peer_service.who_tried(theme_code=chosen.code, limit=shown + 1, lang=current_lang()),
                         shown)
    return render_template("peers/results.html", innovation=None, theme=chosen, themes=vocabularies.themes(),
                           home=peer_service.home_territory(), results=results, similar=[],
                           more=more, more_similar=False, shown=shown, step=current_app.config["PAGE_SIZE"])
