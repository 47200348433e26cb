#!/usr/bin/env python3
"""Lower bound on the information in one stored playback of the compare workload.

`strata bench viewing --mode compare` generates its records with the distributions of
bench/history_workload.cc. A stored record determines these independent random draws exactly
(watched time, pause before the event, resume point, favourite title, device), and its
started_at carries the spacing of the member's playbacks. The sum of their entropies is a
floor no encoding of the records can go below on average; the store's index, metadata and
language history come on top. Usage: python3 bench/workload_entropy.py
"""
import math

L = math.log2


def entropy(ps):
    return -sum(p * L(p) for p in ps if p > 0)


MEMBERS = 20_000          # HistoryWorkloadOptions: members, Zipf(1.0) activity
PLAYBACKS = 1_580_916     # distinct playbacks of the default run (PostgreSQL's row count)
SPAN_MS = 700 * 86_400_000

# watched seconds of a play: 60 + floor(u^2 * 7140), u uniform; then uniform milliseconds
n = 7140
h_watched = entropy([math.sqrt((k + 1) / n) - math.sqrt(k / n) for k in range(n)]) + L(1000)
h_pause = L(120_001)                                  # 0..2 min in ms before event_time
h_resume = entropy([0.7, 0.3]) + 0.3 * L(3541)        # 30%: resume from 60..3600 s
z = [1 / k for k in range(1, 65)]
h_favourite = entropy([x / sum(z) for x in z])        # rank among the member's 64 favourites
devices = [14, 9, 10, 8, 4, 5, 3, 2, 13, 11, 5, 9, 3, 4]
t = sum(devices)
h_device = entropy([0.75 + 0.25 * devices[0] / t] + [0.25 * d / t for d in devices[1:]])
# started_at: a member's playbacks arrive as a Poisson process; a gap of mean mu ms has
# entropy ~log2(e * mu) at 1 ms resolution. Averaged over playbacks (Zipf(1.0) members).
harmonic = sum(1 / r for r in range(1, MEMBERS + 1))
h_started = sum((1 / (r * harmonic)) * L(math.e * SPAN_MS * r * harmonic / PLAYBACKS)
                for r in range(1, MEMBERS + 1))
play = h_started + h_watched + h_pause + h_resume + h_favourite + h_device

# a stored preview (Strata keeps those watched >= 5 s): 5..59 s plus ms; Zipf(0.9) title
zt = [1 / k ** 0.9 for k in range(1, 50_001)]
h_title = entropy([x / sum(zt) for x in zt])
preview = h_started + L(55_000) + h_pause + h_title + h_device

for name, bits in [("started_at", h_started), ("watched_ms (play)", h_watched),
                   ("pause (event_time)", h_pause), ("resume (position_ms)", h_resume),
                   ("favourite title", h_favourite), ("device", h_device),
                   ("play", play), ("preview (stored)", preview)]:
    print(f"{name:22s} {bits:6.2f} bits = {bits / 8:5.2f} bytes")
