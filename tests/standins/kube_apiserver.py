#!/usr/bin/env python3
# Test stand-in for the Kubernetes API server, limited to one resource and written from the
# published API conventions (API concepts: list with resourceVersion and limit/continue, watch
# as a chunked stream of newline-delimited JSON events ADDED/MODIFIED/DELETED/BOOKMARK/ERROR,
# allowWatchBookmarks, timeoutSeconds, 410 Gone for a too-old resourceVersion):
#   GET /apis/dns.fabedge.io/v1alpha1/globalservices[?limit=N&continue=T]
#   GET /apis/dns.fabedge.io/v1alpha1/globalservices?watch=1&resourceVersion=RV
#       [&allowWatchBookmarks=true][&timeoutSeconds=S]
# --data FILE starts it holding the objects of a JSON array (the hub's format) instead of none.
# Plain HTTP by default (like a node-local API proxy); --tls-cert/--tls-key switch to HTTPS,
# --client-ca then requires a client certificate, and --token requires a bearer token.
#
# A separate plain-HTTP control port drives it:
#   POST /apply            body: a GlobalService object -> ADDED or MODIFIED event
#   POST /delete?namespace=NS&name=N                      -> DELETED event
#   POST /break?how=abrupt|clean   end every open watch (abrupt: no final chunk)
#   POST /expire?how=http|event    make every resourceVersion handed out so far too old:
#        http  open watches are cut and the next watch gets HTTP 410;
#        event open watches get an ERROR event with code 410
#   POST /bump?n=N         advance the resourceVersion without an event (other resources changed)
#   POST /bookmark         send a BOOKMARK at the current resourceVersion to watches that asked
#   POST /raw              body: one line sent as is to every open watch (bad events)
#   POST /fail_lists?n=N   the next N list requests answer HTTP 500
#   POST /raw_list?n=N     body: the next N list requests answer HTTP 200 with it as is
#   POST /token?value=T    change the required bearer token
#   GET  /state            {"rv", "lists", "watch_rvs": [...], "open_watches", "last_auth"}
#
# Python 3 standard library only. Listens on 127.0.0.1 only; port 0 picks free ports, and the
# line "READY <api_port> <control_port>" on stdout tells the test which.
import argparse
import base64
import copy
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

from standin_http import JsonHandler, QuietServer, serve

RESOURCE = "/apis/dns.fabedge.io/v1alpha1/globalservices"


class Watch:
    def __init__(self, bookmarks):
        self.lines = []
        self.bookmarks = bookmarks
        self.end = None  # None, "abrupt" or "clean"


class State:
    def __init__(self, token):
        self.cond = threading.Condition()
        self.rv = 100
        self.compacted = 0  # a watch from a resourceVersion below this gets 410
        self.objects = {}
        self.item_texts = {}  # key -> list_item() of its object as JSON, made on first list
        self.history = []  # (rv, event line)
        self.watches = []
        self.watch_rvs = []
        self.lists = 0
        self.fail_lists = 0
        self.raw_list, self.raw_lists = b"", 0
        self.listings = {}  # resourceVersion of a paged list -> its keys, for continue tokens
        self.expire_how = "http"
        self.token = token
        self.last_auth = None

    # Callers hold self.cond.
    def item_text(self, key):
        text = self.item_texts.get(key)
        if text is None:
            text = self.item_texts[key] = json.dumps(list_item(self.objects[key]))
        return text

    # Callers hold self.cond.
    def publish(self, event_type, obj):
        line = json.dumps({"type": event_type, "object": obj})
        self.history.append((self.rv, line))
        for w in self.watches:
            w.lines.append(line)
        self.cond.notify_all()

    def status(self, code, reason, message):
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}


def key_of(obj):
    meta = obj.get("metadata", {})
    return "%s/%s" % (meta.get("namespace", "default"), meta.get("name", ""))


def list_item(obj):
    # Real list items are full objects; leave out the type fields to check the client copes.
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def make_api_handler(state):
    class Handler(JsonHandler):

        def chunk(self, data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            auth = self.headers.get("Authorization")
            with state.cond:
                state.last_auth = auth
                token = state.token
            if token and auth != "Bearer " + token:
                self.reply(401, state.status(401, "Unauthorized", "Unauthorized"))
                return
            if url.path != RESOURCE:
                self.reply(404, state.status(404, "NotFound", "the server could not find the requested resource"))
                return
            if query.get("watch") in ("1", "true"):
                self.watch(query)
            else:
                self.list(query)

        def list(self, query):
            with state.cond:
                state.lists += 1
                if state.fail_lists > 0:
                    state.fail_lists -= 1
                    self.reply(500, state.status(500, "InternalError", "etcd is unavailable"))
                    return
                if state.raw_lists > 0:
                    state.raw_lists -= 1
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(state.raw_list)))
                    self.end_headers()
                    self.wfile.write(state.raw_list)
                    return
                if "continue" in query:
                    token = json.loads(base64.b64decode(query["continue"]))
                    list_rv, offset = token["rv"], token["offset"]
                    keys = state.listings.get(list_rv)
                    if list_rv < state.compacted or keys is None:
                        self.reply(410, state.status(410, "Expired", "continue token expired"))
                        return
                else:
                    list_rv, offset, keys = state.rv, 0, sorted(state.objects)
                limit = int(query.get("limit", "0") or 0)
                page = keys[offset:offset + limit] if limit > 0 else keys[offset:]
                items = [state.item_text(k) for k in page if k in state.objects]
                meta = {"resourceVersion": str(list_rv)}
                if limit > 0 and offset + limit < len(keys):
                    # The token names the list's keys kept here (a URL cannot carry 100,000).
                    state.listings[list_rv] = keys
                    while len(state.listings) > 8:
                        del state.listings[min(state.listings)]
                    meta["continue"] = base64.b64encode(json.dumps(
                        {"rv": list_rv, "offset": offset + limit}).encode()).decode()
            # Each item serialised once: pages of 100,000 objects then measure the client.
            head = json.dumps({"apiVersion": "dns.fabedge.io/v1alpha1",
                               "kind": "GlobalServiceList", "metadata": meta})
            body = ('%s, "items": [%s]}' % (head[:-1], ", ".join(items))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def watch(self, query):
            rv_text = query.get("resourceVersion", "")
            bookmarks = query.get("allowWatchBookmarks") == "true"
            timeout = float(query.get("timeoutSeconds", "1800"))
            with state.cond:
                state.watch_rvs.append(rv_text)
                try:
                    rv = int(rv_text) if rv_text else state.rv
                except ValueError:
                    self.reply(400, state.status(400, "BadRequest", "bad resourceVersion"))
                    return
                gone = rv < state.compacted
                how = state.expire_how
                if gone and how == "http":
                    self.reply(410, state.status(410, "Expired", "too old resource version: %d (%d)" % (rv, state.compacted)))
                    return
                w = Watch(bookmarks)
                if gone:
                    w.lines.append(json.dumps({"type": "ERROR", "object": state.status(
                        410, "Expired", "too old resource version: %d (%d)" % (rv, state.compacted))}))
                    w.end = "clean"
                else:
                    w.lines.extend(line for (erv, line) in state.history if erv > rv)
                    state.watches.append(w)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            deadline = time.monotonic() + timeout
            try:
                while True:
                    with state.cond:
                        while not w.lines and w.end is None and time.monotonic() < deadline:
                            state.cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                        lines, w.lines = w.lines, []
                        end = w.end
                    for line in lines:
                        self.chunk(line.encode() + b"\n")
                    if end == "abrupt":
                        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.request.close()
                        self.close_connection = True
                        return
                    if end == "clean" or time.monotonic() >= deadline:
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                        return
            except OSError:
                self.close_connection = True
            finally:
                with state.cond:
                    if w in state.watches:
                        state.watches.remove(w)

    return Handler


def make_control_handler(state):
    class Handler(JsonHandler):
        def handle_any(self):
            url, query, body = self.read_request()
            with state.cond:
                result = self.act(url.path, query, body)
                result.setdefault("rv", state.rv)
            self.reply(200 if "error" not in result else 400, result)

        # Runs with state.cond held.
        def act(self, path, query, body):
            if path == "/apply":
                obj = json.loads(body)
                obj.setdefault("apiVersion", "dns.fabedge.io/v1alpha1")
                obj.setdefault("kind", "GlobalService")
                obj.setdefault("metadata", {}).setdefault("namespace", "default")
                key = key_of(obj)
                state.rv += 1
                obj["metadata"]["resourceVersion"] = str(state.rv)
                event_type = "MODIFIED" if key in state.objects else "ADDED"
                state.objects[key] = obj
                state.item_texts.pop(key, None)
                state.publish(event_type, obj)
                return {"event": event_type}
            if path == "/delete":
                key = "%s/%s" % (query.get("namespace", "default"), query.get("name", ""))
                obj = state.objects.pop(key, None)
                state.item_texts.pop(key, None)
                if obj is None:
                    return {"error": "no such object " + key}
                state.rv += 1
                obj = copy.deepcopy(obj)
                obj["metadata"]["resourceVersion"] = str(state.rv)
                state.publish("DELETED", obj)
                return {"event": "DELETED"}
            if path == "/break":
                for w in state.watches:
                    w.end = query.get("how", "abrupt")
                state.cond.notify_all()
                return {"broken": len(state.watches)}
            if path == "/expire":
                how = query.get("how", "http")
                state.expire_how = how
                state.rv += 1  # a change elsewhere, so even an up-to-date client is behind
                state.compacted = state.rv
                state.history = []
                for w in state.watches:
                    if how == "event":
                        w.lines.append(json.dumps({"type": "ERROR", "object": state.status(
                            410, "Expired", "too old resource version")}))
                        w.end = "clean"
                    else:
                        w.end = "abrupt"
                state.cond.notify_all()
                return {"compacted": state.compacted}
            if path == "/bump":
                state.rv += int(query.get("n", "1"))
                return {}
            if path == "/bookmark":
                line = json.dumps({"type": "BOOKMARK", "object": {
                    "apiVersion": "dns.fabedge.io/v1alpha1", "kind": "GlobalService",
                    "metadata": {"resourceVersion": str(state.rv)}}})
                sent = 0
                for w in state.watches:
                    if w.bookmarks:
                        w.lines.append(line)
                        sent += 1
                state.cond.notify_all()
                return {"sent": sent}
            if path == "/raw":
                for w in state.watches:
                    w.lines.append(body.decode().rstrip("\n"))
                state.cond.notify_all()
                return {"sent": len(state.watches)}
            if path == "/raw_list":
                state.raw_list, state.raw_lists = body, int(query.get("n", "1"))
                return {}
            if path == "/fail_lists":
                state.fail_lists = int(query.get("n", "1"))
                return {}
            if path == "/token":
                state.token = query.get("value", "")
                return {}
            if path == "/state":
                return {"lists": state.lists, "watch_rvs": list(state.watch_rvs),
                        "open_watches": len(state.watches), "last_auth": state.last_auth,
                        "objects": len(state.objects)}
            return {"error": "unknown control path " + path}

        do_GET = handle_any
        do_POST = handle_any

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="key of --tls-cert (PEM)")
    ap.add_argument("--client-ca", help="with TLS: require client certificates signed by this CA")
    ap.add_argument("--token", default="", help="require this bearer token")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--data", help="start with the objects of this JSON array")
    args = ap.parse_args()

    state = State(args.token)
    if args.data:
        with open(args.data) as f:
            for obj in json.load(f):
                obj.setdefault("metadata", {}).setdefault("namespace", "default")
                state.rv += 1
                obj["metadata"]["resourceVersion"] = str(state.rv)
                state.objects[key_of(obj)] = obj
        for key in state.objects:  # before READY: a list then costs the server no encoding
            state.item_text(key)
    api = QuietServer(("127.0.0.1", args.port), make_api_handler(state))
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)
        api.socket = ctx.wrap_socket(api.socket, server_side=True)
    control = QuietServer(("127.0.0.1", args.control_port), make_control_handler(state))

    serve(api, control)


if __name__ == "__main__":
    sys.exit(main())
