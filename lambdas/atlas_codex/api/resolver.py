"""The REST resolver with the request it resolves kept per thread.

Powertools keeps the event and the Lambda context being resolved as class attributes of
``BaseRouter``: one slot for the whole process, which every resolver and router reads
(``app.current_event``, ``router.current_event``). In Lambda an environment resolves one
request at a time, so that holds; where two requests are resolved side by side in one process
(local mode serves its environments from threads), one request's routes would read the other's
headers and body. Here each resolving thread has its own slot, read by the resolver and by
every router included in it (routers read through ``api_resolver``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext


class RequestResolver(APIGatewayRestResolver):
    """``APIGatewayRestResolver`` whose current event and context belong to the thread
    resolving them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._request = threading.local()
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def current_event(self) -> BaseProxyEvent:
        event: BaseProxyEvent = self._request.event
        return event

    @current_event.setter
    def current_event(self, value: BaseProxyEvent) -> None:
        self._request.event = value

    @property
    def lambda_context(self) -> LambdaContext:
        context: LambdaContext = self._request.context
        return context

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        self._request.context = value

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.current_event = self._to_proxy_event(dict(event))
        self.lambda_context = context
        try:
            return super().resolve(event, context)
        finally:
            self._request.event = None
            self._request.context = None
