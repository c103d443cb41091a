"""A bare HTTP/2 server (prior knowledge, cleartext) on 127.0.0.1 that shows its frames.

hypercorn hides the protocol; this one, built on the `h2` state machine hypercorn itself uses,
records what a test needs to see: the settings the client announced, each request's priority
signals and the size of every DATA frame sent. It serves one body for every path, each DATA
frame as large as the client allows.
"""
from __future__ import annotations

import socket
import threading
from typing import Dict, List, Optional, Tuple

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, RemoteSettingsChanged, RequestReceived
from h2.settings import SettingCodes


class RawH2Server:
    def __init__(self, body: bytes, content_type: str = "image/png"):
        self.body = body
        self.content_type = content_type
        # Paths whose streams are reset (RST_STREAM INTERNAL_ERROR) right after their headers.
        self.reset_paths: set = set()
        # nginx's keepalive_requests: a connection answers this many requests, then goes away
        # gracefully (GOAWAY NO_ERROR naming the last one); streams opened after it are left
        # unprocessed, for the client to send again. 0: never.
        self.requests_per_connection = 0
        self.requests_seen = 0
        # Go away (GOAWAY NO_ERROR, no stream processed) at a connection's first request.
        self.away_at_once = False
        # Paths whose first request is reset before any headers with NO_ERROR: never answered.
        self.unanswered_once_paths: set = set()
        # Bytes of a header block without end to send for paths named here: a HEADERS frame
        # without END_HEADERS, then CONTINUATION frames (the "CONTINUATION flood").
        self.endless_header_paths: Dict[str, int] = {}
        self.client_max_frame_size: Optional[int] = None  # None: the client never set it
        self.data_frame_sizes: List[int] = []
        # path -> (RFC 7540 weight or None, RFC 9218 priority header or None)
        self.priorities: Dict[str, Tuple[Optional[int], Optional[str]]] = {}
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._clients: List[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True, name="raw-h2")
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        except OSError:
            pass
        self._listener.close()
        for client in self._clients:
            client.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # stop() closed the listener
            self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        connection = H2Connection(H2Configuration(client_side=False))
        connection.initiate_connection()
        unsent: Dict[int, bytes] = {}  # stream id -> body still to send (flow control)
        answered = 0
        last_answered: Optional[int] = None  # set once the connection goes away
        try:
            client.sendall(connection.data_to_send())
            while True:
                data = client.recv(65536)
                if not data:
                    return
                for event in connection.receive_data(data):
                    if isinstance(event, RemoteSettingsChanged):
                        changed = event.changed_settings.get(SettingCodes.MAX_FRAME_SIZE)
                        if changed is not None:
                            self.client_max_frame_size = changed.new_value
                    elif isinstance(event, RequestReceived):
                        self.requests_seen += 1
                        if self.away_at_once:
                            connection.close_connection(ErrorCodes.NO_ERROR, last_stream_id=0)
                            client.sendall(connection.data_to_send())
                            return
                        if last_answered is not None:
                            continue  # after the GOAWAY: left unprocessed
                        answered += 1
                        if answered == self.requests_per_connection:
                            last_answered = event.stream_id
                        headers = {_text(name): _text(value) for name, value in event.headers}
                        if headers[":path"] in self.unanswered_once_paths:
                            self.unanswered_once_paths.discard(headers[":path"])
                            connection.reset_stream(event.stream_id, ErrorCodes.NO_ERROR)
                            continue
                        flood = self.endless_header_paths.get(headers[":path"])
                        if flood is not None:
                            client.sendall(connection.data_to_send())
                            _send_endless_header_block(client, event.stream_id, flood)
                            continue
                        weight = event.priority_updated and event.priority_updated.weight
                        self.priorities[headers[":path"]] = (weight, headers.get("priority"))
                        connection.send_headers(event.stream_id, [
                            (":status", "200"), ("content-type", self.content_type),
                            ("content-length", str(len(self.body)))])
                        if headers[":path"] in self.reset_paths:
                            connection.reset_stream(event.stream_id, ErrorCodes.INTERNAL_ERROR)
                        else:
                            unsent[event.stream_id] = self.body
                    elif isinstance(event, ConnectionTerminated):
                        return
                # Also after a WINDOW_UPDATE: what the flow-control window now allows goes out.
                self._send_what_fits(connection, unsent)
                if last_answered is not None and not unsent:
                    connection.close_connection(ErrorCodes.NO_ERROR, last_stream_id=last_answered)
                    client.sendall(connection.data_to_send())
                    return
                client.sendall(connection.data_to_send())
        except OSError:
            return

    def _send_what_fits(self, connection: H2Connection, unsent: Dict[int, bytes]) -> None:
        for stream_id in list(unsent):
            remaining = unsent[stream_id]
            while remaining:
                size = min(len(remaining), connection.max_outbound_frame_size,
                           connection.local_flow_control_window(stream_id))
                if size <= 0:
                    break
                connection.send_data(stream_id, remaining[:size])
                self.data_frame_sizes.append(size)
                remaining = remaining[size:]
            if remaining:
                unsent[stream_id] = remaining
            else:
                connection.end_stream(stream_id)
                del unsent[stream_id]


def _send_endless_header_block(client: socket.socket, stream_id: int, total: int) -> None:
    from hyperframe.frame import ContinuationFrame, HeadersFrame

    start = HeadersFrame(stream_id)
    start.data = b"\x88"  # :status 200, from HPACK's static table
    client.sendall(start.serialize())  # no END_HEADERS flag: the block goes on
    more = ContinuationFrame(stream_id)
    more.data = b"\x00" * 16384  # never decoded by a client that waits for the end (Qt)
    piece = more.serialize() * 64  # 1 MB
    for _ in range(max(1, total // len(piece))):
        client.sendall(piece)  # OSError (the client gave up) ends the connection's thread


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
