"""The participant's path as boxes and arrows: a tree built from `forwarded_from` links, each
arrow saying whether the receiver forwarded the person or the sender redirected them."""

from __future__ import annotations

import uuid

from hub.portal.chains import picture


def _step(leg: str, status: str, after: str | None, at: str, to: uuid.UUID,
          sender: uuid.UUID) -> dict[str, str | None]:
    return {"id": leg, "status": status, "forwarded_from": after, "created_at": at,
            "from_organization_id": str(sender), "to_organization_id": str(to)}


def test_forwarded_and_redirected_legs_hang_from_the_leg_they_came_from() -> None:
    sender, first, second, third = (uuid.uuid4() for _ in range(4))
    names = {sender: "Carrefour", first: "PAJ", second: "Estrie", third: "Formation"}
    steps = [
        _step("c", "sent", "b", "2026-01-03", third, second),          # forwarded by Estrie
        _step("a", "declined", None, "2026-01-01", first, sender),
        _step("b", "forwarded", "a", "2026-01-02", second, sender),    # redirected by sender
        _step("z", "completed", None, "2026-01-05", first, sender),    # another referral
        _step("y", "sent", "gone", "2026-01-04", second, sender),      # its origin not shown
    ]
    trees = picture(steps, names, current="c")
    assert [tree["id"] for tree in trees] == ["a", "y", "z"]  # oldest first
    [b] = trees[0]["next"]
    assert (b["id"], b["link"], b["from"], b["to"]) == ("b", "redirected", "Carrefour", "Estrie")
    [c] = b["next"]
    assert (c["id"], c["link"], c["from"], c["current"]) == ("c", "forwarded", "Estrie", True)
    assert trees[0]["link"] is None and not trees[0]["current"] and c["next"] == []
