"""Property-based run of schemathesis against the served OpenAPI spec (bounded: a few examples per
operation): no generated request makes the server fail (5xx), every 4xx is JSON with a message and no
traceback. Stateful admin calls (halt, resume, promote) are fuzzed with a read key, so they are refused
(403) after their input is parsed, and the shared run is not changed."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import auth

STATEFUL = ("/api/v1/admin/halt", "/api/v1/admin/resume", "/api/v1/admin/models/{name}/promote")


def make_check(op, headers: dict[str, str], failures: list[str], calls: list[int]):
    @settings(max_examples=5, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def check(case) -> None:
        calls.append(1)
        response = case.call(headers=headers, timeout=120)
        where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
        if response.status_code >= 500:
            failures.append(where)
        elif 400 <= response.status_code < 500 and response.status_code != 429:
            body = response.json()
            if not body.get("message") or "Traceback" in response.text:
                failures.append(where)

    return check


def test_no_generated_request_fails_the_server(api, keys: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    failures: list[str] = []
    calls: list[int] = []
    n_ops = 0
    for result in schema.get_all_operations():
        op = result.ok()
        token = keys["read"] if op.path in STATEFUL else keys["admin"]
        n_ops += 1
        make_check(op, auth(token), failures, calls)()
    assert n_ops >= 20 and len(calls) >= 3 * n_ops
    assert not failures, failures[:10]
