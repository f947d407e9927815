"""The proxy tests' upstream written with Python's standard library: an app as Python servers
see requests, which is not how hyper does (see python_upstream.rs). It answers every request with
JSON saying what reached it, and prints its port once listening.

  python_upstream.py http   http.server, HTTP/1.1 with kept-alive connections; `/close...`
                            answers with `Connection: close` and closes; `/missing...` is a 404
  python_upstream.py wsgi   a WSGI app on wsgiref (the interface Flask and Django apps are
                            written to), which answers in HTTP/1.0 and closes every connection
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


def checksum(body):
    return sum(body) % 65521


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        echoed = {
            "method": self.command,
            "target": self.path,
            "headers": headers,
            "body_length": len(body),
            "body_checksum": checksum(body),
            "peer_port": self.client_address[1],
        }
        data = json.dumps(echoed).encode()
        self.send_response(404 if self.path.startswith("/missing") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.path.startswith("/close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args):
        pass


def wsgi_app(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    echoed = {
        "method": environ["REQUEST_METHOD"],
        "path_info": environ["PATH_INFO"],
        "query_string": environ.get("QUERY_STRING", ""),
        "environ": {key: value for key, value in environ.items() if key.startswith("HTTP_")},
        "body_length": len(body),
        "body_checksum": checksum(body),
        "peer_port": int(environ.get("REMOTE_PORT") or 0),
    }
    data = json.dumps(echoed).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class QuietWsgiHandler(WSGIRequestHandler):
    def get_environ(self):
        environ = super().get_environ()
        environ["REMOTE_PORT"] = str(self.client_address[1])
        return environ

    def log_message(self, *args):
        pass


class ThreadingWsgiServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main():
    if sys.argv[1:] == ["wsgi"]:
        server = make_server("127.0.0.1", 0, wsgi_app, ThreadingWsgiServer, QuietWsgiHandler)
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
        server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


main()
