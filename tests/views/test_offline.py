"""Offline, always: no page may load or link anything outside the app."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.registry import RECORD_TYPES
from piu_app.services import demo

EXTERNAL = re.compile(r"^\s*(https?:)?//|^\s*(ftp|ws|wss):", re.I)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data", "formaction") and value:
                self.urls.append((tag, value))


def _urls(html: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


def test_no_page_references_anything_outside_the_app(app, admin):
    with app.test_request_context(), writing():
        demo.load()
        db.session.commit()
    seen: set[str] = set()
    queue = ["/", "/search?q=solaire", "/admin/users", "/admin/vocabularies", "/admin/vocabularies/themes",
             "/exchange/", "/exchange/conflicts", "/backups", "/peers/"]
    for key in RECORD_TYPES:
        prefix = f"/{key.replace('_', '-')}"
        queue += [f"{prefix}/", f"{prefix}/new", f"{prefix}/?trash=1"]
    offenders = []
    while queue and len(seen) < 400:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        response = admin.get(path)
        assert response.status_code in (200, 302), f"{path} answered {response.status_code}"
        if not response.content_type.startswith("text/html"):
            continue
        for tag, url in _urls(response.get_data(as_text=True)):
            if EXTERNAL.match(url):
                offenders.append((path, url))
            elif tag == "a" and url.startswith("/") and "/documents/" not in url and "logout" not in url \
                    and len(seen) + len(queue) < 400 and url.split("#")[0] not in seen \
                    and url.split("#")[0] not in queue:
                queue.append(url.split("#")[0])
    assert not offenders, offenders
    assert len(seen) > 100  # the crawl really visited detail, history and sheet pages
    assert any(p.endswith("/sheet") for p in seen) and any(p.endswith("/history") for p in seen)


def test_static_assets_are_local_and_small(client):
    css = client.get("/static/css/piu.css")
    assert css.status_code == 200 and len(css.data) < 20_000
    assert not re.search(rb"url\(\s*['\"]?(https?:)?//", css.data)
    assert b"@import" not in css.data
