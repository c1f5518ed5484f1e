#!/usr/bin/env python3
# Test stand-in for FabEdge service-hub, written from its published API (SPEC §5):
#   GET /api/global-services -> JSON array of GlobalService objects
#   GET /api/heartbeat       -> 204
# Every request must carry X-FabEdge-Cluster; the API port speaks HTTPS and requires a client
# certificate signed by --client-ca (mutual TLS). It serves the bytes of --data as they are at
# each request, so a test changes the hub's answer by rewriting that file.
# It answers as the real one (fab-dns pkg/service-hub/apiserver: Go net/http, one w.Write of the
# marshalled list) does over HTTP/1.1: connections kept alive; a body longer than Go's 2048-byte
# buffer goes out chunked, as one chunk, without Content-Length; no ETag, Last-Modified,
# conditional requests, compression or query parameters.
#
# Faults are switched at run time on a separate plain-HTTP control port:
#   POST /mode?name=NAME[&seconds=N]   NAME is one of
#     ok          serve --data
#     500         HTTP 500
#     slow        hang N seconds (default 10), then serve --data
#     truncated   announce the whole body (its chunk size, or Content-Length), send half, close
#     garbage     HTTP 200 with a body that is not JSON
#     reset       close the connection with a TCP RST, no answer
#     empty       HTTP 200 with "[]" (suspicious while the client holds data)
#     suspicious  HTTP 200 with the data's array, first object stripped of its spec
#     notarray    HTTP 200 with a JSON object instead of an array
#   GET /stats -> {"requests": {path: count}, "connections": N, "last_cluster": "...",
#                  "mode": "..."}   (connections: accepted TLS connections, one handshake each)
#
# Python 3 standard library only. Listens on 127.0.0.1 only; port 0 picks free ports, and the
# line "READY <api_port> <control_port>" on stdout tells the test which.
import argparse
import http.server
import io
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

from standin_http import JsonHandler, QuietServer, serve


class State:
    def __init__(self, data_path, cluster):
        self.lock = threading.Lock()
        self.data_path = data_path
        self.cluster = cluster
        self.mode = "ok"
        self.seconds = 10.0
        self.requests = {}
        self.connections = 0
        self.last_cluster = None

    def snapshot(self):
        with self.lock:
            return {
                "requests": dict(self.requests),
                "connections": self.connections,
                "last_cluster": self.last_cluster,
                "mode": self.mode,
            }


def read_data(state):
    with open(state.data_path, "rb") as f:
        return f.read()


# Go's net/http sets Content-Length itself only for a response that fits its first buffer.
GO_CHUNKING_AFTER = 2048


def make_api_handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()  # the TLS handshake is done by now (accept)
            with state.lock:
                state.connections += 1

        def log_message(self, fmt, *args):
            pass

        def send_head(self, status, body, content_type):
            """Headers as Go sends them for this body; True when it goes out chunked."""
            chunked = len(body) > GO_CHUNKING_AFTER
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return chunked

        def send_body(self, status, body, content_type="application/json"):
            chunked = self.send_head(status, body, content_type)
            if chunked:
                self.wfile.write(b"%x\r\n" % len(body))
            self.wfile.write(body)
            if chunked:
                self.wfile.write(b"\r\n0\r\n\r\n")

        def do_GET(self):
            path = urllib.parse.urlsplit(self.path).path
            cluster = self.headers.get("X-FabEdge-Cluster")
            with state.lock:
                state.requests[path] = state.requests.get(path, 0) + 1
                state.last_cluster = cluster
                mode, seconds = state.mode, state.seconds
            if not cluster or (state.cluster and cluster != state.cluster):
                self.send_body(403, b'{"message":"missing or unknown X-FabEdge-Cluster"}')
                return
            if path == "/api/heartbeat":
                self.send_response(204)
                self.end_headers()
                return
            if path != "/api/global-services":
                self.send_body(404, b'{"message":"not found"}')
                return
            self.serve_services(mode, seconds)

        def serve_services(self, mode, seconds):
            if mode == "500":
                self.send_body(500, b'{"message":"internal error"}')
            elif mode == "slow":
                time.sleep(seconds)
                self.send_body(200, read_data(state))
            elif mode == "truncated":
                body = read_data(state)
                if self.send_head(200, body, "application/json"):
                    self.wfile.write(b"%x\r\n" % len(body))
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
            elif mode == "garbage":
                self.send_body(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            elif mode == "reset":
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.request.close()
                self.wfile = io.BytesIO()  # nothing more may reach the closed socket
                self.close_connection = True
            elif mode == "empty":
                self.send_body(200, b"[]")
            elif mode == "suspicious":
                items = json.loads(read_data(state))
                if items:
                    items[0].pop("spec", None)
                self.send_body(200, json.dumps(items).encode())
            elif mode == "notarray":
                self.send_body(200, b'{"items": []}')
            else:
                self.send_body(200, read_data(state))

    return Handler


def make_control_handler(state):
    class Handler(JsonHandler):
        def handle_any(self):
            url, query, _ = self.read_request()
            if url.path == "/mode":
                with state.lock:
                    state.mode = query.get("name", "ok")
                    state.seconds = float(query.get("seconds", "10"))
                self.reply(200, state.snapshot())
            elif url.path == "/stats":
                self.reply(200, state.snapshot())
            else:
                self.reply(404, {"message": "unknown control path"})

        do_GET = handle_any
        do_POST = handle_any

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True, help="JSON file served at /api/global-services")
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server key (PEM)")
    ap.add_argument("--client-ca", required=True, help="CA that must sign client certificates")
    ap.add_argument("--cluster", default="", help="expected X-FabEdge-Cluster (any when empty)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    args = ap.parse_args()

    state = State(args.data, args.cluster)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(args.client_ca)

    api = QuietServer(("127.0.0.1", args.port), make_api_handler(state))
    api.socket = ctx.wrap_socket(api.socket, server_side=True)
    control = QuietServer(("127.0.0.1", args.control_port), make_control_handler(state))

    serve(api, control)


if __name__ == "__main__":
    sys.exit(main())
