"""The dashboard, the search page and the health check."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request

from .. import __version__
from ..database import ping
from ..extensions import db
from ..i18n import current_lang
from ..registry import RECORD_TYPES
from ..services import records as record_service
from ..services import search as search_service
from ..services import vocabularies
from .access import require_role

bp = Blueprint("main", __name__)


@bp.get("/")
@require_role("reader")
def dashboard():
    return render_template("main/dashboard.html", counts=record_service.counts(),
                           recent=record_service.recent_changes(15), drafts=record_service.drafts(15),
                           without_lessons=record_service.experiments_without_lessons(15))


@bp.get("/search")
@require_role("reader")
def search():
    query = request.args.get("q", "").strip()
    record_type = request.args.get("type", "")
    visibility = request.args.get("visibility", "")
    theme = request.args.get("theme", "")
    page = min(max(1, request.args.get("page", 1, type=int)), 100_000)
    page_size = current_app.config["PAGE_SIZE"]
    results, total, counts = [], 0, None
    if query:
        types = [record_type] if record_type else []
        results, total = search_service.search(query, record_types=types, visibility=visibility, theme=theme,
                                               page=page, page_size=page_size, lang=current_lang())
        counts = search_service.counts(query, record_types=types, visibility=visibility, theme=theme,
                                       total=None if types or visibility or theme else total)
    return render_template("main/search.html", query=query, results=results, total=total, page=page,
                           pages=max(1, -(-total // page_size)), first=(page - 1) * page_size + 1,
                           record_type=record_type, visibility=visibility,
                           theme=theme, themes=vocabularies.themes(), counts=counts,
                           only_excluded=bool(query) and not search_service.asks_for_words(query))


@bp.get("/healthz")
def healthz():
    ping(db.session.connection())
    return jsonify({"status": "ok", "version": __version__, "record_types": len(RECORD_TYPES)})
