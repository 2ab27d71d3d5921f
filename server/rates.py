"""What a job costs on this device, learned from the jobs it ran: the first time estimate.

The engine gives no estimate until it has timed a job past its warm-up, which on a slow device
is many seconds of "estimating...". A rate per unit of work (pixels through a forward and
backward pass, :attr:`nst_engine.Progress.work_total`) measured on one job predicts the next at
any size, so until the engine's own estimate comes, the server answers with the last jobs' rate.
"""

from __future__ import annotations

import dataclasses

from nst_engine import Progress

#: Weight of the newest job in the remembered rate: recent jobs say most about the device's
#: load now, and one odd job does not throw the estimate off.
NEWEST_WEIGHT = 0.5


class DeviceRate:
    """Seconds per unit of work on one device (one per worker), kept in memory."""

    def __init__(self) -> None:
        self.seconds_per_unit: float | None = None

    def estimate(self, progress: Progress) -> Progress:
        """``progress`` with an ETA: the engine's own once it has one, else from earlier jobs."""
        if progress.eta is not None or self.seconds_per_unit is None or not progress.work_total:
            return progress
        left = self.seconds_per_unit * (progress.work_total - progress.work_done)
        return dataclasses.replace(progress, eta=max(0.0, left))

    def learn(self, last: Progress) -> None:
        """Remember the rate of a job that ran to its end, from its last report."""
        if last.work_done <= 0 or last.elapsed <= 0:
            return
        rate = last.elapsed / last.work_done
        old = self.seconds_per_unit
        self.seconds_per_unit = rate if old is None else old + NEWEST_WEIGHT * (rate - old)
