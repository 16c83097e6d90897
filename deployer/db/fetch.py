"""The library API behind ``deployer db fetch``: NCBI's database fetched inside ACI.

``deployer db fetch WORKLOAD NAME`` runs ``blast-jobs db fetch`` as a one-off container
group (:func:`deployer.plan.dbfetch.fetch_group`) in the deployment's region, signed in to
storage as the workers are (the deployment's managed identity), so the database never
crosses the user's connection. :func:`fetch` creates the group, follows its state and log
(JSON progress lines, then the result envelope, :mod:`deployer.db.follow`), bills it from
its own start and stop times (as ``deployer run`` bills its groups) and deletes it, whether
the fetch succeeded, failed or was interrupted. :func:`plan` shows the group and its cost
per hour and creates nothing.

Before anything is created, this machine checks the arguments and, when it can reach the
source, that the source has the database (an unknown name is refused in a second, with the
names the source has); a source this machine cannot reach is left to the group.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blast_client import BlastClientError
from blast_client.names import InvalidName, check_db_name
from blast_client.ncbi import HttpSource, SourceDirectory, check_date, source_url

from deployer import defaults, hints, pricing, sizing
from deployer.api import PlanResult, plan_result
from deployer.backends.base import Backend, ObservedGroup
from deployer.cluster import Cluster
from deployer.db import follow
from deployer.db.follow import LogProgress
from deployer.defaults import Env
from deployer.errors import DeployerError, InputError, SizingError
from deployer.imagerefs import deploy_settings, group_images, require_images
from deployer.plan import Action, Change, GroupSpec, Plan, storage_env
from deployer.plan.dbfetch import KIND, FetchArgs, fetch_group
from deployer.run.billing import Bill, bill_of, price
from deployer.scope import BackendFactory, aci_backend
from deployer.settings import NO_OVERRIDES, Overrides, Settings
from deployer.workload import Workload, load

LOG_TAIL = 40
"""Log lines read per poll while the fetch runs (the newest progress line is among them)."""
FINAL_TAIL = 400
"""Log lines read once the fetch ended (the envelope, and a message after it)."""
VISIBLE_WITHIN = 60.0
"""Seconds a new group may stay invisible to GET after its create was accepted."""
_RESUME = "verified volumes are kept: run the same command again to resume"


@dataclass(frozen=True)
class FetchRequest:
    """What ``deployer db fetch WORKLOAD NAME`` asks for.

    Args:
        workload (Path): The workload file (deployment, region, identity, storage).
        args (FetchArgs): The database and ``--source``, ``--date``, ``--as``.
    """

    workload: Path
    args: FetchArgs


@dataclass(frozen=True)
class SourceLook:
    """What this machine read about the database from the source (best effort).

    Args:
        url (str): The source's URL.
        volumes (int | None): Its tarballs.
        compressed (int | None): Bytes of its tarballs (NCBI's ``bytes-total-compressed``).
        bytes_to_cache (int | None): Its ``bytes-to-cache``.
        last_updated (str | None): NCBI's ``last-updated``.
        error (str | None): Why the source could not be read from here (the group will try).
    """

    url: str
    volumes: int | None = None
    compressed: int | None = None
    bytes_to_cache: int | None = None
    last_updated: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A request checked, with its group; nothing created yet."""

    request: FetchRequest
    workload: Workload
    settings: Settings
    spec: GroupSpec
    prices: pricing.PriceSheet
    source: SourceLook


@dataclass(frozen=True)
class Event:
    """What the fetch is doing, for the display.

    Args:
        group (str): The group's name.
        phase (str): In a few words (``starting (...)``, ``fetching``, ``deleting the group``).
        elapsed (float): Seconds since the command began.
        progress (LogProgress | None): The newest progress line, once there is one.
    """

    group: str
    phase: str
    elapsed: float
    progress: LogProgress | None = None


@dataclass(frozen=True)
class FetchOutcome:
    """What a fetch did.

    Args:
        group (str): The group that ran it (deleted now).
        location (str): Its region.
        status (str): ``fetched``, or ``current`` (nothing transferred).
        result (dict[str, Any]): ``blast-jobs db fetch``'s result (``FetchResult.to_json``).
        bill (Bill): The group's vCPU-seconds, GB-seconds and cost.
        seconds (float): Wall time of the command.
    """

    group: str
    location: str
    status: str
    result: dict[str, Any]
    bill: Bill
    seconds: float


# --- checks (before anything exists) --------------------------------------------------


def _check_args(args: FetchArgs) -> str:
    """The source's URL, after the checks ``blast-jobs`` would make (pure).

    Raises:
        InputError: a bad name, ``--as``, ``--source`` or ``--date``.
    """
    for value, what in ((args.name, "NAME"), (args.stored_as, "--as")):
        try:
            check_db_name(value)
        except InvalidName as exc:
            raise InputError(f"{what}: {exc}") from None
    try:
        check_date(args.date)
        return source_url(args.source)
    except BlastClientError as exc:
        raise hints.from_blast(exc) from None


def look_at_source(url: str, args: FetchArgs, http: HttpSource | None = None) -> SourceLook:
    """Read the database's entry in the source from this machine (a few KB).

    Args:
        url (str): The source's URL.
        args (FetchArgs): The database and ``--date``.
        http (HttpSource | None): The HTTP edge; default: quick (one retry, 10 s timeout).

    Raises:
        InputError: The source has no such database (listing what it has), or no snapshot
            of ``--date``.
    """
    source = SourceDirectory(url, http or HttpSource(retries=1, timeout=10.0))
    try:
        db = source.database(args.name, args.date)
    except BlastClientError as exc:
        if exc.exit_code == 2:
            raise hints.from_blast(exc) from None
        return SourceLook(url, error=exc.message)
    meta = db.metadata

    def number(key: str) -> int | None:
        value = meta.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return SourceLook(
        db.base,
        len(db.volumes),
        number("bytes-total-compressed"),
        number("bytes-to-cache"),
        db.last_updated,
    )


def prepare(
    request: FetchRequest,
    overrides: Overrides = NO_OVERRIDES,
    *,
    prices_file: Path | None = None,
    need_azure: bool = True,
    http: HttpSource | None = None,
) -> Prepared:
    """Check the request and build its group; create nothing.

    Raises:
        InputError: bad arguments, a workload without BLAST, or a database the source
            does not have.
        MissingSettingError: a setting the group needs (storage, identity, Azure scope).
    """
    url = _check_args(request.args)
    workload = load(request.workload)
    if workload.workloads.blast is None:
        raise InputError(
            f"{request.workload} defines no blast workload",
            hint="add workloads.blast (workers, databases); the fetch writes to its storage",
        )
    settings = deploy_settings(workload, overrides, need_azure=need_azure)
    spec = fetch_group(settings, storage_env(settings, workload), request.args)
    prices = pricing.load(settings.location, prices_file, workload.deployment.prices)
    return Prepared(
        request, workload, settings, spec, prices, look_at_source(url, request.args, http)
    )


# --- plan ------------------------------------------------------------------------------


def _gb(n: int) -> str:
    return f"{n / defaults.GB:.2f} GB"


def notes(prep: Prepared) -> list[str]:
    """What ``db fetch --plan`` says besides the group's row (pure)."""
    args, look, settings = prep.request.args, prep.source, prep.settings
    out = []
    if look.error is not None:
        out.append(
            f"could not read the source from here ({look.error}); the group reads it in "
            f"{settings.location}"
        )
    else:
        size = f", {_gb(look.compressed)} of tarballs" if look.compressed else ""
        cache = f", bytes-to-cache {_gb(look.bytes_to_cache)}" if look.bytes_to_cache else ""
        updated = f", updated {look.last_updated[:10]}" if look.last_updated else ""
        out.append(
            f"{args.name} from {look.url}: {look.volumes} volumes{size}{cache}{updated}; "
            f"stored as {args.stored_as}"
        )
        if look.bytes_to_cache:
            try:
                sizing.check_cache_fits([(args.stored_as, look.bytes_to_cache)])
            except SizingError as exc:
                out.append(f"once fetched, the workers cannot cache it: {exc.message}")
    who = (
        f"deployment.managed_identity (the workers' storage data roles on account "
        f"{settings.storage_account})"
        if settings.storage_account
        else "the storage connection string"
    )
    out.append(
        f"the group runs once in {settings.location} and signs in to storage with {who}; "
        "the database streams from the source into storage without crossing this machine"
    )
    out.append(
        "billed per second from its start to its stop; deleted when the fetch ends, fails "
        "or is interrupted (Ctrl-C); an interrupted fetch resumes where it stopped"
    )
    return out


def plan(
    request: FetchRequest,
    overrides: Overrides = NO_OVERRIDES,
    *,
    prices_file: Path | None = None,
    http: HttpSource | None = None,
) -> PlanResult:
    """The fetch group and its cost per hour, as ``deployer plan`` shows groups; creates
    nothing and asks Azure nothing.

    Raises:
        InputError: As :func:`prepare`.
    """
    prep = prepare(request, overrides, prices_file=prices_file, need_azure=False, http=http)
    spec = prep.spec
    one = Plan(prep.settings.deployment, prep.settings.location, (spec,))
    return plan_result(one, [Change(spec.name, Action.CREATE, spec)], prep.prices, notes(prep))


# --- the fetch ---------------------------------------------------------------------------


@contextlib.contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """While the group may exist, Ctrl-C only sets ``stop``; the follow loop ends at its next
    look. A KeyboardInterrupt raised wherever the signal lands could skip the deletion (on
    the way into it) or be lost (while it ran), so the command would leave the group
    running, or end as if nothing was pressed (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Stopped(Exception):
    """Ctrl-C, seen by the follow loop."""


@dataclass
class _Follow:
    """One fetch group, from create to delete."""

    prep: Prepared
    backend: Backend
    on_event: Callable[[Event], None]
    interval: float
    began: float = field(default_factory=time.monotonic)
    last: ObservedGroup | None = None
    progress: LogProgress | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return self.prep.spec.name

    def event(self, phase: str) -> None:
        elapsed = time.monotonic() - self.began
        self.on_event(Event(self.name, phase, elapsed, self.progress))

    def take_over_or_clear(self) -> bool:
        """Delete a finished group left by an earlier run; follow one still running.

        Returns:
            True when a running fetch of this database is followed instead of a new one.
        """
        found = self.backend.get(self.name)
        if found is None:
            return False
        if found.terminated or found.provisioning_state == "Failed":
            self.event("deleting a finished fetch group left by an earlier run")
            self.backend.delete(self.name)
            return False
        self.event("following the fetch already running in this group")
        return True

    def until_done(self) -> tuple[ObservedGroup, str]:
        """Poll the group and its log until the fetch ended; return the group and its log.

        Raises:
            DeployerError: The group could not start, or vanished (deleted by someone).
            _Stopped: Ctrl-C.
        """
        unseen_since = time.monotonic()
        while True:
            if self.stop.is_set():
                raise _Stopped
            found = self.backend.get(self.name)
            if found is None:
                # ARM may lag just after the create; a group seen before and gone was deleted.
                if self.last is not None or time.monotonic() - unseen_since > VISIBLE_WITHIN:
                    raise DeployerError(
                        f"group {self.name} disappeared before the fetch ended",
                        hint="someone deleted it (`deployer down`?); run the same command "
                        "again to resume",
                        code="FetchGroupGone",
                    )
                self.stop.wait(self.interval)
                continue
            self.last = found
            if follow.exit_code(found) is not None:
                log = self._log(FINAL_TAIL)
                self.progress = follow.last_progress(log) or self.progress
                self.event(follow.phase(found))  # with the last progress line, the final one
                return found, log
            if found.provisioning_state == "Failed":
                detail = found.containers[0].detail if found.containers else None
                raise DeployerError(
                    f"group {self.name} failed to start" + (f": {detail}" if detail else ""),
                    hint="check the image and the registry (`deployer build`), then run again",
                    code="FetchGroupFailed",
                )
            if found.containers and found.containers[0].state == "Running":
                with contextlib.suppress(DeployerError):  # no log yet: next poll
                    self.progress = follow.last_progress(self._log(LOG_TAIL)) or self.progress
            self.event(follow.phase(found))
            self.stop.wait(self.interval)

    def _log(self, tail: int | None) -> str:
        return self.backend.logs(self.name, KIND, tail=tail)

    def bill_and_delete(self) -> Bill:
        """Bill the group from its own start and stop times, then delete it (Ctrl-C
        only sets :attr:`stop` meanwhile, see :func:`_ctrl_c_sets`)."""
        self.event("deleting the group")
        with contextlib.suppress(DeployerError):
            self.last = self.backend.get(self.name) or self.last
        bills = []
        if self.last is not None:
            resources = self.prep.spec.resources
            vcpu, gb = resources.cpu / defaults.TENTHS, resources.memory / defaults.TENTHS
            billed = bill_of(self.last, KIND, vcpu, gb, time.time())
            if billed is not None:
                bills.append(billed)
        try:
            self.backend.delete(self.name)
        except DeployerError as exc:
            rg = self.prep.settings.resource_group or "<resource group>"
            raise DeployerError(
                f"could not delete group {self.name}: {exc.message}",
                hint=f"delete it: az container delete -g {rg} -n {self.name} --yes "
                "(or `deployer down`)",
                code=exc.code,
            ) from None
        return price(bills, self.prep.prices)


def _cost(bill: Bill) -> str:
    return (
        f"{bill.vcpu_seconds:.0f} vCPU-s, {bill.gb_seconds:.0f} GB-s, "
        f"{bill.cost:.4f} {bill.currency}"
    )


def fetch(
    request: FetchRequest,
    overrides: Overrides = NO_OVERRIDES,
    *,
    backend_factory: BackendFactory = aci_backend,
    on_event: Callable[[Event], None] = lambda event: None,
    interval: float | None = None,
    http: HttpSource | None = None,
) -> FetchOutcome:
    """Fetch the database in a one-off group; always delete the group.

    Args:
        request (FetchRequest): The workload and the database.
        overrides (Overrides): Command-line settings.
        backend_factory (BackendFactory): Builds the backend. Default: ACI.
        on_event (Callable[[Event], None]): Told what happens, at every poll.
        interval (float | None): Seconds between polls. Default: ``DEPLOYER_POLL_INTERVAL``,
            else 5 s.
        http (HttpSource | None): The HTTP edge of the source check on this machine.

    Raises:
        InputError: Bad input (nothing created), or the fetch refused its input in the group
            (e.g. an unknown name): exit 2.
        QuotaError: The group does not fit the regional quota (nothing created).
        DeployerError: The fetch failed (MD5 mismatch, unreachable source, storage), the
            group could not start, or Ctrl-C; the group is deleted and the message ends with
            its bill.
    """
    prep = prepare(request, overrides, http=http)
    backend = backend_factory(prep.settings)
    poll = interval or defaults.env_float(Env.POLL_INTERVAL, defaults.DEFAULT_POLL_INTERVAL_S)
    run = _Follow(prep, backend, on_event, poll)
    spec = prep.spec
    taken_over = run.take_over_or_clear()
    if not taken_over:
        change = Change(spec.name, Action.CREATE, spec)
        require_images(group_images([spec]), prep.settings, str(request.workload))
        Cluster(backend).check_quota([change], {}, prep.settings.location)
    failure: DeployerError | None = None
    envelope: dict[str, Any] | None = None
    observed: ObservedGroup | None = None
    log = ""
    interrupted = DeployerError(
        "interrupted: the fetch was stopped", hint=_RESUME, code="Interrupted"
    )
    with _ctrl_c_sets(run.stop):
        try:
            if not taken_over:
                run.event(f"creating the group in {prep.settings.location}")
                backend.start_create(spec)
            observed, log = run.until_done()
            envelope = follow.envelope(log)
        except (_Stopped, KeyboardInterrupt):
            failure = interrupted
        except DeployerError as exc:
            failure = exc
        finally:
            bill = run.bill_and_delete()
    seconds = time.monotonic() - run.began
    if failure is None and run.stop.is_set():
        # Ctrl-C after the fetch ended, while its group was deleted: still an interrupted
        # command (exit 1), which says how the fetch ended.
        ended = "ended" if observed is None else f"ended (exit code {follow.exit_code(observed)})"
        failure = DeployerError(
            f"interrupted: the fetch had already {ended}", hint=_RESUME, code="Interrupted"
        )
    if failure is None and observed is not None:
        code = follow.exit_code(observed)
        if envelope is not None and envelope.get("ok") and code == 0:
            result = dict(envelope.get("data") or {})
            return FetchOutcome(
                run.name, prep.settings.location, str(result.get("status")), result, bill, seconds
            )
        failure = follow.failure(envelope, log, code)
    assert failure is not None
    raise type(failure)(
        f"{failure.message}; group {run.name} deleted after {seconds:.0f} s ({_cost(bill)})",
        hint=failure.hint,
        code=failure.code,
    )
