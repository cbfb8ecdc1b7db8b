"""Stand-in app for the end-to-end stack test.

  app.py api       HTTP API on $PORT: /health, /api/db (PostGIS), /api/redis, POST /api/echo,
                   /api/migrations, WebSocket echo on any path with an Upgrade header
  app.py web       HTTP front end on $PORT: /health, anything else answers "web <path>"
  app.py worker    counts heartbeats in Redis
  app.py migrate   creates the table the API reads (the migration one-off)
  app.py check     exits 0 when Redis answers (the worker's health check)
"""
import base64
import hashlib
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import redis

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def db():
    return psycopg2.connect(os.environ["DATABASE_URL"])


def cache():
    return redis.Redis.from_url(os.environ["REDIS_URL"])


class Handler(BaseHTTPRequestHandler):
    role = "api"
    protocol_version = "HTTP/1.1"

    def reply(self, status, body, content_type="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reply_json(self, value):
        self.reply(200, json.dumps(value), "application/json")

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, "ok")
        if self.role == "web":
            return self.reply(200, f"web {self.path}")
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if self.path == "/api/db":
            with db() as conn, conn.cursor() as cur:
                cur.execute("SELECT postgis_lib_version(), current_setting('server_version')")
                postgis, server = cur.fetchone()
            return self.reply_json({"postgis": postgis, "postgres": server})
        if self.path == "/api/redis":
            return self.reply_json({"hits": cache().incr("hits")})
        if self.path == "/api/migrations":
            with db() as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM schema_migrations")
                return self.reply_json({"migrations": cur.fetchone()[0]})
        return self.reply(200, f"api {self.path}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        received = 0
        while received < length:
            chunk = self.rfile.read(min(65536, length - received))
            if not chunk:
                break
            received += len(chunk)
        return self.reply_json({"role": self.role, "bytes": received})

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        # One masked text frame (< 126 bytes) in, echoed back unmasked, then close.
        head = self.rfile.read(2)
        length = head[1] & 0x7F
        mask = self.rfile.read(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
        self.wfile.write(bytes([0x81, len(payload)]) + payload)
        self.wfile.write(bytes([0x88, 0]))
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def serve(role):
    Handler.role = role
    ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()


def main(role):
    if role in ("api", "web"):
        serve(role)
    elif role == "worker":
        while True:
            cache().incr("worker-heartbeats")
            time.sleep(1)
    elif role == "migrate":
        with db() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations (ran_at timestamptz DEFAULT now())")
            cur.execute("INSERT INTO schema_migrations DEFAULT VALUES")
    elif role == "check":
        sys.exit(0 if cache().ping() else 1)
    else:
        sys.exit(f"unknown role {role}")


if __name__ == "__main__":
    main(sys.argv[1])
