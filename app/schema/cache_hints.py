"""The cache hints the schema declares (`@cacheControl`, read by app/engine/cache_hints.py).

Catalog objects may be cached for a minute (categories five) by anyone; the small
objects that only exist inside another (money, ranges, images, pages, edges) take their
parent's maxAge; what belongs to a viewer is PRIVATE. A composite field or root field
with no hint at all has maxAge 0 (Apollo's default): new fields are uncached until declared.
"""

from __future__ import annotations

from app.engine import CacheControl, CacheControlScope

CATALOG = CacheControl(max_age=60)
CATEGORIES = CacheControl(max_age=300)
PART_OF_PARENT = CacheControl(inherit_max_age=True)
PRIVATE = CacheControl(max_age=0, scope=CacheControlScope.PRIVATE)

__all__ = ["CATALOG", "CATEGORIES", "PART_OF_PARENT", "PRIVATE"]
