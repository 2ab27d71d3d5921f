"""One worker thread per device: it owns a loaded engine and runs jobs one after another.

The model is loaded when the worker is created, before the server starts listening, so a
missing weights file or an unusable device stops ``nst-server`` with a clear message instead of
failing every job, and the first job does not pay for loading.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from nst_engine import Cancelled, NSTError, Progress, Settings, StyleTransfer

from . import imagecodec
from .jobs import JobManager
from .rates import DeviceRate
from .store import JobRecord

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, manager: JobManager, engine: StyleTransfer) -> None:
        self.manager = manager
        self.engine = engine
        self.description = engine.describe()
        self.rate = DeviceRate()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"nst-worker-{self.description['device']}")

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _loop(self) -> None:
        while (record := self.manager.take()) is not None:
            self.run(record)

    def run(self, record: JobRecord) -> None:
        """Run one job to its end; every outcome is recorded, nothing escapes the thread."""
        live = self.manager.live(record.id)
        reports: list[Progress] = []

        def report(progress: Progress) -> None:
            reports[:] = [progress]  # the last one, to learn this device's rate from
            self.manager.report(record.id, self.rate.estimate(progress))

        try:
            content, styles, mask = self._inputs(record)
            # Previews are made on request (Progress.render, see JobManager.report), never
            # every few iterations whether or not anyone looks.
            settings = Settings.from_dict(record.settings_dict).replace(preview_every=0)
            result = self.engine.stylize(
                content.engine_input(), styles, settings,
                style_blend_weights=record.blend, callback=report, cancel=live.cancel,
            )
            encoded = imagecodec.encode_result(np.asarray(result)[..., :3], content, mask)
        except Cancelled:
            if self.manager.stopping:
                self.manager.requeue(record)
            return  # a client cancelled it: the record already says so
        except NSTError as error:
            self.manager.fail(record.id, str(error))
            return
        except Exception:
            # As for a 500: the exception's text (paths, internals) goes to the log only.
            log.exception("job %s crashed", record.id)
            self.manager.fail(record.id, f"internal error in the server (its log has the "
                              f"details under job {record.id})")
            return
        if reports:
            self.rate.learn(reports[-1])
        self.manager.finish(record.id, encoded)

    def _inputs(self, record: JobRecord
                ) -> tuple[imagecodec.Decoded, list[np.ndarray], np.ndarray | None]:
        """Decode the stored uploads again, exactly as they were accepted."""
        store, limits = self.manager.store, self.manager.config.limits
        form = imagecodec.Form.from_json(record.form)
        data = store.read_file(record.id, "content")
        content = (imagecodec.decode_raw(data, form) if form.kind == "raw"
                   else imagecodec.decode_file(data, limits.max_pixels))
        styles = [imagecodec.decode_file(store.read_file(record.id, f"style-{i}"),
                                         limits.max_pixels, name=f"style image {i + 1}").rgb
                  for i in range(record.styles)]
        mask = (imagecodec.decode_mask(store.read_file(record.id, "mask"), form.width,
                                       form.height) if record.has_mask else None)
        return content, styles, mask
