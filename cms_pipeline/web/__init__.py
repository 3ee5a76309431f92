"""The dashboard over the gold exports: static files (`static/`) and a small read-only
HTTP server (`server.py`, `cms-pipeline web`) that serves them with the lake's JSON
exports. No Spark, no CDN: it works offline."""
