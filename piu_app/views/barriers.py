"""What only barriers have: the ranking of the most cited barriers, and where each one is cited."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for
from werkzeug.routing import BuildError

from ..i18n import current_lang
from ..services import barriers as barrier_service
from ..services import vocabularies
from .access import require_role


def add_routes(bp: Blueprint) -> None:
    @bp.get("/most-cited")
    @require_role("reader")
    def most_cited():
        lang = current_lang()
        groups, natures = vocabularies.choices("barrier_actor_group", lang), vocabularies.choices("barrier_nature", lang)
        # a filter is a code of its list or nothing: an unknown value filters nothing rather than everything
        actor_group = request.args.get("actor_group", "")
        nature = request.args.get("nature", "")
        actor_group = actor_group if actor_group in dict(groups) else ""
        nature = nature if nature in dict(natures) else ""
        ranking = barrier_service.most_cited(actor_group=actor_group, nature=nature)
        return render_template("barriers/most_cited.html", ranking=ranking, groups=groups, natures=natures,
                               actor_group=actor_group, nature=nature)

    @bp.context_processor
    def _citations():
        return {"barrier_citations": barrier_service.citations_of, "workshop_url": _workshop_url}


def _workshop_url(uid: str) -> str:
    """The workshop's page, once the workshops part of the app is there (else no link)."""
    if "workshops.detail" not in current_app.view_functions:
        return ""
    try:
        return url_for("workshops.detail", uid=uid)
    except BuildError:
        return ""
