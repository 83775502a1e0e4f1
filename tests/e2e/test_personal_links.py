"""Every message carries its recipient's own link, through the real functions (journey-rules.md §13).

A crime with two victims and a few updates, replayed on the local host: each person gets one link
in every message on every channel, nobody else's; an email also carries it in List-Unsubscribe for
one-click unsubscribe; the link stored opens that crime and that person only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from shared.adapters.repositories import TableLinks
from shared.adapters.sqlite_tables import SqliteTableStore
from shared.domain.policy import SMS_LINK_MAX, Policy
from tests.builders import milestone, occurrence, replay, victim

BASE = Policy().force.link_base_url
LINK = re.compile(re.escape(BASE) + r"/([0-9A-Za-z]{11})\b")


def test_each_person_has_one_link_in_every_message_and_no_one_elses(tmp_path: Path) -> None:
    alex = victim("P-1", channel="both", email="alex@example.org", mobile="07700 900123")
    sam = victim("P-2", channel="sms", email="sam@example.org", mobile="07700 900456")
    arrest = milestone("M-1", "suspect_arrested", "2026-11-18T10:00:00Z")
    charge = milestone("M-2", "suspect_charged", "2026-11-19T15:00:00Z")
    result = replay(
        tmp_path,
        [
            occurrence("2026-11-17T09:00:00Z", victims=[alex, sam]),
            occurrence("2026-11-18T10:05:00Z", victims=[alex, sam], milestones=[arrest]),
            occurrence("2026-11-19T15:05:00Z", victims=[alex, sam], milestones=[arrest, charge]),
        ],
        end="2026-11-25T00:00:00Z",
    )
    by_person: dict[str, set[str]] = defaultdict(set)
    channels: dict[str, set[str]] = defaultdict(set)
    for message in result["outbox"]:
        found = LINK.findall(message["body"])
        assert len(set(found)) == 1, (message["message_id"], found)  # one link, the person's own
        by_person[message["person_id"]].add(found[0])
        channels[message["person_id"]].add(message["channel"])
        assert all(len(f"{BASE}/{link}") <= SMS_LINK_MAX for link in found)
        if message["channel"] == "email":
            url = f"{BASE}/{found[0]}"
            # The email says what the link is for: their case, and how we contact them.
            assert (
                f"To see where your case stands, change how we contact you, or stop these updates, go to {url}."
                in message["body"]
            )
            assert message["headers"] == {
                "List-Unsubscribe": f"<{url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        else:
            assert "headers" not in message
    assert channels == {"P-1": {"email", "sms"}, "P-2": {"sms"}}
    assert len(result["outbox"]) >= 6
    assert all(len(links) == 1 for links in by_person.values()), by_person
    [alex_link], [sam_link] = by_person["P-1"], by_person["P-2"]
    assert alex_link != sam_link
    store = SqliteTableStore(result["out"] / "state.db")
    try:
        links = TableLinks(store)
        for person, link_id in (("P-1", alex_link), ("P-2", sam_link)):
            stored = links.get(link_id)
            assert stored is not None and (stored.crime_reference, stored.person_id) == (
                "HU/000001/26",
                person,
            )
            assert stored.revoked_at is None
    finally:
        store.close()
