"""HTTP plumbing shared by the test stand-ins (hub.py, kube_apiserver.py): a quiet threaded
server, a request handler that replies with JSON and reads a request's path, query and body,
and the loop that serves the API and control ports and announces them to the test."""

import http.server
import json
import threading
import urllib.parse


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Resets, failed handshakes and clients hanging up are the point of these servers.
        pass


def serve(api, control):
    """Serves both servers until interrupted; "READY <api port> <control port>" tells the
    test which ports were bound."""
    for server in (api, control):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("READY %d %d" % (api.server_address[1], control.server_address[1]), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


class JsonHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_request(self):
        """(split URL, query dict, body bytes) of the current request."""
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return url, query, body
