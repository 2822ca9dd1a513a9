"""Twilio error codes in the inspector and the command line: title, link, escaping.

A message status callback that says ``ErrorCode=30003`` is shown as "30003
Unreachable destination handset", linked to Twilio's page, in the JSON API, on
the event's page and by ``twilio-trigger inbox show``; a code the table does not
know is shown as its number, linked; a value that is no code is not shown.  The
event's page writes its times with their date.  Real listener, real SQLite
inbox, real HTTP on loopback (the helpers are those of ``test_inspector_http``).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from click.testing import CliRunner

from tests.payloads import call_status_payload, sms_status_payload
from twilio_trigger.cli import cli

from .test_inspector_http import Carrier, events, inspected, send, wait_outcomes

PAGE_30003 = "https://www.twilio.com/docs/api/errors/30003"
SHOWN_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")


def test_a_known_code_has_its_title_and_link_in_the_api_and_on_the_page(tmp_path: Path) -> None:
    carrier = Carrier()
    with inspected(carrier, tmp_path) as (listener, http):
        failing = sms_status_payload("undelivered", ErrorCode="30003")
        carrier.down_for.add(failing["MessageSid"])
        dead = send(listener, failing)
        sent = send(listener, sms_status_payload("sent"))
        rows = wait_outcomes(http, {dead: "dead_letter", sent: "handled"})

        assert rows[dead]["error_code"] == 30003
        assert rows[dead]["error_code_title"] == "Unreachable destination handset"
        assert rows[dead]["error_code_url"] == PAGE_30003
        # The fields every row had are still there.
        assert rows[dead]["error"] == f"RuntimeError: carrier lookup exploded for {dead}"
        # No code, no title, no link.
        assert (rows[sent]["error_code"], rows[sent]["error_code_title"]) == (None, None)
        assert rows[sent]["error_code_url"] is None

        page = http.get(f"/events/{rows[dead]['id']}").text
        assert (
            f'<a class="error-code" href="{PAGE_30003}" rel="noreferrer noopener" '
            'target="_blank">30003 Unreachable destination handset</a>'
        ) in page
        # Times show their date: the facts and every attempt.
        received = re.search(r"<th>received</th><td>([^<]*)</td>", page)
        assert received is not None, page
        assert SHOWN_TIME.fullmatch(received.group(1)), received.group(1)
        attempts = page.split("<h2>Attempts</h2>", 1)[1].split("<h2>Parameters</h2>", 1)[0]
        assert len(SHOWN_TIME.findall(attempts)) == 2, attempts  # max_attempts=2

        sent_page = http.get(f"/events/{rows[sent]['id']}").text
        assert "Twilio error" not in sent_page
        assert "error-code" not in sent_page


def test_an_unknown_code_is_its_number_linked_and_what_is_no_code_is_not_shown(
    tmp_path: Path,
) -> None:
    carrier = Carrier(down=True)
    hostile = '"><script>alert(1)</script>'
    with inspected(carrier, tmp_path) as (listener, http):
        unknown = send(listener, sms_status_payload("undelivered", ErrorCode="99999"))
        evil = send(listener, sms_status_payload("undelivered", ErrorCode=hostile))
        zero = send(listener, call_status_payload("completed", ErrorCode="0"))
        huge = send(listener, sms_status_payload("undelivered", ErrorCode="9" * 4000))
        expected = dict.fromkeys((unknown, evil, zero, huge), "dead_letter")
        rows = wait_outcomes(http, expected)

        assert rows[unknown]["error_code"] == 99999
        assert rows[unknown]["error_code_title"] is None
        assert rows[unknown]["error_code_url"] == "https://www.twilio.com/docs/api/errors/99999"
        page = http.get(f"/events/{rows[unknown]['id']}").text
        assert (
            '<a class="error-code" href="https://www.twilio.com/docs/api/errors/99999" '
            'rel="noreferrer noopener" target="_blank">99999</a>'
        ) in page

        for sid in (evil, zero, huge):
            assert rows[sid]["error_code"] is None, rows[sid]
            assert rows[sid]["error_code_title"] is None
            assert rows[sid]["error_code_url"] is None
            response = http.get(f"/events/{rows[sid]['id']}")
            assert response.status_code == 200
            assert "error-code" not in response.text
        # The hostile value is still shown among the parameters: as text.
        evil_page = http.get(f"/events/{rows[evil]['id']}").text
        assert "<script>alert(1)</script>" not in evil_page
        assert html.escape(hostile) in evil_page
        assert len(events(http)) == 4


def test_inbox_show_gives_the_code_with_its_title(tmp_path: Path) -> None:
    carrier = Carrier(down=True)
    with inspected(carrier, tmp_path) as (listener, http):
        dead = send(listener, sms_status_payload("undelivered", ErrorCode="30003"))
        unknown = send(listener, sms_status_payload("undelivered", ErrorCode="99999"))
        plain = send(listener, sms_status_payload("sent"))
        rows = wait_outcomes(
            http, {dead: "dead_letter", unknown: "dead_letter", plain: "dead_letter"}
        )
    url = f"sqlite:///{tmp_path}/events.db"
    shown = {}
    for sid in (dead, unknown, plain):
        result = CliRunner().invoke(
            cli, ["inbox", "--inbox", url, "show", str(rows[sid]["id"])], prog_name="twilio-trigger"
        )
        assert result.exit_code == 0, result.output
        shown[sid] = result.output
    assert f"  Twilio error   30003 Unreachable destination handset ({PAGE_30003})\n" in shown[dead]
    assert (
        "  Twilio error   99999 (https://www.twilio.com/docs/api/errors/99999)\n" in shown[unknown]
    )
    assert "Twilio error" not in shown[plain]
