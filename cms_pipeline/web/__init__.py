"""The dashboard over the gold exports: static files (`static/`) and a small read-only
HTTP server (`cms-pipeline web`) that serves them with the lake's JSON exports. No Spark,
no CDN: it works offline.

    dashboard.py      what each route answers (exports, status, scores, models, cards)
    beneficiaries.py  the index behind the beneficiary lookup
    paths.py          path cleaning: nothing outside the served folders
    responses.py      responses, content security policies, the helpful 404
    server.py         the HTTP server around a Dashboard
"""
