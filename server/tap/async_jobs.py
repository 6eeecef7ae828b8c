"""TAP 1.1 async (``/tap/async``): the policy of TAP's UWS job tree.

Jobs are created with their query unchecked (TAP 1.1 2.3: parameters are checked when the job
runs, by ``tap_jobs``), except what would keep a job from ever running: more tables to upload
than ``max_uploads``. Inline uploads (``UPLOAD=t,param:part``) are kept with the job, up to
``upload_limit_bytes`` each, and count against its owner's quota. Errors are DALI error
VOTables (DALI 1.1 4.4).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from skyvault.server.http.service_config import app_overrides
from skyvault.server.tap.config import PREFIX, TapConfig, config_from
from skyvault.server.tap.jobs import execute_tap_job
from skyvault.server.uws import parts
from skyvault.server.uws.policy import Document, Executor, Files, JobLimits, JobPolicy
from skyvault.vo.dali import Parameters, UploadError, UploadTooLarge, parse_upload
from skyvault.vo.votable.document import VOTABLE_MIME, error_votable


class TapJobs(JobPolicy[TapConfig]):
    kind = "tap"
    name = "tap_async"
    path = "/tap/async"
    part_media_type = VOTABLE_MIME
    part_suffix = ".vot"

    def configure(self, app_config: Mapping[str, Any]) -> TapConfig:
        return config_from(os.environ, app_overrides(TapConfig(), PREFIX, app_config))

    def limits(self, config: TapConfig) -> JobLimits:
        # TapConfig names the async default apart from the sync one.
        return JobLimits(execution_duration=config.async_execution_duration,
                         max_execution_duration=config.max_execution_duration,
                         default_retention=config.default_retention,
                         max_retention=config.max_retention, wait_limit=config.wait_limit,
                         inprocess_workers=config.inprocess_workers)

    def check(self, parameters: Parameters, config: TapConfig) -> None:
        """max_uploads is a limit on the job as created (or updated), not only when it runs: a
        job that can never run must not be stored."""
        if len(parse_upload(parameters.get_all("UPLOAD"))) > config.max_uploads:
            raise UploadError(f"At most {config.max_uploads} tables can be uploaded with one"
                              " query")

    def keep_parts(self, job_id: str, parameters: Parameters, config: TapConfig,
                   files: Files) -> int:
        """The multipart parts that UPLOAD refers to."""
        specs = parse_upload(parameters.get_all("UPLOAD"))
        wanted = {spec.inline_part for spec in specs if spec.inline_part}
        limit = config.upload_limit_bytes
        stored = 0
        for part in wanted:
            if not parts.PART_NAME.fullmatch(part):
                raise UploadError(f"Upload part name {part!r} must be letters, digits, _ . or -")
            stream = files.get(part)
            if stream is None:
                raise UploadError(
                    f"UPLOAD refers to param:{part}, but the request has no such part")
            data = stream.read(limit + 1)
            if len(data) > limit:
                raise UploadTooLarge(f"Upload part {part} is larger than {limit} bytes")
            parts.save_part(job_id, part, data)
            stored += len(data)
        return stored

    def error_document(self, message: str) -> Document:
        return Document(error_votable(message), VOTABLE_MIME)

    def job_error_document(self, message: str | None) -> Document:
        return self.error_document(message or "The job failed")

    def executor(self, config: TapConfig) -> Executor:
        return functools.partial(execute_tap_job, config=config)


TAP_JOBS = TapJobs()
