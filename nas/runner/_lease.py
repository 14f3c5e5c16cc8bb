"""The driver's side of the study lease (:mod:`nas.storage._lease`): a small thread that
refreshes the heartbeat while the run lasts, and gives the lease back at the end."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from nas.errors import NasError

if TYPE_CHECKING:
    from nas.storage import LeaseHolder, Storage

logger = logging.getLogger("nas.runner")

__all__ = ["LeaseKeeper"]


class LeaseKeeper:
    """Beats the lease's heart every ``interval_s`` seconds from a daemon thread.  A beat that
    fails (the database is away) is tried again at the next interval; a beat that finds the
    lease gone (another driver took it over: this one was silent for longer than the timeout)
    sets :attr:`lost`, logs it once and stops beating."""

    def __init__(self, storage: Storage, study_id: int, holder: LeaseHolder,
                 interval_s: float = 5.0) -> None:
        self.storage, self.study_id, self.holder = storage, study_id, holder
        self.interval_s = interval_s
        self.lost = False
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, name="nas-lease", daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                ok = self.storage.heartbeat_lease(self.study_id, self.holder.token)
            except NasError as exc:  # an outage: the writer rides it out, so do we
                logger.debug("lease heartbeat failed: %s", exc)
                continue
            if not ok:
                self.lost = True
                logger.error("the lease on this study was taken over by another driver "
                             "(this one was silent for longer than the lease timeout); its "
                             "results are still written, but the study's status is left to "
                             "the new holder")
                return

    def release(self) -> None:
        """Stop beating and delete the lease (when it is still ours)."""
        self._stop.set()
        self._t.join()
        if self.lost:
            return
        try:
            self.storage.release_lease(self.study_id, self.holder.token)
        except NasError as exc:  # the lease then expires by its timeout
            logger.warning("could not release the study lease: %s", exc)
