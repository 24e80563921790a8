"""The workshop report and the online-board import page at 375 px with JavaScript off: no sideways scroll,
the heading in the first screen, finger-sized links and buttons (the measures of test_phone_layout)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import serve
from tests.browser.test_phone_layout import PASSWORD, PHONE, _logged_in, _measure

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def workshop_server(tmp_path_factory) -> Iterator[tuple[str, str, str]]:
    from piu_app import create_app, upgrade_database
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.services import instance as instance_service
    from piu_app.services import users as user_service
    from tests.workshop_data import make_workshop

    home: Path = tmp_path_factory.mktemp("report") / "data"
    app = create_app({"SECRET_KEY": "browser-tests"}, instance_path=home)
    upgrade_database(app, backup=False)
    with app.test_request_context(), writing():
        instance_service.configure(city_name="Ville Test", country_code="FR", instance_code="ville-test")
        user_service.create(username="fatou", password=PASSWORD, role="admin")
        rows = make_workshop()
        rows["notes"]["unvoted"].text = "Une très longue note " * 12 + "sanscoupuresanscoupuresanscoupuresanscoupure"
        ids = rows["workshop"].uid, rows["boards"][0].uid
        db.session.commit()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    with serve(home) as url:
        yield url, *ids


def test_report_and_import_pages_fit_a_phone(browser, workshop_server) -> None:
    base, workshop_uid, board_uid = workshop_server
    context, page = _logged_in(browser, base, PHONE, javascript=False)
    problems: list[str] = []
    for path in (f"/workshops/{workshop_uid}/report", f"/workshops/boards/{board_uid}/import"):
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        _measure(page, path, problems)
    assert not problems, "\n".join(problems)
    context.close()
