"""The lean HTTP path of node-to-node requests: /node-api/ has a Django handler of its own.

Other nodes do not log in, keep no session, send no CSRF token and have no second factor: every
request is signed (``settlement.transport.node_to_node``) and so is every answer. The dashboard's
middleware chain (settings.MIDDLEWARE) does nothing for them, and under daphne it cost a gossip
POST 8-18 ms at p50 under load: two of its middlewares are synchronous only, and Django runs each
``MiddlewareMixin`` hook of an async request in a thread hop of its own. So ``settlement.asgi``
sends every path under ``NODE_API_PREFIX`` to ``NodeApiASGIHandler``, which

- runs ``settings.NODE_API_MIDDLEWARE`` instead, and accepts only middleware that runs on the
  event loop (no thread hop); ``NodeSignatureRequiredMiddleware`` there refuses any view that
  does not check a node signature, as LoginRequiredMiddleware refuses anonymous users elsewhere;
- resolves against ``settings.NODE_API_URLCONF`` only, whose error handlers answer JSON: no page
  or REST view is reachable through it, and the dashboard's URLconf has no node-api route.

The test client routes the same way (``tests.support``), with ``NodeApiClientHandler``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware import common, security
from django.urls import set_urlconf
from django.utils.module_loading import import_string

from settlement.errors import error_body

NODE_API_PREFIX = "/node-api/"

AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponse]]


def is_node_api_path(path: str) -> bool:
    """Whether a request's path (without the script prefix) belongs to the lean handler."""
    return path.startswith(NODE_API_PREFIX)


class NodeApiHandlerMixin:
    """What makes a Django handler the node-api one: its own middleware and URLconf."""

    _view_middleware: list[Any]
    _template_response_middleware: list[Any]
    _exception_middleware: list[Any]
    _middleware_chain: Any
    _get_response_async: AsyncGetResponse

    def load_middleware(self, is_async: bool = False) -> None:
        """Build the chain from NODE_API_MIDDLEWARE, async middleware only (BaseHandler's would
        read settings.MIDDLEWARE and adapt a sync middleware with a thread hop per request)."""
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler: Any = convert_exception_to_response(self._get_response_async)
        for path in reversed(settings.NODE_API_MIDDLEWARE):
            middleware = import_string(path)
            if not getattr(middleware, "async_capable", False) or getattr(middleware, "sync_capable", True):
                raise ImproperlyConfigured(
                    f"NODE_API_MIDDLEWARE takes async-only middleware (async_capable = True, "
                    f"sync_capable = False); {path} would cost every node-to-node request a thread hop"
                )
            instance = middleware(handler)
            for hook in ("process_template_response", "process_exception"):
                if hasattr(instance, hook):
                    raise ImproperlyConfigured(f"NODE_API_MIDDLEWARE: {path}.{hook} is not supported here")
            if hasattr(instance, "process_view"):
                if not iscoroutinefunction(instance.process_view):
                    raise ImproperlyConfigured(f"NODE_API_MIDDLEWARE: {path}.process_view must be async")
                self._view_middleware.insert(0, instance.process_view)
            handler = convert_exception_to_response(instance)

        async def with_node_api_urlconf(request: HttpRequest) -> Any:
            # The request resolves against the node-api URLconf, and any error raised on the
            # way (a bad Host header, say) is answered by that URLconf's JSON handlers.
            request.urlconf = settings.NODE_API_URLCONF  # type: ignore[attr-defined]
            set_urlconf(settings.NODE_API_URLCONF)
            return await handler(request)

        # The test client's handler is synchronous: one event loop hop for the whole chain.
        self._middleware_chain = with_node_api_urlconf if is_async else async_to_sync(with_node_api_urlconf)


class NodeApiASGIHandler(NodeApiHandlerMixin, ASGIHandler):
    """Django's ASGI handler with the node-api middleware and URLconf (``settlement.asgi``)."""


class RunsOnTheEventLoop:
    """For a Django ``MiddlewareMixin`` whose process_request and process_response only compute
    (headers, settings, no I/O, no database): call them on the event loop. MiddlewareMixin would
    hand each to a thread (``sync_to_async``), two thread hops per middleware and request."""

    sync_capable = False
    async_capable = True
    get_response: Any

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = None
        process_request = getattr(self, "process_request", None)
        if process_request is not None:
            response = process_request(request)
        response = response or await self.get_response(request)
        process_response = getattr(self, "process_response", None)
        if process_response is not None:
            response = process_response(request, response)
        return response


class SecurityMiddleware(RunsOnTheEventLoop, security.SecurityMiddleware):
    """Django's SecurityMiddleware as configured for the whole node (SECURE_SSL_REDIRECT,
    HSTS, nosniff, referrer and opener policies), on the event loop."""


class CommonMiddleware(RunsOnTheEventLoop, common.CommonMiddleware):
    """Django's CommonMiddleware on the event loop, for the Host check (``request.get_host()``
    refuses a host not in ALLOWED_HOSTS with 400) and Content-Length on answers. Its other
    duties cost nothing here: no node-api route ends with a slash, so APPEND_SLASH never
    redirects, and PREPEND_WWW and DISALLOWED_USER_AGENTS apply as configured."""


class NodeSignatureRequiredMiddleware:
    """Refuse, before it runs, any view that does not check a node signature: the node-api
    counterpart of LoginRequiredMiddleware. ``node_to_node`` marks the views it wraps
    (``transport.NODE_SIGNATURE_CHECKED``); a view that checks inside says so with
    ``transport.checks_node_signature_through``. A route added without either is refused with
    403 for every caller, so it cannot be public by mistake."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: AsyncGetResponse) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)  # so that Django awaits it

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        return await self.get_response(request)

    async def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        from settlement.transport import NODE_SIGNATURE_CHECKED

        if getattr(view_func, NODE_SIGNATURE_CHECKED, False):
            return None
        return JsonResponse(
            error_body(
                "node_signature_not_checked",
                "This node-to-node endpoint does not check the caller's signature, so it answers nobody.",
            ),
            status=403,
        )


# The node-api URLconf's error handlers: JSON for every error, as node clients read it.


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return JsonResponse(error_body("bad_request", "The request is malformed (its Host, say)."), status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return JsonResponse(error_body("permission_denied", "This request is not allowed."), status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return JsonResponse(
        error_body("not_found", f"No node-to-node endpoint is at {request.path}."), status=404
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return JsonResponse(error_body("server_error", "The node failed to answer; see its log."), status=500)
