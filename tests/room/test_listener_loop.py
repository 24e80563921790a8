"""The room listener's event loop (room/loop.py) with real sockets on loopback: many phones on keep-alive
connections, answers larger than one write, phones that go away. Every request is answered, whole."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from piu_app.models import StickyNote
from piu_app.room import loop as room_loop

NOTES = 400


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int, str, str]]:
    import waitress.server

    from piu_app import create_app, upgrade_database
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.room.listener import listener_for
    from piu_app.services import board_versions, room_memory
    from tests.room.factories import make_board, make_workshop

    real_options = waitress.server.TcpWSGIServer.set_socket_options

    def small_send_buffer(self, conn):  # so that a 100 KB answer cannot leave in one send(): the loop writes
        real_options(self, conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    monkeypatch.setattr(waitress.server.TcpWSGIServer, "set_socket_options", small_send_buffer)
    board_versions.forget()
    room_memory.forget()
    app = create_app({"SECRET_KEY": "loop", "ROOM_ADDRESSES": "127.0.0.1", "ROOM_PORT": 0},
                     instance_path=tmp_path / "data")
    upgrade_database(app, backup=False)
    with app.app_context(), writing():
        workshop = make_workshop()
        board = make_board(workshop)
        for i in range(NOTES):  # a board whose state (~100 KB of JSON) takes many writes to send
            db.session.add(StickyNote(board=board, category=board.categories[i % 2], text=f"{i:04d} " + "x" * 230,
                                      client_key=f"seed{i:06d}", position=i + 1))
        code, workshop_id, board_uid = workshop.join_code, workshop.id, board.uid
        db.session.commit()
    room = listener_for(app)
    room.open(workshop_id)
    try:
        assert isinstance(room._server.asyncore.loop, type(lambda: None))  # the idle-aware loop is in use
        yield "127.0.0.1", room.port, code, board_uid
    finally:
        room.close_all()
        board_versions.forget()


def _get(conn: http.client.HTTPConnection, host: str, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Host": host})
    answer = conn.getresponse()
    return answer.status, answer.read()


def test_many_keep_alive_phones_are_all_answered_whole(listener) -> None:
    """Forty phones hold their connections open, then each joins and asks six times, on the same connection,
    for the board's whole state (~100 KB: more than the socket takes at once, so the loop writes the rest)
    or the door page."""
    ip, port, code, board_uid = listener
    host = f"{ip}:{port}"
    failures: list[str] = []
    barrier = threading.Barrier(40)

    def phone(n: int) -> None:
        conn = http.client.HTTPConnection(ip, port, timeout=30)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            barrier.wait()  # every phone holds its connection open before any asks
            conn.request("GET", f"/r/{code}", headers={"Host": host})
            door = conn.getresponse()
            cookie = door.getheader("Set-Cookie").split(";", 1)[0]
            fk = re.search(r'name="fk" value="([^"]+)"', door.read().decode()).group(1)
            conn.request("POST", f"/r/{code}/join", body=f"fk={fk}&name=P{n}",
                         headers={"Host": host, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
            joined = conn.getresponse()
            joined.read()
            assert joined.status == 302, joined.status
            for i in range(6):
                path = f"/r/{code}/b/{board_uid}/state" if (n + i) % 2 else f"/?code={code}"
                conn.request("GET", path, headers={"Host": host, "Cookie": cookie, "Accept": "application/json"})
                answer = conn.getresponse()
                body = answer.read()
                if answer.status not in (200, 302):
                    failures.append(f"phone {n} request {i}: {answer.status}")
                elif path.endswith("/state") and len(json.loads(body)["notes"]) != NOTES:
                    failures.append(f"phone {n} request {i}: {len(body)} bytes")
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(f"phone {n}: {exc!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=phone, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert failures == []


def test_a_phone_that_goes_away_mid_request_leaves_the_others_served(listener) -> None:
    ip, port, _code, _board = listener
    host = f"{ip}:{port}"
    for _ in range(20):  # half a request, then gone; then a request cut after its headers
        with socket.create_connection((ip, port)) as raw:
            raw.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())
        with socket.create_connection((ip, port)) as raw:
            raw.sendall(f"GET /s/room.js HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    conn = http.client.HTTPConnection(ip, port, timeout=10)
    assert _get(conn, host, "/")[0] == 200
    assert _get(conn, host, "/")[0] == 200  # the same connection, kept alive
    conn.close()


def test_the_loop_asks_an_idle_connection_only_when_it_has_an_event() -> None:
    """The point of the loop: idle connections are not asked at every turn (a fake map, no sockets)."""

    class Idle:
        accepting = False
        asked = 0

        def readable(self) -> bool:
            self.asked += 1
            return True

        def writable(self) -> bool:
            return False

    class IdleChannel(Idle, room_loop.HTTPChannel):  # an HTTPChannel for the loop, without a socket
        def __init__(self) -> None:
            pass

    r, w = socket.socketpair()
    try:
        channels = {r.fileno(): IdleChannel()}
        poll = room_loop.IdleAwarePoll()
        poll.next_full_scan = float("inf")  # no full scan in this test
        for _ in range(50):
            poll.turn(0, channels)
        assert channels[r.fileno()].asked == 1  # asked once, when it appeared; then left to the kernel
        assert poll.registered == {r.fileno(): room_loop.IDLE}
    finally:
        r.close()
        w.close()
