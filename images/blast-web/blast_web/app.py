"""The BLAST web page: thin Starlette views over :mod:`blast_web.service`, rendered by Jinja2.

Security (sessions, login, CSRF, size limits, headers) is :mod:`blast_web.guard`, in front of
every route; the views only render.
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from blast_client import PROGRAMS
from blast_client.messages import TASKS
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from blast_web import __version__
from blast_web.alignment import alignment_text
from blast_web.forms import SearchForm, check_search
from blast_web.guard import Guard, cookie_header
from blast_web.overview import SCORE_BINS, overview_svg
from blast_web.report import SORT_KEYS, Report, format_evalue, paginate, sort_hits
from blast_web.security import Signer
from blast_web.service import (
    DOWNLOADS,
    BlastClientError,
    NoResult,
    Search,
    Service,
    new_search_id,
)
from blast_web.settings import Settings

log = logging.getLogger("blast_web")
HERE = Path(__file__).parent
HITS_PER_PAGE = 50
QUERIES_PER_PAGE = 50


def human_size(n: int | None) -> str:
    """Bytes for people, in binary units: ``10 MiB``, ``1.2 GiB``.

    Args:
        n: Bytes, or None.
    """
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{n} B"


def when(epoch: float | None) -> str:
    """A UTC time for tables, or "" when unknown.

    Args:
        epoch: Seconds since the epoch.
    """
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def make_env() -> jinja2.Environment:
    """The template environment: autoescaping on for every template."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["evalue"] = format_evalue
    env.filters["size"] = human_size
    env.filters["when"] = when
    env.globals.update(
        version=__version__,
        programs=PROGRAMS,
        tasks={k: sorted(v) for k, v in TASKS.items()},
        score_bins=SCORE_BINS,
        sort_keys=SORT_KEYS,
        downloads=DOWNLOADS,
    )
    return env


def results_context(
    report: Report,
    search: Search,
    q: int = 1,
    page: int = 1,
    sort: str = "num",
    order: str = "",
    qpage: int = 1,
) -> dict[str, Any]:
    """What the results template needs for one query's view (pure; the bench times it).

    Args:
        report: The parsed results.
        search: The search.
        q: The query shown, from 1.
        page: The hit table page.
        sort: A key of :data:`SORT_KEYS`.
        order: ``asc`` or ``desc``; "" for the column's natural order.
        qpage: The page of the query list.
    """
    queries = report.queries
    query = queries[min(max(q, 1), len(queries)) - 1] if queries else None
    if sort not in SORT_KEYS:
        sort = "num"
    descending = SORT_KEYS[sort][1] if order not in ("asc", "desc") else order == "desc"
    base = f"/searches/{search.search_id}"
    hits = paginate(sort_hits(query.hits, sort, descending) if query else [], page, HITS_PER_PAGE)
    overview = None
    if query is not None and query.hits:
        index = query.index
        overview = Markup(  # every string inside is escaped by overview_svg
            overview_svg(query, link=lambda n: f"{base}/queries/{index}/hits/{n}")
        )

    def url(**changes: Any) -> str:
        params = {"q": query.index if query else 1, "sort": sort, "order": order, "page": 1}
        params.update(changes)
        params = {k: v for k, v in params.items() if v not in ("", None)}
        return f"{base}?{urllib.parse.urlencode(params)}"

    return {
        "search": search,
        "report": report,
        "query": query,
        "hits": hits,
        "overview": overview,
        "sort": sort,
        "descending": descending,
        "url": url,
        "query_page": paginate(queries, qpage, QUERIES_PER_PAGE),
        "base": base,
    }


class Pages:
    """The views.

    Args:
        service: The BLAST service.
        settings: The app settings.
        env: The template environment.
    """

    def __init__(self, service: Service, settings: Settings, env: jinja2.Environment) -> None:
        self.service = service
        self.settings = settings
        self.env = env
        self.signer = Signer(settings.secret_key)

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """Render a template with the request's CSRF token and nav state.

        Args:
            request: The request.
            name: The template file.
            status: HTTP status.
            **context: Template variables.
        """
        html = self.env.get_template(name).render(
            csrf=request.state.csrf,
            logged_in=request.state.session.authenticated,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    # -- health and login -------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        """Liveness for the image's HEALTHCHECK and ACI probes: the server answers."""
        return JSONResponse({"status": "ok", "version": __version__})

    async def login(self, request: Request) -> Response:
        """The login form (GET) and its check (POST)."""
        next_url = _local_path(request.query_params.get("next", "/"))
        if request.method == "GET":
            if request.state.session.authenticated:
                return RedirectResponse(next_url, status_code=303)
            return self.render(request, "login.html", next=next_url, error=None)
        form = request.state.form
        secret = form.get("secret")
        next_url = _local_path(str(form.get("next") or "/"))
        if not isinstance(secret, str) or not await run_in_threadpool(
            self.settings.credentials.check, secret
        ):
            return self.render(
                request, "login.html", status=403, next=next_url,
                error="That token or password is not right.",
            )  # fmt: skip
        # A new session at login: an id planted before it is worth nothing after.
        session = self.signer.new_session(authenticated=True)
        response = RedirectResponse(next_url, status_code=303)
        response.headers.append(
            "set-cookie", cookie_header(self.signer.dump(session), self.settings.secure_cookies)
        )
        return response

    async def logout(self, request: Request) -> Response:
        """End the session."""
        response = RedirectResponse("/login", status_code=303)
        response.headers.append(
            "set-cookie", cookie_header("", self.settings.secure_cookies, max_age=0)
        )
        return response

    # -- new search -------------------------------------------------------------------------

    async def new_search(self, request: Request) -> Response:
        """The search form (GET) and its submission (POST)."""
        form = SearchForm(values={"program": "auto"})
        # The form shows what storage holds now; a post is checked against the cached list,
        # read again when it names a database the list does not have.
        dbs, db_error = await self._databases(fresh=request.method == "GET")
        posted_db = request.state.form.get("db") if request.method == "POST" else None
        if isinstance(posted_db, str) and not db_error and posted_db not in {d.name for d in dbs}:
            dbs, db_error = await self._databases(fresh=True)
        if len(dbs) == 1:
            form.values["db"] = dbs[0].name
        if request.method == "GET":
            return self._form(request, form, dbs, db_error)
        if request.state.too_large:
            form.errors["query"] = (
                f"The query is larger than the {human_size(self.settings.max_query_bytes)} "
                "limit: split it into several searches. Nothing was submitted."
            )
            return self._form(request, form, dbs, db_error, status=413)
        posted = request.state.form
        form = SearchForm.from_fields({k: v for k, v in posted.items() if isinstance(v, str)})
        upload = posted.get("query_file")
        if isinstance(upload, UploadFile) and upload.filename:
            # Only the contents are used; the file name never becomes a path.
            data = await upload.read(self.settings.max_query_bytes + 1)
            if len(data) > self.settings.max_query_bytes:
                form.errors["query"] = (
                    f"The file is larger than the {human_size(self.settings.max_query_bytes)} "
                    "limit. Nothing was submitted."
                )
            else:
                try:
                    form.values["query"] = data.decode("utf-8")
                except UnicodeDecodeError:
                    form.errors["query"] = "The file is not text (UTF-8 FASTA expected)."
        elif len(form.get("query").encode()) > self.settings.max_query_bytes:
            form.errors["query"] = (
                f"The query is larger than the {human_size(self.settings.max_query_bytes)} "
                "limit. Nothing was submitted."
            )
        if db_error:
            form.errors.setdefault("form", db_error)
        if form.errors:
            too_big = "limit" in form.errors.get("query", "")
            return self._form(request, form, dbs, db_error, status=413 if too_big else 400)
        search_id = new_search_id()
        specs = check_search(
            form, dbs, self.service.client.plan, search_id, self.settings.max_records
        )
        if not specs:
            return self._form(request, form, dbs, db_error, status=400)
        try:
            await run_in_threadpool(self.service.submit, specs)
        except BlastClientError as exc:
            form.errors["form"] = f"The search could not be queued: {exc.message}"
            return self._form(request, form, dbs, db_error, status=503)
        log.info("search %s: %d batch job(s) queued", search_id, len(specs))
        return RedirectResponse(f"/searches/{search_id}", status_code=303)

    async def _databases(self, fresh: bool = False) -> tuple[list[Any], str | None]:
        try:
            return await run_in_threadpool(self.service.databases, fresh), None
        except BlastClientError as exc:
            return [], f"The database list is unavailable: {exc.message}"

    def _form(
        self,
        request: Request,
        form: SearchForm,
        dbs: list[Any],
        db_error: str | None,
        status: int = 200,
    ) -> Response:
        return self.render(
            request,
            "search_form.html",
            status=status,
            form=form,
            databases=dbs,
            db_error=db_error,
            max_query=human_size(self.settings.max_query_bytes),
            max_query_bytes=self.settings.max_query_bytes,
            max_records=self.settings.max_records,
        )

    # -- searches ---------------------------------------------------------------------------

    async def searches(self, request: Request) -> Response:
        """Recent searches with live status."""
        try:
            found = await run_in_threadpool(self.service.recent)
            error = None
        except BlastClientError as exc:
            found, error = [], exc.message
        if request.url.path.endswith(".json"):
            return JSONResponse({"searches": [s.to_json() for s in found], "error": error})
        return self.render(request, "searches.html", searches=found, error=error)

    async def _search(self, request: Request) -> Search | Response:
        search_id = request.path_params["search_id"]
        try:
            search = await run_in_threadpool(self.service.search, search_id)
        except BlastClientError as exc:
            return self.render(request, "error.html", status=404, message=exc.message)
        if search is None:
            return self.render(
                request, "error.html", status=404, message=f"There is no search {search_id}."
            )
        return search

    async def search(self, request: Request) -> Response:
        """One search: progress while it runs, then its results (the shareable URL)."""
        search = await self._search(request)
        if isinstance(search, Response):
            return search
        if request.url.path.endswith("/status.json"):
            return JSONResponse(search.to_json())
        report = None
        error = None
        if search.state in ("succeeded", "partial"):
            try:
                report = await run_in_threadpool(self.service.report, search)
            except BlastClientError as exc:
                error = exc.message
        if report is None:
            return self.render(request, "search.html", search=search, report=None, error=error)
        params = request.query_params
        context = results_context(
            report,
            search,
            q=_int(params.get("q"), 1),
            page=_int(params.get("page"), 1),
            sort=params.get("sort", "num"),
            order=params.get("order", ""),
            qpage=_int(params.get("qpage"), 1),
        )
        return self.render(request, "search.html", error=error, **context)

    async def alignment(self, request: Request) -> Response:
        """The pairwise alignments of one hit."""
        search = await self._search(request)
        if isinstance(search, Response):
            return search
        try:
            report = await run_in_threadpool(self.service.report, search)
        except BlastClientError as exc:
            return self.render(request, "error.html", status=404, message=exc.message)
        q, n = request.path_params["q"], request.path_params["hit"]
        query = report.queries[q - 1] if 1 <= q <= len(report.queries) else None
        hit = next((h for h in query.hits if h.num == n), None) if query else None
        if query is None or hit is None:
            return self.render(request, "error.html", status=404, message="No such hit.")
        blocks = [alignment_text(hsp, report.program) for hsp in hit.hsps]
        return self.render(
            request,
            "alignment.html",
            search=search,
            report=report,
            query=query,
            hit=hit,
            blocks=blocks,
            base=f"/searches/{search.search_id}",
        )

    async def download(self, request: Request) -> Response:
        """A results file: TSV (6), JSON (15), the archive (11) or hit sequences (FASTA)."""
        search = await self._search(request)
        if isinstance(search, Response):
            return search
        kind = request.path_params["kind"]
        try:
            if kind == "fasta":
                file = await run_in_threadpool(self.service.hit_fasta, search)
                data, name, media = file.data, file.filename, file.media_type
            elif kind in DOWNLOADS:
                file = await run_in_threadpool(self.service.download, search, kind)
                data, name, media = file.data, file.filename, file.media_type
            else:
                return self.render(request, "error.html", status=404, message="No such download.")
        except NoResult as exc:
            return self.render(request, "error.html", status=409, message=exc.message)
        except BlastClientError as exc:
            return self.render(request, "error.html", status=502, message=exc.message)
        return Response(
            data,
            media_type=media,
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _local_path(target: str) -> str:
    """``target`` if it is a path on this site, else ``/`` (no open redirects)."""
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def create_app(service: Service, settings: Settings) -> Guard:
    """The ASGI application.

    Args:
        service: The BLAST service (``Service(BlastClient.from_env(...))``).
        settings: The settings.
    """
    pages = Pages(service, settings, make_env())
    search_path = "/searches/{search_id:str}"
    handlers: list[tuple[str, Callable[[Request], Any], list[str]]] = [
        ("/healthz", pages.healthz, ["GET"]),
        ("/login", pages.login, ["GET", "POST"]),
        ("/logout", pages.logout, ["POST"]),
        ("/", pages.new_search, ["GET", "POST"]),
        ("/searches", pages.searches, ["GET"]),
        ("/searches.json", pages.searches, ["GET"]),
        (search_path, pages.search, ["GET"]),
        (search_path + "/status.json", pages.search, ["GET"]),
        (search_path + "/queries/{q:int}/hits/{hit:int}", pages.alignment, ["GET"]),
        (search_path + "/download/{kind:str}", pages.download, ["GET"]),
    ]
    routes: list[Route | Mount] = [Route(p, h, methods=m) for p, h, m in handlers]
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(routes=routes)
    return Guard(
        app,
        pages.signer,
        settings.credentials,
        secure=settings.secure_cookies,
        max_body=settings.max_query_bytes,
    )
