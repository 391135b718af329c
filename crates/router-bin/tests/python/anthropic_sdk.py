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

# Thinking asked of an OpenAI-format upstream: its reasoning_content comes back as a thinking
# block, complete and streamed.
thinking = {"type": "enabled", "budget_tokens": 2048}
m = client.messages.create(model="claude-via-openai", max_tokens=4096, thinking=thinking,
                           messages=[{"role": "user", "content": "think first"}])
assert [b.type for b in m.content] == ["thinking", "text"], m
assert m.content[0].thinking == "reasoning at low effort", m
assert m.content[1].text == "mock says: think first", m
with client.messages.stream(model="claude-via-openai", max_tokens=4096, thinking=thinking,
                            messages=[{"role": "user", "content": "think aloud"}]) as s:
    final = s.get_final_message()
assert [b.type for b in final.content] == ["thinking", "text"], final
assert final.content[0].thinking == "reasoning at low effort", final
assert final.content[1].text == "mock says: think aloud", final

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

# The legacy prompt API reaches the Anthropic upstream through chat, complete and streamed.
r = oa.completions.create(model="gpt-via-claude", prompt="complete me", max_tokens=20)
assert r.object == "text_completion" and r.choices[0].text == "mock says: complete me", r
assert r.choices[0].finish_reason == "stop" and r.usage.total_tokens > 0, r
text = "".join(
    c.choices[0].text
    for c in oa.completions.create(model="gpt-via-claude", prompt="stream me", stream=True)
    if c.choices
)
assert text == "mock says: stream me", text

# Embeddings on Gemini: the SDK asks for base64 by default and decodes the floats itself.
r = oa.embeddings.create(model="embed-via-gemini", input=["abcdefgh", "xyz"])
assert [d.embedding for d in r.data] == [[8.0, 4.0, -1.0], [3.0, 1.5, -1.0]], r
assert r.usage.prompt_tokens == 3 and r.usage.total_tokens == 3, r.usage
r = oa.embeddings.create(model="embed-via-gemini", input="abcd", encoding_format="float", dimensions=4)
assert r.data[0].embedding == [4.0, 2.0, -1.0, 0.25], r

print("anthropic sdk: all checks passed")
