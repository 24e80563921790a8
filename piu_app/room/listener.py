"""The room listener: a second waitress server in the same process, on the laptop's LAN addresses.

Opened by the first workshop whose room opens, stopped when the last one closes. It serves the room's
WSGI app only (`room.app`), and accepts only the Host headers it announced (address:port). The officer's
interface stays on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..services import room_memory

log = logging.getLogger("piu.room")
WINDOWS_SELECT_LIMIT = 500  # select() watches 512 sockets on Windows; keep room for listeners and the trigger
_VIRTUAL = ("docker", "veth", "br-", "virbr", "vmnet", "vmware", "virtualbox", "vboxnet", "vethernet", "hyper-v",
            "tailscale", "zerotier", "utun", "tun", "tap")


@dataclass(frozen=True)
class Address:
    ip: str
    adapter: str
    likely: bool


def _rank(ip: ipaddress.IPv4Address, adapter: str) -> tuple[int, int]:
    virtual = any(word in adapter.lower() for word in _VIRTUAL)
    private = ip.is_private
    # A hotspot or a venue's Wi-Fi is nearly always 192.168.x or 10.x; virtual adapters come last.
    kind = 0 if str(ip).startswith("192.168.") else 1 if str(ip).startswith("10.") else 2 if private else 3
    return (1 if virtual else 0, kind)


def lan_addresses(configured: str = "") -> list[Address]:
    """Return the IPv4 addresses phones may reach, the likely one first (configured ones as given)."""
    if configured.strip():
        ips = [part.strip() for part in configured.split(",") if part.strip()]
        return [Address(ip, "", i == 0) for i, ip in enumerate(ips)]
    import ifaddr

    found: list[tuple[tuple[int, int], str, str]] = []
    for adapter in ifaddr.get_adapters():
        name = adapter.nice_name or adapter.name
        for entry in adapter.ips:
            if not isinstance(entry.ip, str):
                continue  # IPv6: phones in a room use the IPv4 address the hotspot gave them
            ip = ipaddress.IPv4Address(entry.ip)
            if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
                continue
            found.append((_rank(ip, name), entry.ip, name))
    found.sort()
    return [Address(ip, name, i == 0) for i, (_r, ip, name) in enumerate(found)]


def _windows() -> bool:
    """Tell whether waitress must use select() (Windows: no poll(), 512 sockets at most)."""
    return sys.platform == "win32"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class RoomListener:
    """The room's server, owned by the officer app (`listener_for(app)`)."""

    def __init__(self, officer_app: Flask) -> None:
        self.officer_app = officer_app
        self.open_ids: set[int] = set()
        self.addresses: list[Address] = []
        self.port = 0
        self.wifi: tuple[str, str, str] | None = None  # (ssid, password, security): memory only, never stored
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._wsgi: Any = None
        self.error = ""

    @property
    def running(self) -> bool:
        return self._server is not None

    def is_open(self, workshop_id: int) -> bool:
        return self.running and workshop_id in self.open_ids

    def urls(self) -> list[str]:
        return [f"http://{a.ip}:{self.port}" for a in self.addresses]

    def open(self, workshop_id: int) -> None:
        """Open the room for a workshop, starting the listener if it is not running."""
        with self._lock:
            if self._server is None:
                self._start()
            self.open_ids.add(workshop_id)

    def close(self, workshop_id: int) -> None:
        """Close the room for a workshop; the last one closed stops the listener."""
        with self._lock:
            self.open_ids.discard(workshop_id)
            if self._wsgi is not None:
                self._wsgi.forget_boards()
            room_memory.forget()  # the codes, devices and boards it kept for that room
            if not self.open_ids and self._server is not None:
                self._stop()

    def close_all(self) -> None:
        with self._lock:
            self.open_ids.clear()
            if self._server is not None:
                self._stop()

    def _start(self) -> None:
        from waitress.server import create_server

        from .app import create_room_app

        config = self.officer_app.config
        addresses = lan_addresses(str(config.get("ROOM_ADDRESSES") or ""))
        if not addresses:
            from flask_babel import gettext as _

            from ..services import ConflictError

            raise ConflictError(_("Cet ordinateur n'est relié à aucun réseau : activez le partage de connexion "
                                  "(point d'accès) ou connectez-vous au Wi-Fi de la salle, puis réessayez."))
        port = int(config.get("ROOM_PORT") or 0) or _free_port(addresses[0].ip)
        if self._wsgi is None:
            self._wsgi = create_room_app(self.officer_app, open_workshops=self.open_ids)
        limit = int(config.get("ROOM_CONNECTION_LIMIT") or 1000)
        windows = _windows()
        if windows:
            limit = min(limit, WINDOWS_SELECT_LIMIT)
        try:
            server = create_server(self._wsgi, listen=" ".join(f"{a.ip}:{port}" for a in addresses),
                                   threads=int(config.get("ROOM_THREADS") or 1), connection_limit=limit,
                                   channel_timeout=60, ident="PIU-salle", clear_untrusted_proxy_headers=True,
                                   asyncore_use_poll=not windows, map={})
        except OSError as exc:
            from flask_babel import gettext as _

            from ..services import ConflictError

            raise ConflictError(_("Le port %(port)d est déjà pris sur cet ordinateur (%(error)s) : fermez "
                                  "l'autre programme ou choisissez un autre port (réglage ROOM_PORT).",
                                  port=port, error=exc.strerror or exc)) from exc
        if not windows:  # waitress's loop asks every connection at every turn: see room/loop.py
            from .loop import idle_aware_asyncore

            server.asyncore = idle_aware_asyncore()
        self.addresses, self.port = addresses, port
        self._wsgi.allowed_hosts = frozenset(f"{a.ip}:{port}" for a in addresses)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="piu-room-listener", daemon=True)
        self._thread.start()
        log.info("room listener on %s", ", ".join(self.urls()))

    def _stop(self) -> None:
        from waitress import wasyncore
        from waitress.trigger import trigger

        server, self._server = self._server, None
        socket_map = server.map if hasattr(server, "map") else server._map
        pulls = [obj for obj in list(socket_map.values()) if isinstance(obj, trigger)]

        def close_everything() -> None:
            wasyncore.close_all(socket_map)

        if pulls:
            pulls[0].pull_trigger(close_everything)  # closed inside the loop's own thread: no race
        if self._thread is not None:
            self._thread.join(10)
        server.task_dispatcher.shutdown(timeout=5)
        self._thread = None
        self.wifi = None
        log.info("room listener stopped")

    def self_check(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Ask the room port on each address, from the laptop itself: does it answer?"""
        results = []
        for address in self.addresses:
            ok, detail = False, ""
            try:
                conn = http.client.HTTPConnection(address.ip, self.port, timeout=timeout)
                conn.request("GET", "/", headers={"Host": f"{address.ip}:{self.port}"})
                response = conn.getresponse()
                response.read()
                conn.close()
                ok, detail = response.status == 200, str(response.status)
            except OSError as exc:
                detail = str(exc)
            results.append({"address": address, "url": f"http://{address.ip}:{self.port}/", "ok": ok,
                            "detail": detail})
        return results


def listener_for(app: Flask) -> RoomListener:
    """Return the officer app's room listener (made on first use; nothing runs until a room opens)."""
    listener = app.extensions.get("piu_room")
    if listener is None:
        listener = app.extensions.setdefault("piu_room", RoomListener(app))
    return listener
