"""The operator's REST admin API of a devnet (issue 12): `create_app` in app.py, one router
per resource, served on 127.0.0.1 by `rollup up` (beside the devnet it supervises) or by
`rollup admin --data-dir DIR` on its own.

    tokens.py       the admin and read-only bearer tokens: files of mode 0600 in DATA/admin/
    errors.py       the admin API's errors, each an HTTP status
    problems.py     every error as RFC 9457 application/problem+json
    auth.py         bearer authentication: no token or a wrong one 401, read token 403
    hosts.py        the Host header must be a loopback name (DNS rebinding); no CORS
    idempotency.py  Idempotency-Key on mutating POSTs: the first response replayed
    pagination.py   cursor pagination of list endpoints
    query.py        query strings as declared: an unknown or repeated parameter is a 400
    fleet.py        what the API reads and drives: DATA/devnet.json and each node's JSON-RPC
    models.py       the typed responses (the OpenAPI schema is exact)
    apps.py         /v1/apps: list, one app; stop, start, restart its node (through the
                    supervisor: services/devnet/control.py); pause, resume its sequencer
    explorer.py     /v1/apps/{name}/mempool (list, drop), blocks, transactions: the node's
    da.py           /v1/apps/{name}/da: the DA poster's status (metrics, log, the L1 inbox)
    logs.py         /v1/apps/{name}/logs: the node's log, its tail or followed (SSE)
    events.py       the event log: a ring of numbered events, what changed between samples
    sampler.py      the background task: samples the fleet and its nodes' /metrics
    stream.py       /v1/events: SSE with Last-Event-ID resume (or JSON), bounded streams
    dashboard.py    / (the dashboard: static/), /docs, uPlot and Swagger UI from node_modules
    app.py          create_app: health, readiness, OpenAPI, the routers, the sampler
    server.py       serve it with uvicorn; `python -m services.admin` (`rollup admin`)

This package's __init__ imports nothing, so the node (services/rpc/admin.py reads tokens.py)
does not load FastAPI.
"""
