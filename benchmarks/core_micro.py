"""Micro-benchmark of the pure core, in µs per event, beside twilio-python.

twilio-trigger: ``parse_form`` (decode the form), ``SignatureVerifier.verify``
(X-Twilio-Signature) and ``to_event`` (the typed event the dispatcher routes).
twilio-python: ``parse_qsl`` and ``RequestValidator.validate``, as a hand-written
receiver would do it.  Same realistic bodies for both (signed SMS status callbacks
for ``delivered``, each with its own MessageSid), same auth token, same URL.

Two URLs: a public https URL without a port, the usual production case, where
the first URL form tried matches; and ``http://127.0.0.1:8090/`` as in the load
test, signed with its port, where the form without the port is tried first.

    python benchmarks/core_micro.py            # a table
    python benchmarks/core_micro.py --json     # for benchmarks/run.py

Each figure is the median of several timed loops over the same inputs
(``timeit``-style: the loop is all that is timed), divided by the number of events.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator

from twilio_trigger import SmsStatusChangeEvent
from twilio_trigger._core.form import parse_form
from twilio_trigger._core.routing import to_event
from twilio_trigger._core.signature import compute_signature
from twilio_trigger._core.verifier import SignatureVerifier
from twilio_trigger.testing import sms_status_params

URLS = {
    "public https URL, no port": "https://hooks.example.com/twilio/status",
    "load-test URL, signed with port": "http://127.0.0.1:8090/",
}
MAX_PARAMS = 1000


def make_inputs(url: str, token: str, count: int) -> list[tuple[bytes, str]]:
    """*count* signed bodies, each a delivered status callback with its own SID."""
    inputs = []
    for _ in range(count):
        pairs = list(sms_status_params("delivered").items())
        inputs.append((urlencode(pairs).encode("ascii"), compute_signature(url, pairs, token)))
    return inputs


def per_event(run: Callable[[], object], events: int, repeat: int, min_seconds: float) -> float:
    """Median µs per event of *run* (one pass over *events* inputs)."""
    loops = 1
    while True:  # calibrate, as timeit does: enough passes for min_seconds
        start = time.perf_counter()
        for _ in range(loops):
            run()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
        loops *= 2
    samples = [elapsed / loops]
    for _ in range(repeat - 1):
        start = time.perf_counter()
        for _ in range(loops):
            run()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples) / events * 1e6


def measure(url: str, *, events: int, repeat: int, min_seconds: float) -> dict[str, float]:
    token = secrets.token_hex(16)
    inputs = make_inputs(url, token, events)
    verifier = SignatureVerifier([token])
    validator = RequestValidator(token)
    with_bytes = [(body, sig.encode("ascii")) for body, sig in inputs]
    parsed = [(parse_form(body, MAX_PARAMS), sig) for body, sig in with_bytes]
    texts = [(body.decode("utf-8"), sig) for body, sig in inputs]
    dicts = [(dict(parse_qsl(text, keep_blank_values=True)), sig) for text, sig in texts]

    # Both sides must accept every input, or the comparison means nothing.
    for params, sig in parsed:
        assert verifier.verify(url, params, sig), "twilio-trigger rejected a valid signature"
        assert isinstance(to_event(params), SmsStatusChangeEvent), "not routed to SMS"
    for params_dict, sig_text in dicts:
        assert validator.validate(url, params_dict, sig_text), "RequestValidator rejected it"

    def trigger_parse() -> None:
        for body, _ in with_bytes:
            parse_form(body, MAX_PARAMS)

    def trigger_verify() -> None:
        for params, sig in parsed:
            verifier.verify(url, params, sig)

    def trigger_route() -> None:
        for params, _ in parsed:
            to_event(params)

    def trigger_total() -> None:
        for body, sig in with_bytes:
            params = parse_form(body, MAX_PARAMS)
            if verifier.verify(url, params, sig):
                to_event(params)

    def twilio_parse() -> None:
        for body, _ in inputs:
            dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))

    def twilio_validate() -> None:
        for params_dict, sig_text in dicts:
            validator.validate(url, params_dict, sig_text)

    def twilio_total() -> None:
        for body, sig_text in inputs:
            params_dict = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            validator.validate(url, params_dict, sig_text)

    cases = {
        "trigger_parse": trigger_parse,
        "trigger_verify": trigger_verify,
        "trigger_route": trigger_route,
        "trigger_total": trigger_total,
        "twilio_parse": twilio_parse,
        "twilio_validate": twilio_validate,
        "twilio_total": twilio_total,
    }
    result = {name: per_event(run, events, repeat, min_seconds) for name, run in cases.items()}
    result["body_bytes"] = statistics.mean(len(body) for body, _ in inputs)
    return result


def run_all(*, events: int, repeat: int, min_seconds: float) -> dict[str, object]:
    return {
        "python": sys.version.split()[0],
        "events": events,
        "repeat": repeat,
        "urls": {
            label: {"url": url}
            | measure(url, events=events, repeat=repeat, min_seconds=min_seconds)
            for label, url in URLS.items()
        },
    }


def markdown(report: dict[str, object]) -> str:
    """The micro-benchmark as a Markdown table (used by run.py too)."""
    urls = report["urls"]
    assert isinstance(urls, dict)
    rows = [
        "| URL | twilio-trigger: parse | verify | route | **core total** "
        "| twilio-python: parse_qsl | validate | **total** | twilio-python ÷ twilio-trigger |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for label, r in urls.items():
        rows.append(
            f"| {label} (`{r['url']}`) | {r['trigger_parse']:.2f} | {r['trigger_verify']:.2f} "
            f"| {r['trigger_route']:.2f} | **{r['trigger_total']:.2f}** "
            f"| {r['twilio_parse']:.2f} | {r['twilio_validate']:.2f} "
            f"| **{r['twilio_total']:.2f}** | {r['twilio_total'] / r['trigger_total']:.2f}x |"
        )
    first = next(iter(urls.values()))
    rows.append("")
    rows.append(
        f"µs per event, median of {report['repeat']} timed loops over {report['events']} "
        f"distinct signed bodies ({first['body_bytes']:.0f} bytes each), Python "
        f"{report['python']}.  *route* is `to_event` (the typed event); the totals time "
        f"the whole sequence in one loop, so they need not equal the sum of the parts."
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON (for run.py)")
    parser.add_argument("--events", type=int, default=1000, help="distinct bodies (1000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed loops per figure (5)")
    parser.add_argument(
        "--min-seconds", type=float, default=0.1, help="minimum length of one loop (0.1)"
    )
    args = parser.parse_args()
    report = run_all(events=args.events, repeat=args.repeat, min_seconds=args.min_seconds)
    print(json.dumps(report, indent=2) if args.json else markdown(report))


if __name__ == "__main__":
    main()
