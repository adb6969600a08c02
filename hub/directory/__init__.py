"""The directory: the network's organizations, which outlive their staff.

Owns organizations (`organizations`) and what their entries hold (`entries`: services,
places, contacts), text folding and search (`text`, `search`), editing an entry
(`editing`), the partner grid counsellors keep and its import (`grid`, `grid_import`), HSDS
documents in and out (`hsds`) and `hub directory` (`cli`).
"""
