"""What astronomers do at once, for Locust: `locust -f benchmarks/locustfile.py --host URL`.

Two kinds of users share the service: anonymous astronomers (three in four) and members of a
proprietary program (signed in: a Bearer token for the IVOA services, a session cookie for the
web pages). Between them they run TAP cone searches and joins, async TAP jobs (created, waited
for, fetched, deleted), SIA queries, SODA cutouts, DataLink, cone searches, file downloads with
Range, moving-object searches and the web pages. Each request kind has a name of its own, so
Locust's statistics give latency percentiles per kind.

The targets (image identifiers, positions, file paths, an object with an orbit) are read from the
service itself when the first user starts, through TAP, so the file works against any SkyVault
with data (the demo, `make demo`). The signed-in users' credentials come from the environment:
SKYVAULT_LOAD_USER, SKYVAULT_LOAD_PASSWORD and SKYVAULT_LOAD_TOKEN (benchmarks/load.py makes a
user and sets them). A request counts as failed on any 5xx, any unexpected status, or a DALI
error document where a result was expected.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

from locust import HttpUser, between, events, task

TAP_ERROR = b'name="QUERY_STATUS" value="ERROR"'
FAILURE_LOG = os.environ.get("SKYVAULT_LOAD_FAILURE_LOG")
"""Where each failed request is recorded (time, kind, status), so that benchmarks/load.py can
tell failures during a fault from failures after recovery."""


@events.request.add_listener
def _record_failure(request_type, name, response_time, response_length, response=None,
                    exception=None, **_) -> None:
    if exception is None or not FAILURE_LOG:
        return
    status = getattr(response, "status_code", None)
    ended = time.time()
    with open(FAILURE_LOG, "a") as log:
        log.write(json.dumps({"t": ended, "started": ended - (response_time or 0) / 1000,
                              "name": name, "status": status,
                              "error": str(exception)[:300]}) + "\n")


@dataclass(frozen=True)
class Image:
    did: str
    ra: float
    dec: float
    file_path: str
    collection: str
    image_id: int


@dataclass(frozen=True)
class Targets:
    images: tuple[Image, ...]
    objects: tuple[str, ...]


_targets: Targets | None = None
_targets_lock = threading.Lock()


def _tap_csv(client, query: str) -> list[dict[str, str]]:
    response = client.get("/tap/sync", params={"LANG": "ADQL", "QUERY": query,
                                               "RESPONSEFORMAT": "csv"},
                          name="(setup) tap", timeout=120)
    response.raise_for_status()
    return list(csv.DictReader(io.StringIO(response.text)))


def targets(client) -> Targets:
    """Public science images and objects with orbits, read once per Locust process."""
    global _targets
    with _targets_lock:
        if _targets is None:
            rows = _tap_csv(client, "SELECT TOP 200 o.obs_publisher_did, o.s_ra, o.s_dec,"
                                    " o.image_id, f.path FROM ivoa.obscore AS o"
                                    " JOIN survey.files AS f ON f.image_table = o.image_table"
                                    " AND f.image_id = o.image_id"
                                    " WHERE o.calib_level = 2 AND f.product = 'sciimg'"
                                    " AND o.data_rights = 'public'")
            images = tuple(Image(r["obs_publisher_did"], float(r["s_ra"]), float(r["s_dec"]),
                                 r["path"], "sci", int(r["image_id"])) for r in rows)
            names = _tap_csv(client, "SELECT TOP 5 designation FROM"
                                     " survey.solar_system_objects ORDER BY designation")
            if not images:
                raise RuntimeError("the service has no public science images to load")
            _targets = Targets(images, tuple(r["designation"] for r in names))
        return _targets


class Astronomer(HttpUser):
    """An anonymous user of the archive."""

    abstract = True
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.api_headers: dict[str, str] = getattr(self, "api_headers", {})
        self.targets = targets(self.client)

    # -- helpers ----------------------------------------------------------------------------

    def image(self) -> Image:
        return random.choice(self.targets.images)

    def _get(self, path: str, name: str, *, params=None, headers=None, expect=(200,),
             votable: bool = False) -> None:
        with self.client.get(path, params=params, headers={**self.api_headers,
                                                            **(headers or {})},
                             name=name, catch_response=True, timeout=120) as response:
            if response.status_code not in expect:
                # Status 0: no response at all; the exception says why.
                response.failure(f"status {response.status_code}: {response.error or ''}"
                                 f" {response.text[:200] if response.text else ''}")
            elif votable and TAP_ERROR in response.content[:4000]:
                response.failure(f"error document: {response.text[:300]}")
            else:
                response.success()

    def adql(self, query: str, name: str, **extra: str) -> None:
        self._get("/tap/sync", name, params={"LANG": "ADQL", "QUERY": query, **extra},
                  votable=True)

    # -- what astronomers do ----------------------------------------------------------------

    @task(6)
    def tap_cone(self) -> None:
        image = self.image()
        self.adql("SELECT TOP 500 sourceid, ra, dec, mag, magerr FROM survey.psf_sources"
                  f" WHERE 1 = CONTAINS(POINT('ICRS', ra, dec),"
                  f" CIRCLE('ICRS', {image.ra}, {image.dec}, 0.05))", "tap sync cone")

    @task(3)
    def tap_join(self) -> None:
        image = self.image()
        self.adql("SELECT TOP 200 s.pid, s.obsdate, s.filtercode, p.ra, p.dec, p.mag"
                  " FROM survey.science_images AS s JOIN survey.psf_sources AS p"
                  f" ON p.pid = s.pid WHERE s.pid = {image.image_id} ORDER BY p.mag",
                  "tap sync join")

    @task(1)
    def tap_async(self) -> None:
        image = self.image()
        query = ("SELECT TOP 2000 sourceid, ra, dec, mag FROM survey.psf_sources WHERE"
                 f" 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {image.ra},"
                 f" {image.dec}, 0.1))")
        with self.client.post("/tap/async", data={"LANG": "ADQL", "QUERY": query,
                                                  "PHASE": "RUN"},
                              headers=self.api_headers, allow_redirects=False,
                              name="tap async create", catch_response=True,
                              timeout=120) as created:
            if created.status_code != 303:
                created.failure(f"status {created.status_code}: {created.text[:200]}")
                return
            created.success()
        job = created.headers["Location"]
        path = job[job.index("/tap/async/"):]
        deadline = time.monotonic() + 120
        phase = "QUEUED"
        while phase in ("QUEUED", "EXECUTING", "PENDING") and time.monotonic() < deadline:
            with self.client.get(f"{path}/phase", headers=self.api_headers,
                                 name="tap async phase", catch_response=True,
                                 timeout=120) as answer:
                if answer.status_code != 200:
                    answer.failure(f"status {answer.status_code}")
                    return
                phase = answer.text.strip()
                answer.success()
            if phase in ("QUEUED", "EXECUTING", "PENDING"):
                self._get(path, "tap async wait", params={"WAIT": "5", "PHASE": phase})
        if phase != "COMPLETED":
            events.request.fire(request_type="JOB", name="tap async outcome",
                                response_time=0, response_length=0, response=None,
                                context={}, exception=RuntimeError(f"job ended {phase}"))
        else:
            self._get(f"{path}/results/result", "tap async result", votable=True)
        with self.client.delete(path, headers=self.api_headers, allow_redirects=False,
                                name="tap async delete", catch_response=True,
                                timeout=120) as deleted:
            if deleted.status_code != 303:
                deleted.failure(f"status {deleted.status_code}")
            else:
                deleted.success()

    @task(4)
    def sia(self) -> None:
        image = self.image()
        self._get("/sia/query", "sia query", votable=True,
                  params={"POS": f"CIRCLE {image.ra} {image.dec} 0.05", "MAXREC": "100"})

    @task(3)
    def cutout(self) -> None:
        image = self.image()
        self._get("/soda/sync", "soda cutout",
                  params={"ID": image.did, "CIRCLE": f"{image.ra} {image.dec} 0.01"})

    @task(3)
    def datalink(self) -> None:
        self._get("/datalink/links", "datalink", params={"ID": self.image().did},
                  votable=True)

    @task(3)
    def cone_search(self) -> None:
        image = self.image()
        self._get("/scs/psf_sources", "scs cone", votable=True,
                  params={"RA": image.ra, "DEC": image.dec, "SR": 0.02})

    @task(3)
    def file_range(self) -> None:
        """The first 64 KiB of a science image, then the next, as a resuming client does."""
        path = "/files/" + quote(self.image().file_path)
        self._get(path, "file range", headers={"Range": "bytes=0-65535"}, expect=(206,))
        self._get(path, "file range", headers={"Range": "bytes=65536-131071"},
                  expect=(206,))

    @task(1)
    def moving_object(self) -> None:
        if not self.targets.objects:
            return
        self._get("/most", "most search", votable=True,
                  params={"object": random.choice(self.targets.objects), "mode": "images",
                          "format": "votable"})

    @task(4)
    def web_pages(self) -> None:
        image = self.image()
        self._get("/", "web home")
        self._get("/search", "web search", params={"position": f"{image.ra} {image.dec}",
                                                     "radius": "5"})
        self._get(f"/images/{image.collection}/{image.image_id}", "web image")
        self._get(f"/previews/{image.collection}/{image.image_id}.png", "preview",
                  expect=(200,))


class AnonymousAstronomer(Astronomer):
    weight = 3


class ProgramMember(Astronomer):
    """A member of a proprietary program: a token for the services, a session for pages."""

    weight = 1

    def on_start(self) -> None:
        token = os.environ.get("SKYVAULT_LOAD_TOKEN")
        user = os.environ.get("SKYVAULT_LOAD_USER")
        password = os.environ.get("SKYVAULT_LOAD_PASSWORD")
        if not (token and user and password):
            raise RuntimeError("SKYVAULT_LOAD_USER, _PASSWORD and _TOKEN must be set")
        self.api_headers = {"Authorization": f"Bearer {token}"}
        # A sign-in without a browser's Origin: 200 and the session cookie.
        with self.client.post("/login", data={"username": user, "password": password},
                              allow_redirects=False, name="web login",
                              catch_response=True) as response:
            if response.status_code != 200 or "skyvault_session" not in self.client.cookies:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
            else:
                response.success()
        super().on_start()

    @task(4)
    def web_pages(self) -> None:
        # Pages by cookie: the session, not the token, signs these requests in.
        saved, self.api_headers = self.api_headers, {}
        try:
            super().web_pages()
        finally:
            self.api_headers = saved
