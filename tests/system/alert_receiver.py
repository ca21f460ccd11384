"""A webhook receiver for the end-to-end alert test, run as a container on the stack's
network (``docker run ... ml-python python3 /srv/alert_receiver.py``).

Apprise's ``json://`` notifications are HTTP POSTs of a JSON object; each one is printed on
stdout as a single line prefixed with ``ALERT``, so the test reads them with ``docker logs``.
Standard library only: the ml-python image has nothing else.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUTPUT = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {"unparsed": body.decode(errors="replace")}
        line = "ALERT " + json.dumps({"path": self.path, "payload": payload}) + "\n"
        # One write per alert under a lock: the server is threaded, and print() writes the
        # text and its newline separately, so two alerts at once shared a line.
        with OUTPUT:
            sys.stdout.write(line)
            sys.stdout.flush()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        # Readiness probe of the test.
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    print(f"alert receiver listening on port {port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
