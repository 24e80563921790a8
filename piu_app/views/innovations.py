"""What only innovations have: the one-page sheet for elected officials and the overview on the detail page."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..registry import INNOVATIONS
from ..services import innovations as innovation_service
from ..services import records as record_service
from .access import require_role


def add_routes(bp: Blueprint) -> None:
    @bp.get("/<uid>/sheet")
    @require_role("reader")
    def sheet(uid: str):
        record = record_service.get(INNOVATIONS, uid, include_deleted=False)
        return render_template("innovations/sheet.html", rt=INNOVATIONS, record=record,
                               overview=innovation_service.overview(record))

    @bp.context_processor
    def _overview():
        return {"innovation_overview": innovation_service.overview}
