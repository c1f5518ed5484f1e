"""HTTP plumbing shared by the test stand-ins (hub.py, kube_apiserver.py): a quiet HTTP/1.1
request handler that replies with JSON and reads a request's path, query and body."""

import http.server
import json
import urllib.parse


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
