"""Opportunities from the regions (docs/design.md §12): jobs, internships and training places
that regional partners, employers, insertion enterprises and entrepreneurship agencies offer to
the network's candidates; the regions organizations follow to hear of them; closing at the
date or when the places are filled; the daily mail to followers."""
