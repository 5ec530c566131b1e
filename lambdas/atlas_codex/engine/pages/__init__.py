"""A job's pages: fetched (the SSRF-guarded fetcher, robots.txt, politeness), crawled, handed to the browser when built by JavaScript, recognised as a wall, and kept in the artifacts bucket."""
