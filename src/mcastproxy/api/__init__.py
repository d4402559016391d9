"""The controller API (draft §6.2; RFC 8040 RESTCONF-style resources): off unless the
configuration has an ``api`` section (``apiconfig``).

A controller reads the proxy's state and configuration, changes the configuration as a
reload would (validated as the file is, applied wholly or not at all, written to the file),
and follows its events. Modules, one concept each:

- ``server``: the aiohttp application in the daemon's loop, its resources and life cycle;
- ``auth``: who a request is from (bearer tokens, client certificates, peer credentials);
- ``document``: the configuration as a JSON document (ETag, merge patch, strict reading,
  atomic write);
- ``events``: the event stream's fan-out, bounded per client;
- ``errors``: RFC 8040's error body;
- ``openapi``: the description served at ``/openapi.json``;
- ``standard``: the standard tree's resources (RFC 8652/9398 and the ``mcastproxy`` YANG
  module), the clear-groups action, the YANG library;
- ``yangschema``: the modules shipped (``mcastproxy/yang``) and the schema made of them;
- ``yangtree``: RFC 7951 data checked and edited by that schema;
- ``yangdata`` and ``yangread``: the configuration as the tree, and the tree read back into
  the file's document; ``yangstate``: the state in RFC 8652/9398's shape.
"""

from __future__ import annotations

from mcastproxy.api.errors import ApiError
from mcastproxy.api.server import ApiServer

__all__ = ["ApiError", "ApiServer"]
