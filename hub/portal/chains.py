"""The participant's path through the network as a picture: each leg a box (from, to,
status), each link an arrow saying whether the receiver forwarded the person or the sender
redirected them.  A path is a tree: legs point back to the leg they came from
(`forwarded_from`), and a person may be referred anew from a closed leg.  The picture is
nested HTML lists, so a screen reader reads it as text, in order."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from hub.referrals.legs import Referral


def steps_of(legs: Iterable[Referral]) -> list[dict[str, Any]]:
    """Legs as the chain entries of `hub.consent.visibility.Reader.referral` (ids, statuses)."""
    return [{"id": str(leg.id), "from_organization_id": str(leg.from_organization_id),
             "to_organization_id": str(leg.to_organization_id), "status": leg.status,
             "forwarded_from": str(leg.forwarded_from) if leg.forwarded_from else None,
             "created_at": leg.created_at.isoformat()}
            for leg in legs]


def picture(steps: list[dict[str, Any]], names: Mapping[uuid.UUID, str],
            current: str | None = None) -> list[dict[str, Any]]:
    """The trees of boxes for these chain entries, oldest first; a leg whose previous leg
    is not among them starts a tree of its own."""
    known = {step["id"]: step for step in steps}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for step in sorted(steps, key=lambda s: (s["created_at"], s["id"])):
        parent = step["forwarded_from"] if step["forwarded_from"] in known else None
        children[parent].append(step)

    def box(step: dict[str, Any], link: str | None) -> dict[str, Any]:
        return {"id": step["id"], "status": step["status"], "link": link,
                "current": step["id"] == current,
                "from": names.get(uuid.UUID(step["from_organization_id"]), "?"),
                "to": names.get(uuid.UUID(step["to_organization_id"]), "?"),
                "next": [box(child, "forwarded" if step["status"] == "forwarded"
                             else "redirected") for child in children[step["id"]]]}

    return [box(step, None) for step in children[None]]
