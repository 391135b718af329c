"""End-to-end checks with the official openai SDK against a running llm-router."""

import os

import openai

client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)

# Non-stream, in-process mock provider.
r = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hello sdk"}])
assert r.choices[0].message.content == "hello sdk", r
assert r.choices[0].finish_reason == "stop", r
assert r.usage.total_tokens == 4 and r.usage.prompt_tokens == 2, r.usage

# Stream without usage: text arrives, no usage chunk.
chunks = list(
    client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == "one two three", text
assert all(c.usage is None for c in chunks), chunks[-1]

# Stream with usage: the last chunk carries it.
chunks = list(
    client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "a b"}],
        stream=True,
        stream_options={"include_usage": True},
    )
)
assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4, chunks[-1]

# Through the HTTP mock upstream: non-stream and stream.
r = client.chat.completions.create(
    model="upstream", messages=[{"role": "user", "content": "via http"}], temperature=0
)
assert r.choices[0].message.content == "mock says: via http", r
text = "".join(
    c.choices[0].delta.content or ""
    for c in client.chat.completions.create(
        model="upstream", messages=[{"role": "user", "content": "streamed"}], stream=True
    )
    if c.choices
)
assert text == "mock says: streamed", text

# Models and errors.
assert sorted(m.id for m in client.models.list()) == ["demo", "upstream"]
try:
    client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert e.status_code == 404 and "missing" in str(e), e
try:
    openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="wrong", max_retries=0).models.list()
    raise AssertionError("expected AuthenticationError")
except openai.AuthenticationError as e:
    assert e.status_code == 401

print("openai sdk: all checks passed")
