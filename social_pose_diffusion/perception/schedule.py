"""The per-frame time budget.

Which tracked people get a landmark update, and how many detector views fit.

A landmark inference costs about the same for everyone, so with many people
the frame cost is set by how many are updated, not by how many are there.
Each frame :class:`FrameBudget` picks the people whose keypoints are oldest
(weighted up by how fast they move): always those who would otherwise be
older than ``max_staleness_ms`` at the next frame, those flagged urgent
(new, unconfirmed or just missed) and at least the share that keeps
everyone within the limit at the frame rate (so updates stay spread over
the frames instead of falling due together), then as many more as the
measured cost per update allows within ``budget_ms``; the detector gets
what is left. What is due is capped at what a whole budget can pay for: on
a machine too slow for the staleness limit the frame time holds and the
staleness grows, instead of every frame updating everyone. Updates run
``workers`` at a time, so the cost that counts is that of a round (one
update per worker): priced per update, a frame with a single update would
look twice as dear as one with two, and the budget would settle on one a
frame with a worker idle. The costs are running means of measured wall
time, read from an injectable ``clock`` so the policy can be tested without
timing anything.
"""

import math
import time

COST_SMOOTHING = 0.2  # weight of the newest measurement in the running cost means
INITIAL_ROUND_S, INITIAL_VIEW_S = 0.012, 0.015


class RunningCost:
    """Exponential running mean of a measured cost (seconds per item)."""

    def __init__(self, initial):
        self.value = float(initial)

    def add(self, seconds, items):
        if items > 0:
            self.value += COST_SMOOTHING * (seconds / items - self.value)


class FrameBudget:
    """Time budget of one frame (``budget_ms`` 0: no budget, everyone updated every frame)."""

    def __init__(self, budget_ms, max_staleness_ms, clock=time.perf_counter, workers=1):
        self.budget_s = budget_ms / 1e3
        self.max_staleness_ns = int(max_staleness_ms * 1e6)
        self.clock = clock
        self.workers = int(workers)
        self.round_cost, self.view_cost = (
            RunningCost(INITIAL_ROUND_S),
            RunningCost(INITIAL_VIEW_S),
        )
        self._start = clock()

    def rounds(self, updates: int) -> int:
        """Rounds of parallel updates that ``updates`` updates take."""
        return math.ceil(updates / self.workers)

    def _updates(self, seconds: float) -> int:
        """Updates whose rounds fit in ``seconds``."""
        return self.workers * int(max(seconds, 0.0) / self.round_cost.value)

    def start(self) -> None:
        """Start timing a frame."""
        self._start = self.clock()

    def remaining(self) -> float:
        """Seconds left of this frame's budget (infinite without a budget)."""
        return self.budget_s - (self.clock() - self._start) if self.budget_s > 0 else float('inf')

    def pick(self, ages_ns, interval_ns, urgent=(), motion=None, reserve_s=0.0):
        """Ids to update now, most urgent first.

        ``ages_ns``: {id: time since that person's last landmark update};
        ``interval_ns``: expected time to the next frame; ``urgent``: ids
        that must be updated (new, unconfirmed, missed); ``motion``: {id:
        speed in own shoulder widths per second}; ``reserve_s``: budget kept
        for the detector.
        """
        motion = motion or {}
        rank = sorted(
            ages_ns, key=lambda i: (i not in urgent, -ages_ns[i] * (1.0 + motion.get(i, 0.0)))
        )
        if self.budget_s <= 0:
            return rank
        due = sum(
            1 for i in rank if i in urgent or ages_ns[i] + interval_ns >= self.max_staleness_ns
        )
        steady = math.ceil(len(rank) * interval_ns / self.max_staleness_ns)
        # What is due never takes more than a whole budget (when updates are that slow, the
        # frame rate wins over staleness: more updates would make every frame, and so every
        # interval, longer).
        must = min(max(due, steady), max(self._updates(self.budget_s), 1))
        return rank[: max(must, self._updates(self.remaining() - reserve_s))]

    def views(self, wanted: int) -> int:
        """How many of ``wanted`` detector views fit in what is left of the frame."""
        if self.budget_s <= 0:
            return wanted
        return min(wanted, int(max(self.remaining(), 0.0) / self.view_cost.value))
