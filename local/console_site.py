"""The admin console on loopback HTTPS, as CloudFront serves it in AWS: the files are published to the console bucket
(moto) by the same code as the stack's `ConsoleSite` custom resource (relaydesk.console_site), with this stack's
config.json, and each request reads its object from the bucket (`/` is index.html, the distribution's default root
object; a missing key is S3's 403 through origin access control), with the headers of the template's response
headers policy."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local import serving
from local.aws_resources import load_template
from local.ca import LocalCA

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "console" / "dist"


def response_headers(template_path: Path) -> dict[str, str]:
    """The security headers of template.yaml's ConsoleResponseHeaders policy, as CloudFront adds them."""
    config = load_template(template_path)["Resources"]["ConsoleResponseHeaders"]["Properties"][
        "ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    hsts = config["StrictTransportSecurity"]
    return {
        "Content-Security-Policy": config["ContentSecurityPolicy"]["ContentSecurityPolicy"],
        "Strict-Transport-Security": f"max-age={hsts['AccessControlMaxAgeSec']}"
                                     + ("; includeSubDomains" if hsts.get("IncludeSubdomains") else ""),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": config["FrameOptions"]["FrameOption"],
        "Referrer-Policy": config["ReferrerPolicy"]["ReferrerPolicy"],
    }


class LocalConsoleSite:
    def __init__(self, ca: LocalCA, s3: Any, bucket: str, *, template_path: Path) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.headers = response_headers(template_path)
        self._cert = ca.issue(["127.0.0.1", "localhost"], label="console-site")
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.host, self.port = "127.0.0.1", 0
        self.published: list[str] = []

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/"

    @property
    def origin(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> LocalConsoleSite:
        server = serving.with_tls(_Server((self.host, 0), _handler_for(self)), self._cert)
        self._server, self.port = server, server.server_address[1]
        self._thread = serving.serve(server, "console-site")
        return self

    def publish(self, config: dict[str, str], site: Path = SITE) -> list[str]:
        """What the ConsoleSite custom resource does at deploy time."""
        from relaydesk.console_site import publish

        self.published = publish(self.s3, self.bucket, site, config)
        return self.published

    def stop(self) -> None:
        serving.stop(self._server, self._thread)
        self._server = self._thread = None

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        key = path.split("?", 1)[0].lstrip("/") or "index.html"
        try:
            item = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return 403, {"Content-Type": "application/xml", **self.headers}, \
                b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        headers = {"Content-Type": item["ContentType"], "Cache-Control": item.get("CacheControl", ""),
                   **self.headers}
        return 200, headers, item["Body"].read()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


def _handler_for(site: LocalConsoleSite) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self, with_body: bool) -> None:
            status, headers, body = site.answer(self.path)
            self.send_response(status)
            for name, value in headers.items():
                if value:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._serve(True)

        def do_HEAD(self) -> None:
            self._serve(False)

    return Handler
