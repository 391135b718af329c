"""End-to-end checks of /v1/responses with the official openai SDK: passed through to a provider
that speaks Responses, translated for a chat-completions one, for Anthropic and for the
in-process mock; complete and streamed, with a tool round trip and the errors."""

import os

import openai

client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)

TOOLS = [
    {
        "type": "function",
        "name": "exec_command",
        "description": "Runs a shell command.",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
        "strict": False,
    }
]

for group in ["native", "chat", "claude"]:
    # Complete.
    r = client.responses.create(model=group, instructions="be brief", input="hello sdk")
    assert r.status == "completed", (group, r)
    assert r.output_text == "mock says: hello sdk", (group, r.output_text)
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens > 0, (group, r.usage)

    # Streamed, through the SDK's event accumulator: every delta lands on the item it names.
    with client.responses.stream(model=group, input=[{"role": "user", "content": "streamed words"}]) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "mock says: streamed words", (group, deltas)
    assert final.output_text == "mock says: streamed words", (group, final)
    assert final.usage is not None and final.usage.total_tokens > 0, (group, final.usage)

    # A tool round trip: the model calls, the client runs it and sends the output back.
    first = client.responses.create(model=group, tools=TOOLS, input="use a tool to run `echo 7`")
    calls = [i for i in first.output if i.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "exec_command", (group, first.output)
    assert calls[0].arguments == '{"cmd":"echo 7"}', (group, calls[0])
    second = client.responses.create(
        model=group,
        tools=TOOLS,
        input=[
            {"role": "user", "content": "use a tool to run `echo 7`"},
            {"type": "function_call", "call_id": calls[0].call_id, "name": calls[0].name, "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "7"},
        ],
    )
    assert second.output_text == "mock says: tool said: 7", (group, second.output_text)

    # The same, streamed: the call arrives whole in the final response.
    with client.responses.stream(model=group, tools=TOOLS, input="use a tool to run `ls`") as stream:
        args = "".join(e.delta for e in stream if e.type == "response.function_call_arguments.delta")
        final = stream.get_final_response()
    call = [i for i in final.output if i.type == "function_call"][0]
    assert args == call.arguments == '{"cmd":"ls"}', (group, args, call)

# The in-process mock of the example config answers through chat too.
r = client.responses.create(model="demo", input="hi demo")
assert r.output_text == "hi demo", r.output_text

# Errors, in OpenAI's shape, naming the field.
try:
    client.responses.create(model="claude", input="x", previous_response_id="resp_123")
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.body["param"] == "previous_response_id", e.body
    assert "(provider 'claude')" in e.body["message"], e.body
try:
    client.responses.create(model="chat", input=[{"type": "function_call_output", "call_id": "call_x", "output": "1"}])
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert "call_x" in e.body["message"], e.body
try:
    client.responses.create(model="chat", input=5)
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert e.body["param"] == "input", e.body
try:
    client.responses.create(model="missing", input="x")
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert "missing" in str(e), e

print("responses sdk: all checks passed")
