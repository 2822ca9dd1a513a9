"""(e) The peer: Flask validating with twilio-python's ``RequestValidator``.

Run by ``benchmarks/run.py`` as ``gunicorn -w 1 -k sync -b 127.0.0.1:P flask_peer:app``
with ``BENCH_AUTH_TOKEN`` in the environment: the way Twilio's own docs secure a
Flask webhook, on the usual production server.
"""

from __future__ import annotations

import os

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

app = Flask(__name__)
validator = RequestValidator(os.environ["BENCH_AUTH_TOKEN"])


@app.post("/")
def webhook() -> Response:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not validator.validate(request.url, request.form, signature):
        return Response("invalid signature", status=403, mimetype="text/plain")
    return Response("<Response/>", status=200, mimetype="text/xml")
