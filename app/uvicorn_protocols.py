"""uvicorn's HTTP (httptools) and WebSocket (websockets' sans-I/O) protocols, without the reference cycles a
WebSocket connection leaves behind.

Two cycles outlived every closed WebSocket connection, so reference counting never freed them:
- uvicorn (0.54) hands an upgraded connection to its WebSocket protocol and forgets the HTTP protocol object,
  but that object and its parser still point at each other (the parser holds the protocol's callbacks). uvicorn
  breaks this cycle in `connection_lost` (encode/uvicorn#1604), which an upgraded connection never reaches.
- websockets' protocol object and its parser, a suspended generator whose frame holds the protocol
  (python-websockets/websockets#1749). The parser waits for an end of stream that uvicorn never feeds it.

Each cycle held a connection's objects (~40 of them: both protocols, the parser, the transport, flow control)
until the cyclic garbage collector ran. With clients connecting to job streams all the time, it ran every few
hundred connections, over thousands of such objects, and its pauses were the slowest 5 % of connects
(`bench/streams.py`: p95 22 ms against 17 ms with the collector off). Breaking both cycles when a connection is
handed over or lost lets reference counting free the lot at once.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class HttpProtocol(HttpToolsProtocol):
    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        self.parser = None  # type: ignore[assignment]  # no more data comes here: the transport has a new protocol


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.conn.parser.close()  # nothing is parsed after this; a closed generator lets go of the protocol
