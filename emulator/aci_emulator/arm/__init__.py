"""The generic ARM endpoint: authentication (:mod:`.auth`), the request and answer model
(:mod:`.messages`), faults (:mod:`.faults`), asynchronous operations (:mod:`.operations`),
the provider base (:mod:`.provider`), HTTP (:mod:`.listener`) and the server that routes
and validates (:mod:`.server`). Nothing here knows a particular resource provider."""

from .auth import (
    FAKE_SUBSCRIPTION_ID,
    FAKE_TENANT_ID,
    FAKE_TOKEN,
    FAKE_USER_OBJECT_ID,
    FakeCredential,
)
from .faults import Faults
from .messages import ArmRequest, ArmResponse, Call, arm_error, deep_copy_json
from .operations import AsyncOperation
from .provider import ResourceProvider
from .server import FakeArmServer

__all__ = [
    "FAKE_SUBSCRIPTION_ID",
    "FAKE_TENANT_ID",
    "FAKE_TOKEN",
    "FAKE_USER_OBJECT_ID",
    "ArmRequest",
    "ArmResponse",
    "AsyncOperation",
    "Call",
    "FakeArmServer",
    "FakeCredential",
    "Faults",
    "ResourceProvider",
    "arm_error",
    "deep_copy_json",
]
