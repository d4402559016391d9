"""mcastproxy: an IGMP/MLD proxy (RFC 4605) with several upstream interfaces."""

from __future__ import annotations

__version__ = "0.1.0"
