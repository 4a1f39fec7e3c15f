"""The README's "call it with the OpenAI Python client" example, run as a test.

Usage: openai_client.py BASE_URL TOKEN   (BASE_URL like http://127.0.0.1:8080/v1)
Exits non-zero with a message if the gateway does not behave like an OpenAI endpoint.
"""
import sys

from openai import OpenAI


def main() -> int:
    base_url, token = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key=token)

    models = [m.id for m in client.models.list()]
    assert models == ["dev"], models

    reply = client.chat.completions.create(
        model="dev",
        messages=[{"role": "user", "content": "Write to jane.doe@example.com please"}],
    )
    text = reply.choices[0].message.content
    assert "{EMAIL}" in text and "jane.doe" not in text, text
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens

    parts = []
    usage = None
    stream = client.chat.completions.create(
        model="dev",
        messages=[{"role": "user", "content": "Stream to 555-867-5309 now"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    streamed = "".join(parts)
    assert "{PHONE}" in streamed and "867" not in streamed, streamed
    assert usage is not None and usage.completion_tokens > 0

    print("openai python client: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
