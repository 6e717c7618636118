import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from ferry import Client, Stack  # noqa: E402


@pytest.fixture(scope="session")
def stack():
    s = Stack()
    s.up()
    yield s
    if not os.environ.get("FERRY_E2E_KEEP"):
        s.down()


@pytest.fixture(scope="session")
def admin(stack):
    return Client(stack.api, "admin", stack.env["FERRY_ADMIN_PASSWORD"], "admin")


@pytest.fixture(scope="session")
def member(stack):
    stack.manage("user", "create", "alice", "--password", "alice-pw-1", "--project", "demo",
                 "--role", "member")
    return Client(stack.api, "alice", "alice-pw-1", "demo")


@pytest.fixture
def clean(admin):
    """Deletes every server before and after the test."""
    admin.delete_all()
    yield
    admin.delete_all()
