"""Configurations for the YANG tests: the examples, and files that between them set every
key the configuration has, each away from its default (``EVERY_KEY``), so that a mapping
that drops or bends a key shows."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))

EVERY_KEY = """\
igmp:
  version: 2
  ssm-ranges: [232.0.0.0/8, 239.232.0.0/16]
  ssm-map:
    - {group: 232.1.0.0/16, sources: [192.0.2.10, 192.0.2.11]}
mld:
  version: 1
  ssm-ranges: []
timers:
  robustness: 3
  query-interval: 60s
  query-response-interval: 2500ms
  last-member-query-interval: 200ms
  last-member-query-count: 3
  startup-query-interval: 15s
  startup-query-count: 4
  unsolicited-report-interval: 0.5
policy:
  default: deny
  ssm-only: true
  group-policy:
    - {action: permit, source: 192.0.2.0/24, group: 232.1.0.0/16}
    - {action: permit, group: "ff3e::/16"}
    - {action: deny}
  max-entries: 65536
  max-groups-per-interface: unlimited
  max-bandwidth-per-interface: 2G
  subscriber: {max-groups: 16, max-group-sources: 8, max-bandwidth: 40M}
  exceptions:
    - {source: 192.0.2.1, group: 232.0.1.1}
    - {group: "ff3e::1:0/112"}
  report-rate: {subscriber: 20, link: unlimited}
  bandwidth:
    channels:
      - {source: 192.0.2.1, group: 232.0.1.1, rate: 1M, class: mandatory}
      - {group: 232.1.0.0/16, rate: 8M}
    default-rate: 2.5M
    preempt: true
    learn: true
    learn-margin: 0.25
    empty-after: 30s
    refuse-empty-for: 2m
downstream:
  - interface: d1
    fast-leave: true
    timers: {robustness: 4, query-interval: 30s, last-member-query-interval: 100ms,
             last-member-query-count: 2, startup-query-interval: 5s, startup-query-count: 2,
             query-response-interval: 1s, unsolicited-report-interval: 2s}
    querier: elect
    routers: [10.1.0.2, "fe80::d1:2"]
    max-robustness: 5
    max-query-interval: 600s
    specific-query-rate: 50
    require-router-alert: false
    verify-source-subnet: true
    static-group:
      - {group: 239.1.1.1}
      - {group: 232.1.1.1, source: 192.0.2.5}
      - {group: "ff3e::1:1", source: "2001:db8::5"}
    policy:
      default: permit
      ssm-only: false
      group-policy:
        - {action: deny, source: 192.0.2.128/25, group: 232.1.200.0/24}
      max-groups: 4096
      max-bandwidth: 400M
      subscriber: {max-groups: unlimited, max-group-sources: 4, max-bandwidth: unlimited}
      exceptions: [{source: 192.0.2.9}]
      subscribers:
        - prefix: 10.1.1.0/24
          default: deny
          group-policy:
            - {action: permit, group: 239.1.0.0/16}
          max-groups: 4
          max-group-sources: 2
          max-bandwidth: 20M
        - prefix: "fe80::/64"
          max-groups: 8
      report-rate: {subscriber: 0.5, link: 1000}
  - interface: d2
    require-router-alert: true
    policy: {max-groups: unlimited}
upstream:
  default: u2
  takeover: false
  active-interval: 90s
  hold-down: never
  resilient:
    - {group: 232.9.0.0/16}
    - {subscriber: 10.1.1.0/24, source: 192.0.2.0/24}
  leave-on-stop: false
  ties: share
  candidates:
    - interface: u1
      priority: 10
      address: [192.0.2.254, "2001:db8::fe"]
      active-interval: 20s
      liveness: {link: false, queries: true, hellos: true, data: 150ms}
      routers: [192.0.2.1]
      hold-down: 5s
      records:
        - {group: 232.1.0.0/16}
        - {source: 10.0.1.0/24, group: 232.2.0.0/16}
        - {subscriber: 10.1.1.128/25}
        - {group: "ff3e::/16"}
        - {subscriber: "fe80::/10", source: "2001:db8::/32"}
      max-bandwidth: 1G
      max-groups: 1000
    - interface: u2
      priority: -5
      max-bandwidth: unlimited
      max-groups: unlimited
    - interface: amt1
      amt: {discovery: 192.52.193.1, port: 2269, querier: [10.255.0.1, "fe80::99"]}
    - interface: amt2
      amt: {relay: "2001:db8::10", driad: true, resolver: "[2001:db8::53]:5353", min-ttl: 1s,
            max-ttl: 1h, max-relays: 3}
metrics: {listen: "[::1]:9100"}
accounting:
  session-log: /var/log/mcastproxy/sessions.jsonl
  security-log: /var/log/mcastproxy/security.jsonl
  max-size: 100M
  keep: 5
  sample-interval: 2.5s
api:
  socket: /run/mcastproxy/api.sock
  socket-mode: "0660"
  listen: 127.0.0.1:8443
  tls: {certificate: /etc/mcastproxy/api.pem, key: /etc/mcastproxy/api.key,
        client-ca: /etc/mcastproxy/ca.pem, client-access: write}
  tokens: /etc/mcastproxy/tokens
"""

# One protocol alone, defaults everywhere else.
IGMP_ONLY = """\
igmp: {}
downstream: [{interface: d1}]
upstream: {candidates: [{interface: u1}]}
"""

MLD_ONLY = """\
mld: {version: 2}
timers: {query-interval: 125s}
downstream: [{interface: d1, timers: {robustness: 2}}]
upstream: {candidates: [{interface: u1, records: [{group: "ff3e::/16"}]}], hold-down: 0}
"""

CONFIGS = {"every-key": EVERY_KEY, "igmp-only": IGMP_ONLY, "mld-only": MLD_ONLY}
