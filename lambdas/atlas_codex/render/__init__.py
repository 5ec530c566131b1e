"""Pages built by JavaScript, rendered in headless Chromium behind the SSRF guard.

``chromium``: the browser of the npm package ``@sparticuz/chromium`` (built for Lambda),
unpacked once per execution environment with ``brotli``; ``cdp``: a DevTools-protocol client
over ``--remote-debugging-pipe`` (standard library only); ``proxy``: the forward proxy every
browser request goes through, which resolves each host once, checks every address with
the fetcher's policy and connects only to the checked address; ``renderer``: one page,
rendered under a hard time limit, its HTML size-capped. Nothing here knows of Lambda events:
``handlers/render.py`` is the function, and local mode runs the same code in-process.
"""
