"""End-to-end checks with the official anthropic SDK against llm-router's /v1/messages.

Group "claude-via-openai" is served by an OpenAI-format upstream (translated both ways);
group "gpt-via-claude" is used with the openai SDK against an Anthropic-format upstream.
"""

import json
import os

import anthropic
import openai

base = os.environ["BASE_URL"]  # http://host:port
key = os.environ["API_KEY"]

client = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)

# Text, non-stream.
m = client.messages.create(
    model="claude-via-openai",
    max_tokens=64,
    system="be terse",
    messages=[{"role": "user", "content": "hello anthropic sdk"}],
)
assert m.type == "message" and m.role == "assistant", m
assert m.content[0].type == "text" and m.content[0].text == "mock says: hello anthropic sdk", m
assert m.stop_reason == "end_turn", m
assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0, m.usage

# Text, streamed through the SDK's own event parser.
with client.messages.stream(
    model="claude-via-openai", max_tokens=64, messages=[{"role": "user", "content": "one two"}]
) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert text == "mock says: one two", text
assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0, final

# Tools, non-stream and streamed.
tools = [{"name": "search", "description": "search things", "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}]
m = client.messages.create(
    model="claude-via-openai", max_tokens=64, tools=tools,
    messages=[{"role": "user", "content": "please use a tool"}],
)
assert m.stop_reason == "tool_use", m
tool_use = [b for b in m.content if b.type == "tool_use"][0]
assert tool_use.name == "search" and tool_use.input == {"query": "please use a tool"}, tool_use
with client.messages.stream(
    model="claude-via-openai", max_tokens=64, tools=tools,
    messages=[{"role": "user", "content": "please use a tool"}],
) as stream:
    final = stream.get_final_message()
tool_use = [b for b in final.content if b.type == "tool_use"][0]
assert tool_use.input == {"query": "please use a tool"}, final

# A tool result goes back in the conversation.
m = client.messages.create(
    model="claude-via-openai", max_tokens=64, tools=tools,
    messages=[
        {"role": "user", "content": "please use a tool"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "search", "input": {"query": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "found it"}]},
    ],
)
assert m.type == "message", m  # the Rust side checks what reached the upstream

# An image (base64 block) goes upstream as an image_url data URL; the Rust side checks it.
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
m = client.messages.create(
    model="claude-via-openai", max_tokens=16,
    messages=[{"role": "user", "content": [
        {"type": "text", "text": "describe the image"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
    ]}],
)
assert m.content[0].text == "mock says: describe the image", m

# Errors in Anthropic's shape, mapped to the SDK's exceptions.
try:
    client.messages.create(model="missing", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    raise AssertionError("expected NotFoundError")
except anthropic.NotFoundError as e:
    assert e.status_code == 404 and e.body["error"]["type"] == "not_found_error", e.body
try:
    anthropic.Anthropic(base_url=base, api_key="wrong", max_retries=0).messages.create(
        model="claude-via-openai", max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )
    raise AssertionError("expected AuthenticationError")
except anthropic.AuthenticationError as e:
    assert e.status_code == 401

# The openai SDK against an Anthropic-format upstream.
oa = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
r = oa.chat.completions.create(model="gpt-via-claude", messages=[{"role": "user", "content": "hi claude"}], temperature=0)
assert r.choices[0].message.content == "mock says: hi claude", r
assert r.usage.total_tokens > 0, r.usage
text = "".join(
    c.choices[0].delta.content or ""
    for c in oa.chat.completions.create(model="gpt-via-claude", messages=[{"role": "user", "content": "streamed words"}], stream=True)
    if c.choices
)
assert text == "mock says: streamed words", text
oa_tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
r = oa.chat.completions.create(model="gpt-via-claude", messages=[{"role": "user", "content": "please use a tool"}], tools=oa_tools)
call = r.choices[0].message.tool_calls[0]
assert r.choices[0].finish_reason == "tool_calls", r
assert call.function.name == "search" and json.loads(call.function.arguments) == {"query": "please use a tool"}, call
args = ""
for c in oa.chat.completions.create(model="gpt-via-claude", messages=[{"role": "user", "content": "please use a tool"}], tools=oa_tools, stream=True):
    for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
        args += tc.function.arguments or ""
assert json.loads(args) == {"query": "please use a tool"}, args

# The openai SDK sends an image URL part; the Anthropic upstream receives an image block.
r = oa.chat.completions.create(model="gpt-via-claude", messages=[{"role": "user", "content": [
    {"type": "text", "text": "what is in it"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PIXEL}},
]}])
assert r.choices[0].message.content == "mock says: what is in it", r

print("anthropic sdk: all checks passed")
