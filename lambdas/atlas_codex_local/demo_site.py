"""The demo site local mode serves on loopback: a small shop catalogue with pagination,
product pages with JSON-LD, robots.txt and a sitemap — something real to extract from."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

PRODUCTS: Final = [
    {"id": i, "name": name, "price": price, "stock": i % 3 != 0}
    for i, (name, price) in enumerate(
        [
            ("Desk lamp", "24.90"),
            ("Reading lamp", "39.00"),
            ("Floor lamp", "89.50"),
            ("Pendant light", "59.00"),
            ("Wall sconce", "45.00"),
            ("Table lamp", "29.90"),
            ("String lights", "14.50"),
            ("Night light", "9.99"),
        ],
        start=1,
    )
]
PER_PAGE: Final = 3


def _layout(title: str, body: str, head: str = "") -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>{head}</head><body>"
        "<nav><a href='/'>Home</a> | <a href='/catalog/1'>Catalog</a></nav>"
        f"<main>{body}</main><footer>Atlas Codex demo shop</footer></body></html>"
    )


def _catalog(n: int) -> str | None:
    pages = (len(PRODUCTS) + PER_PAGE - 1) // PER_PAGE
    if not 1 <= n <= pages:
        return None
    cards = "".join(
        f"<article class='product'><h2 class='name'><a href='/product/{p['id']}'>{p['name']}</a></h2>"
        f"<span class='price'>€{p['price']}</span> <span class='stock'>{'In stock' if p['stock'] else 'Out of stock'}</span></article>"
        for p in PRODUCTS[(n - 1) * PER_PAGE : n * PER_PAGE]
    )
    nxt = f"<a rel='next' href='/catalog/{n + 1}'>Next</a>" if n < pages else ""
    return _layout(f"Catalog page {n}", f"<h1>Catalog page {n}</h1>{cards}<p>{nxt}</p>")


def _product(i: int) -> str | None:
    if not 1 <= i <= len(PRODUCTS):
        return None
    p = PRODUCTS[i - 1]
    ld = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": p["name"],
        "sku": f"DEMO-{i}",
        "offers": {"@type": "Offer", "price": p["price"], "priceCurrency": "EUR"},
    }
    head = f"<script type='application/ld+json'>{json.dumps(ld)}</script>"
    return _layout(str(p["name"]), f"<h1>{p['name']}</h1><p>Price: €{p['price']}</p>", head)


class DemoSite:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, ctype, body = site.page(self.path.split("?", 1)[0])
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, name="demo-site", daemon=True).start()

    def page(self, path: str) -> tuple[int, str, str]:
        html = "text/html; charset=utf-8"
        if path == "/robots.txt":
            return 200, "text/plain", "User-agent: *\nAllow: /\n"
        if path == "/sitemap.xml":
            locs = "".join(f"<url><loc>{self.url}/product/{p['id']}</loc></url>" for p in PRODUCTS)
            return 200, "application/xml", f"<urlset>{locs}</urlset>"
        if path == "/":
            return (
                200,
                html,
                _layout(
                    "Demo shop",
                    "<h1>Demo shop</h1><p><a href='/catalog/1'>Browse the catalog</a></p>",
                ),
            )
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[1].isdigit():
            page = (
                _catalog(int(parts[1]))
                if parts[0] == "catalog"
                else _product(int(parts[1]))
                if parts[0] == "product"
                else None
            )
            if page is not None:
                return 200, html, page
        return 404, html, _layout("Not found", "<p>Not found</p>")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
