"""Drives Aiex's OpenAI-compatible routes with the official `openai` package, as a chat UI would.

    python openai_chat.py BASE_URL API_KEY

Lists the models, asks for a completion (not streamed, then streamed), asks an unknown model,
and closes a stream after its first chunk. Fails (exit 1, with the reason) at the first surprise;
prints one JSON object with the session ids it started on success.
"""

import json
import sys

import openai

QUESTION = "How are TOML table headers parsed?"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    base, key = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)

    models = client.models.list()
    ids = [model.id for model in models.data]
    check(ids == ["aiex-research", "aiex-search"], f"models: {ids}")

    completion = client.chat.completions.create(
        model="aiex-search",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": QUESTION},
        ],
        temperature=0.2,
        max_tokens=500,
    )
    check(completion.object == "chat.completion", f"object: {completion.object}")
    message = completion.choices[0].message
    check(message.role == "assistant", f"role: {message.role}")
    check("## References" in (message.content or ""), f"content: {message.content!r}")
    check("src/table.rs" in message.content, f"content cites the code: {message.content!r}")
    reasoning = getattr(message, "reasoning_content", None) or ""
    check("Plan:" in reasoning, f"reasoning: {reasoning!r}")
    check(completion.choices[0].finish_reason == "stop", "finish_reason")
    check(completion.usage is not None and completion.usage.total_tokens == 0, "usage")
    plain_session = completion.system_fingerprint

    stream = client.chat.completions.create(
        model="aiex-research",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    content, thinking, usage, finish, stream_session = "", "", None, None, None
    for chunk in stream:
        check(chunk.object == "chat.completion.chunk", f"chunk: {chunk}")
        stream_session = chunk.system_fingerprint
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            content += choice.delta.content or ""
            thinking += getattr(choice.delta, "reasoning_content", None) or ""
            finish = choice.finish_reason or finish
    check("## References" in content, f"streamed content: {content!r}")
    check("Searched" in thinking, f"streamed reasoning: {thinking!r}")
    check(finish == "stop", f"finish_reason: {finish}")
    check(usage is not None and usage.total_tokens == 0, f"usage: {usage}")

    # The raw stream ends with `data: [DONE]` and names the session in a header.
    with client.chat.completions.with_streaming_response.create(
        model="aiex-search",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
    ) as response:
        raw_session = response.headers.get("x-session-id")
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    check(lines and lines[-1].strip() == "data: [DONE]", f"last line: {lines[-1:]}")
    check(raw_session, "x-session-id header")

    try:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTION}]
        )
        raise AssertionError("an unknown model was accepted")
    except openai.NotFoundError as error:
        check(error.status_code == 404, f"status: {error.status_code}")
        check(error.code == "model_not_found", f"code: {error.code}")

    try:
        client.chat.completions.create(model="aiex-search", messages=[])
        raise AssertionError("an empty conversation was accepted")
    except openai.BadRequestError as error:
        check(error.status_code == 400, f"status: {error.status_code}")

    # A client that closes the stream after its first chunk.
    early = client.chat.completions.create(
        model="aiex-research",
        messages=[{"role": "user", "content": "What does the job queue push?"}],
        stream=True,
    )
    first = next(iter(early))
    early_session = first.system_fingerprint
    early.close()

    print(
        json.dumps(
            {
                "sessions": [plain_session, stream_session, raw_session],
                "early": early_session,
            }
        )
    )


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
