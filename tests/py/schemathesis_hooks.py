"""Schemathesis hooks of tests/api/openapi.rs, loaded through SCHEMATHESIS_HOOKS.

- `message/rfc822`, the raw message body of POST /api/v1/email/inbound, has no serializer in
  schemathesis: the generated value is sent as UTF-8 text (bytes as they are).
- `?wait=N` long-polls (GET /tasks/poll, GET /api/v1/tasks/{id}) for up to 60 s: whole numbers
  above 1 are sent as 1, so no test case holds the run for a minute. Other values (negative
  test data: letters, fractions) are sent as generated.
"""

import schemathesis


@schemathesis.serializer("message/rfc822")
def rfc822(ctx, value):
    if isinstance(value, bytes):
        return {"data": value}
    if not isinstance(value, str):
        value = str(value)
    return {"data": value.encode("utf-8", "surrogatepass")}


def _short_wait(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value > 1:
        return 1
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 1:
        return "1"
    return value


@schemathesis.hook
def map_case(ctx, case):
    if isinstance(case.query, dict) and "wait" in case.query:
        case.query["wait"] = _short_wait(case.query["wait"])
    return case
