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
    c = Client(stack.api, "admin", stack.env["FERRY_ADMIN_PASSWORD"], "admin")
    # The admin project's tests need more than the default quota.
    stack.sql("INSERT INTO quota_limits (project_id, resource, hard_limit) "
              "SELECT id, r, -1 FROM projects, unnest(ARRAY['instances','cores','ram']) r "
              "WHERE name = 'admin' ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = -1")
    return c


@pytest.fixture(scope="session")
def member(stack):
    if not stack.sql("SELECT 1 FROM users WHERE name = 'alice'"):
        stack.manage("user", "create", "alice", "--password", "alice-pw-1", "--project", "demo",
                     "--role", "member")
    return Client(stack.api, "alice", "alice-pw-1", "demo")


@pytest.fixture
def clean(admin):
    """Deletes every server before and after the test."""
    admin.delete_all()
    yield
    admin.delete_all()


# Tests that hold every task back by pausing "the conductor" (SIGSTOP on
# stack.pid("conductor")).  When the stack runs several conductors (FERRY_CONDUCTORS),
# the others are stopped for the test (gracefully: a task they hold goes back to the
# queue) and started again after it, so that pausing the first still stops all work.
PAUSE_THE_CONDUCTOR = {"test_abort_before_running_2_65", "test_abort_accepted_2_65"}


@pytest.fixture(autouse=True)
def one_conductor_while_paused(request):
    if request.node.originalname not in PAUSE_THE_CONDUCTOR:
        yield
        return
    stack = request.getfixturevalue("stack")
    others = stack.processes("conductor")[1:]
    for name in others:
        stack.stop_process(name)
    try:
        yield
    finally:
        if others:
            stack.up()


@pytest.fixture
def agents(stack):
    """Clears the compute agents' injected faults and runtime settings around a test."""
    from ferry import reset_agents
    reset_agents(stack)
    yield stack
    reset_agents(stack)
