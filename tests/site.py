"""A small web site served on loopback for engine tests: products, pagination, a sitemap,
robots.txt, redirects (one to the metadata address), an oversized page and odd charsets."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PRODUCTS = [
    {
        "id": i,
        "name": f"Lamp {i}",
        "price": f"{i},50 €",
        "stock": "In stock" if i % 2 else "Out of stock",
    }
    for i in range(1, 13)
]
PER_PAGE = 5


def _page(title: str, body: str, head: str = "") -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>{head}</head><body>"
        "<nav class='menu'><a href='/'>Home</a> <a href='/catalog/1'>Catalog</a> <a href='/private/x'>Private</a></nav>"
        "<div id='cookie-consent'>We use cookies. Accept?</div>"
        f"<main>{body}</main><footer>© Example Shop · <a href='/imprint'>Imprint</a></footer></body></html>"
    )


def catalog(n: int) -> str:
    items = PRODUCTS[(n - 1) * PER_PAGE : n * PER_PAGE]
    cards = "".join(
        f"<article class='product'><h2 class='name'><a href='/product/{p['id']}'>{p['name']}</a></h2>"
        f"<span class='price'>{p['price']}</span><span class='stock'>{p['stock']}</span></article>"
        for p in items
    )
    pages = (len(PRODUCTS) + PER_PAGE - 1) // PER_PAGE
    nxt = f"<a class='next' href='/catalog/{n + 1}?utm_source=x'>Next »</a>" if n < pages else ""
    return _page(f"Catalog {n}", f"<h1>Catalog page {n}</h1>{cards}{nxt}")


def product(i: int) -> str:
    p = PRODUCTS[i - 1]
    ld = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": p["name"],
        "sku": f"SKU-{i}",
        "offers": {
            "@type": "Offer",
            "price": f"{i}.50",
            "priceCurrency": "EUR",
            "availability": "https://schema.org/InStock",
        },
    }
    head = f"<script type='application/ld+json'>{json.dumps(ld)}</script><meta property='og:title' content='{p['name']}'>"
    body = (
        f"<h1>{p['name']}</h1><p>A <b>fine</b> lamp.</p><table><tr><th>Spec</th><th>Value</th></tr>"
        f"<tr><td>Watt</td><td>{i * 10}</td></tr></table>"
    )
    return _page(str(p["name"]), body, head)


def app_page(state: str = "", noscript: bool = False, mount: str = "root") -> str:
    """A page built by JavaScript in the browser: an empty mount point, a bundle, and
    (maybe) the data the first screen is drawn from."""
    notice = (
        "<noscript>You need to enable JavaScript to run this app.</noscript>" if noscript else ""
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Shop</title>"
        "<script src='/static/bundle.js' defer></script></head>"
        f"<body>{notice}<div id='{mount}'></div>{state}</body></html>"
    )


APP_PRODUCT = {
    "id": 7,
    "title": "Desk lamp Aurora",
    "price": {"amount": "49.90", "currencyCode": "EUR"},
    "sku": "AUR-7",
    "availability": "in_stock",
    "brand": {"name": "Lumen"},
}
NEXT_STATE = json.dumps(
    {
        "props": {"pageProps": {"product": {**APP_PRODUCT, "title": "Desk lamp Aurora"}}},
        "page": "/product/[id]",
        "buildId": "b1",
    }
)
# Nuxt 3's payload (devalue): the root and every value by index, wrappers for reactivity.
NUXT_PAYLOAD = json.dumps(
    [
        ["ShallowReactive", 1],
        {"data": 2, "state": 9},
        ["ShallowReactive", 3],
        {"product-7": 4},
        {"name": 5, "price": 6, "currency": 7, "sku": 8},
        "Floor lamp Nova",
        129,
        "EUR",
        "NOV-1",
        {"cart": 10},
        [],
    ]
)
INITIAL_STATE = json.dumps(
    {
        "catalog": {
            "item": {
                "name": "Wall lamp Iris",
                "salePrice": 19.5,
                "currency": "USD",
                "inStock": False,
            }
        }
    }
)


PRODUCT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "currency": {"type": "string"},
        "sku": {"type": "string"},
    },
}
"""The product facts the site's app pages carry (shipped state, or drawn by a script)."""

JS_PRODUCT = {"name": "Desk lamp Vega", "price": "39.00", "currency": "EUR", "sku": "VEG-3"}
_JS_DRAW = (
    "function draw(p){document.getElementById('root').innerHTML="
    '\'<div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">\'+p.name+'
    "'</h1><p>A lamp drawn by a script.</p><span itemprop=\"sku\">'+p.sku+'</span>"
    '<div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
    '<meta itemprop="priceCurrency" content="\'+p.currency+\'">'
    '<span class="price" itemprop="price" content="\'+p.price+\'">\'+p.price+\' EUR</span>'
    "</div></div>';}"
)


def js_page(script: str) -> str:
    """An app shell whose content only a browser running ``script`` sees."""
    return app_page(f"<script>{_JS_DRAW}{script}</script>", noscript=True)


def probe_page(canary: str) -> str:
    """A page that tries every way a browser can reach ``canary`` (host:port) but the main
    document: frames, scripts, fetch and XHR, a WebSocket, a beacon, prefetch, styles,
    images, a name that resolves to loopback, HTTPS, and a redirect from the page's own
    site."""
    port = canary.rsplit(":", 1)[1]
    http = f"http://{canary}"
    tries = [
        f"fetch('{http}/fetch').catch(()=>0)",
        f"fetch('https://{canary}/tls').catch(()=>0)",
        f"fetch('http://localhost:{port}/named').catch(()=>0)",
        "fetch('/js/to-canary').catch(()=>0)",
        f"(function(){{var x=new XMLHttpRequest();x.open('GET','{http}/xhr');x.send()}})()",
        f"(function(){{try{{new WebSocket('ws://{canary}/ws')}}catch(e){{}}}})()",
        f"navigator.sendBeacon('{http}/beacon','x')",
        f"(function(){{var i=new Image();i.src='{http}/image'}})()",
    ]
    return (
        "<!doctype html><html><head><title>Probe</title>"
        f"<link rel='prefetch' href='{http}/prefetch'><link rel='stylesheet' href='{http}/style'>"
        f"<script src='{http}/script'></script></head><body><h1>Probe</h1>"
        f"<iframe src='{http}/frame'></iframe><iframe src='/js/to-canary'></iframe>"
        f"<img src='{http}/img'><script>{';'.join(tries)}</script></body></html>"
    )


class Site:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.canary = "127.0.0.2:9"
        """host:port the probe pages try to reach (a test points it at its canary)."""
        self.release_slow = threading.Event()
        """``/slow`` answers once this is set (or after a minute): a job reading it runs
        until then."""
        site = self
        routes: dict[str, Callable[[], tuple[int, dict[str, str], bytes]]] = {
            "/robots.txt": lambda: (
                200,
                {"Content-Type": "text/plain"},
                b"User-agent: *\nDisallow: /private/\n",
            ),
            "/sitemap.xml": lambda: (
                200,
                {"Content-Type": "application/xml"},
                (
                    "<urlset>"
                    + "".join(f"<url><loc>{site.url}/product/{i}</loc></url>" for i in range(1, 4))
                    + "</urlset>"
                ).encode(),
            ),
            "/": lambda: (
                200,
                {"Content-Type": "text/html; charset=utf-8"},
                _page("Home", "<h1>Welcome</h1><p><a href='/catalog/1'>Shop</a></p>").encode(),
            ),
            "/latin1": lambda: (
                200,
                {"Content-Type": "text/html; charset=iso-8859-1"},
                "<html><body><p>Grüße aus Köln</p></body></html>".encode("latin-1"),
            ),
            "/meta-charset": lambda: (
                200,
                {"Content-Type": "text/html"},
                "<html><head><meta charset='windows-1252'></head><body><p>Café</p></body></html>".encode(
                    "cp1252"
                ),
            ),
            "/to-metadata": lambda: (
                302,
                {"Location": "http://169.254.169.254/latest/meta-data/"},
                b"",
            ),
            "/loop": lambda: (302, {"Location": "/loop"}, b""),
            "/moved": lambda: (301, {"Location": "/product/1"}, b""),
            "/huge": lambda: (
                200,
                {"Content-Type": "text/html"},
                b"<p>" + b"x" * 3_000_000 + b"</p>",
            ),
            "/slow": site._slow,
            "/gone": lambda: (404, {"Content-Type": "text/html"}, b"<p>no</p>"),
            "/busy": lambda: (503, {"Content-Type": "text/html"}, b"<p>busy</p>"),
            "/private/x": lambda: (200, {"Content-Type": "text/html"}, b"<p>secret</p>"),
            "/app/next": lambda: (
                200,
                {"Content-Type": "text/html"},
                app_page(
                    f"<script id='__NEXT_DATA__' type='application/json'>{NEXT_STATE}</script>",
                    mount="__next",
                ).encode(),
            ),
            "/app/nuxt": lambda: (
                200,
                {"Content-Type": "text/html"},
                app_page(
                    f"<script type='application/json' id='__NUXT_DATA__'>{NUXT_PAYLOAD}</script>",
                    mount="__nuxt",
                ).encode(),
            ),
            "/app/state": lambda: (
                200,
                {"Content-Type": "text/html"},
                app_page(
                    "<script>window.__INITIAL_STATE__ = JSON.parse("
                    + json.dumps(INITIAL_STATE)
                    + ");window.__CONFIG__ = buildConfig(window.location);</script>"
                ).encode(),
            ),
            "/app/shell": lambda: (
                200,
                {"Content-Type": "text/html"},
                app_page(noscript=True).encode(),
            ),
            "/js/delayed": lambda: (
                200,
                {"Content-Type": "text/html"},
                js_page(f"setTimeout(function(){{draw({json.dumps(JS_PRODUCT)})}},300);").encode(),
            ),
            "/js/fetched": lambda: (
                200,
                {"Content-Type": "text/html"},
                js_page("fetch('/js/product.json').then(r=>r.json()).then(draw);").encode(),
            ),
            "/js/product.json": lambda: (
                200,
                {"Content-Type": "application/json"},
                json.dumps(JS_PRODUCT).encode(),
            ),
            "/js/routed": lambda: (
                200,
                {"Content-Type": "text/html"},
                js_page(
                    "history.pushState({},'','/js/routed/vega-3');"
                    f"setTimeout(function(){{draw({json.dumps(JS_PRODUCT)})}},100);"
                ).encode(),
            ),
            "/js/static": lambda: (
                200,
                {"Content-Type": "text/html"},
                _page("Plain", "<h1>Plain lamp</h1><p>No script on this page.</p>").encode(),
            ),
            "/js/probe": lambda: (
                200,
                {"Content-Type": "text/html"},
                probe_page(site.canary).encode(),
            ),
            "/js/probe-navigate": lambda: (
                200,
                {"Content-Type": "text/html"},
                _page(
                    "Leaving",
                    f"<h1>Leaving</h1><script>location.href='http://{site.canary}/top'</script>",
                ).encode(),
            ),
            "/js/to-canary": lambda: (302, {"Location": f"http://{site.canary}/redirected"}, b""),
            "/imprint": lambda: (
                200,
                {"Content-Type": "text/html"},
                _page("Imprint", "<p>Example Shop GmbH</p>").encode(),
            ),
        }

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                site.hits.append(path)
                status, headers, body = site.route(path, routes)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.host_port = f"127.0.0.1:{self.port}"
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _slow(self) -> tuple[int, dict[str, str], bytes]:
        self.release_slow.wait(60)
        return 200, {"Content-Type": "text/html"}, _page("Slow", "<h1>At last</h1>").encode()

    def route(
        self, path: str, routes: dict[str, Callable[[], tuple[int, dict[str, str], bytes]]]
    ) -> tuple[int, dict[str, str], bytes]:
        if path in routes:
            return routes[path]()
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path.startswith("/catalog/") and path.rsplit("/", 1)[1].isdigit():
            n = int(path.rsplit("/", 1)[1])
            if 1 <= n <= 3:
                return 200, html, catalog(n).encode()
        if path.startswith("/product/") and path.rsplit("/", 1)[1].isdigit():
            i = int(path.rsplit("/", 1)[1])
            if 1 <= i <= len(PRODUCTS):
                return 200, html, product(i).encode()
        return 404, html, b"<p>not found</p>"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
