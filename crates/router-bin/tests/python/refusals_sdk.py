"""The refusals of named clients through the official openai and anthropic SDKs: each must
raise the SDK's own exception class for its status, with the router's error type and headers.

Keys (from the test's config): key-good (rpm 1), key-off (disabled), key-narrow (group
"other" only), key-broke (a budget smaller than any request).
"""

import os

import anthropic
import openai

base = os.environ["BASE_URL"]  # http://host:port
MESSAGES = [{"role": "user", "content": "hello"}]


def oai(key):
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)


def ant(key):
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)


def raises(cls, call):
    try:
        call()
    except cls as e:
        return e
    raise AssertionError(f"expected {cls.__name__}")


# OpenAI SDK.
ok = oai("key-good").chat.completions.with_raw_response.create(model="g", messages=MESSAGES, max_tokens=8)
assert ok.headers["x-ratelimit-limit-requests"] == "1", ok.headers
e = raises(openai.RateLimitError, lambda: oai("key-good").chat.completions.create(model="g", messages=MESSAGES, max_tokens=8))
assert e.status_code == 429 and e.code == "rate_limit_exceeded", e.body
assert int(e.response.headers["retry-after"]) >= 1 and e.response.headers["x-ratelimit-remaining-requests"] == "0"
e = raises(openai.AuthenticationError, lambda: oai("key-nobody").chat.completions.create(model="g", messages=MESSAGES))
assert e.status_code == 401, e
e = raises(openai.AuthenticationError, lambda: oai("key-off").chat.completions.create(model="g", messages=MESSAGES))
assert "disabled" in e.message and "key-off" not in e.message, e.message
e = raises(openai.PermissionDeniedError, lambda: oai("key-narrow").chat.completions.create(model="g", messages=MESSAGES))
assert e.status_code == 403 and e.code == "permission_denied" and "'narrow'" in e.message, e.body
e = raises(openai.RateLimitError, lambda: oai("key-broke").chat.completions.create(model="g", messages=MESSAGES, max_tokens=8))
assert e.code == "insufficient_quota" and e.type == "insufficient_quota" and "budget" in e.message, e.body
assert [m.id for m in oai("key-narrow").models.list()] == ["other"]

# Anthropic SDK, on /v1/messages.
e = raises(anthropic.AuthenticationError, lambda: ant("key-nobody").messages.create(model="g", max_tokens=8, messages=MESSAGES))
assert e.status_code == 401 and e.body["error"]["type"] == "authentication_error", e.body
e = raises(anthropic.PermissionDeniedError, lambda: ant("key-narrow").messages.create(model="g", max_tokens=8, messages=MESSAGES))
assert e.body["error"]["type"] == "permission_error" and "'g'" in e.message, e.body
e = raises(anthropic.RateLimitError, lambda: ant("key-broke").messages.create(model="g", max_tokens=8, messages=MESSAGES))
assert e.body["error"]["type"] == "rate_limit_error" and "budget" in e.message, e.body
e = raises(anthropic.RateLimitError, lambda: ant("key-good").messages.create(model="g", max_tokens=8, messages=MESSAGES))
assert "requests per minute" in e.message, e.message

print("refusals: all checks passed")
