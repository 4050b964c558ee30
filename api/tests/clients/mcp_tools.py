"""Drives Aiex's MCP server with the official MCP Python SDK (`mcp` on PyPI), over stdio and over
streamable HTTP, the way an IDE agent would: initialize, list the tools, call every tool, with bad
arguments too. Run by api/tests/integration/server/mcp.rs:

    python mcp_tools.py CONFIG_JSON

CONFIG_JSON: {"binary", "data_dir", "env", "url", "key", "version", "relay_data_dir"?}. With
`relay_data_dir` (a data directory that a running `serve` owns), the stdio run is repeated there,
where the `mcp` command relays to that server. Over HTTP both protocol
generations run: the `initialize` handshake with a session, and 2026-07-28's `server/discover`. Every check is an assertion
(a failure exits non-zero with the reason); on success the summary is printed as JSON.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

TOOLS = {"search", "read", "research", "list_collections", "index_status"}
QUESTION = "How are TOML table headers parsed?"


async def call(session, name, arguments=None, **options):
    return await session.call_tool(name, arguments or {}, **options)


async def refused(session, name, arguments, code):
    """Calls a tool that must answer a tool error whose code is `code`."""
    result = await call(session, name, arguments)
    assert result.is_error, f"{name} {arguments}: not an error: {result}"
    text = result.content[0].text
    assert text.strip(), f"{name} {arguments}: empty message"
    got = (result.structured_content or {}).get("error", {}).get("code")
    assert got == code, f"{name} {arguments}: code {got!r}, wanted {code!r}: {text}"
    return text


async def ok(session, name, arguments=None, **options):
    result = await call(session, name, arguments, **options)
    assert not result.is_error, f"{name} {arguments}: {result.content}"
    return result


async def check_tools(session):
    listed = await session.list_tools()
    names = {tool.name for tool in listed.tools}
    assert names == TOOLS, names
    schemas = {tool.name: tool.input_schema for tool in listed.tools}
    search = schemas["search"]
    assert search["required"] == ["query"], search
    assert {"query", "sources", "collections", "mode", "language", "path", "limit"} <= set(
        search["properties"]
    ), search
    assert "exact" in json.dumps(search) and "regex" in json.dumps(search), search
    assert set(schemas["read"]["required"]) == {"collection", "path"}, schemas["read"]
    assert schemas["research"]["required"] == ["question"], schemas["research"]
    for tool in listed.tools:
        assert tool.description, tool.name
    return sorted(names)


async def check_collections(session):
    listed = (await ok(session, "list_collections")).structured_content["collections"]
    demo = next(c for c in listed if c["name"] == "demo")
    assert demo["kind"] == "code" and demo["files"] == 2, demo
    assert demo["languages"] == {"python": 1, "rust": 1}, demo
    status = (await ok(session, "index_status", {"collection": "demo"})).structured_content
    assert [c["name"] for c in status["collections"]] == ["demo"], status
    assert status["collections"][0]["chunks"] >= 2, status
    assert "root" not in status["collections"][0], status
    everything = (await ok(session, "index_status")).structured_content["collections"]
    assert any(c["name"] == "demo" for c in everything), everything
    await refused(session, "index_status", {"collection": "nope"}, "collection_not_found")
    await refused(session, "index_status", {"collection": "../x"}, "invalid_collection_name")


async def check_search(session):
    hits = (await ok(session, "search", {"query": "parse_toml_table"})).structured_content["hits"]
    assert hits and hits[0]["path"] == "src/table.rs", hits
    python = (
        await ok(session, "search", {"query": "queue jobs", "language": "python", "mode": "keyword"})
    ).structured_content["hits"]
    assert python and all(hit["language"] == "python" for hit in python), python
    under_lib = (
        await ok(session, "search", {"query": "queue table", "path": "lib/**", "limit": 5})
    ).structured_content["hits"]
    assert under_lib and all(hit["path"].startswith("lib/") for hit in under_lib), under_lib
    exact = (
        await ok(session, "search", {"query": "strip_prefix('[')", "mode": "exact"})
    ).structured_content
    assert [f["path"] for f in exact["files"]] == ["src/table.rs"], exact
    assert exact["files"][0]["lines"][0]["line_number"] == 3, exact
    regex = (
        await ok(session, "search", {"query": r"def\s+\w+\(self", "mode": "regex", "sources": ["code"]})
    ).structured_content
    assert [f["path"] for f in regex["files"]] == ["lib/queue.py"], regex

    await refused(session, "search", {"query": "   "}, "empty_query")
    await refused(session, "search", {"query": "x", "collections": ["nope"]}, "collection_not_found")
    await refused(session, "search", {"query": "x", "language": "klingon"}, "unknown_language")
    await refused(session, "search", {"query": "x", "sources": ["gopher"]}, "unknown_source")
    await refused(session, "search", {"query": "x", "limit": 0}, "invalid_limit")
    await refused(session, "search", {"query": "x", "path": "src/["}, "invalid_path")
    await refused(session, "search", {"query": "(", "mode": "regex"}, "invalid_pattern")
    await refused(session, "search", {"query": "x", "mode": "exact", "path": "src/**"}, "invalid_request")
    # Arguments that do not fit the schema: tool errors that say what is wrong.
    wrong = await refused(session, "search", {"query": "x", "limit": "ten"}, "invalid_arguments")
    assert "limit" in wrong or "invalid type" in wrong, wrong
    await refused(session, "search", {"query": "x", "mode": "fuzzy"}, "invalid_arguments")
    await refused(session, "search", {"query": "x", "colour": "red"}, "invalid_arguments")
    await refused(session, "search", {}, "invalid_arguments")
    await refused(session, "search", {"query": 42}, "invalid_arguments")


async def check_read(session):
    read = await ok(
        session, "read", {"collection": "demo", "path": "src/table.rs", "start_line": 2, "end_line": 2}
    )
    lines = read.structured_content
    assert lines["text"].startswith("pub fn parse_toml_table"), lines
    assert (lines["start_line"], lines["end_line"], lines["total_lines"]) == (2, 2, 4), lines
    assert "pub fn parse_toml_table" in read.content[0].text, read.content
    whole = (await ok(session, "read", {"collection": "demo", "path": "./lib/queue.py"})).structured_content
    assert whole["path"] == "lib/queue.py" and whole["end_line"] == whole["total_lines"] == 5, whole
    assert not whole["truncated"], whole

    for path in ["../../../../etc/passwd", "/etc/passwd", "src/../../outside.txt"]:
        await refused(session, "read", {"collection": "demo", "path": path}, "invalid_path")
    await refused(session, "read", {"collection": "demo", "path": "src/missing.rs"}, "file_not_indexed")
    await refused(session, "read", {"collection": "nope", "path": "src/table.rs"}, "collection_not_found")
    await refused(
        session, "read", {"collection": "demo", "path": "src/table.rs", "start_line": 0}, "invalid_range"
    )
    await refused(
        session, "read", {"collection": "demo", "path": "src/table.rs", "start_line": 99}, "invalid_range"
    )
    await refused(
        session,
        "read",
        {"collection": "demo", "path": "src/table.rs", "start_line": 3, "end_line": 2},
        "invalid_range",
    )
    await refused(session, "read", {"collection": "demo", "path": ["src/table.rs"]}, "invalid_arguments")


async def check_research(session):
    progress = []

    async def on_progress(value, total, message):
        progress.append((value, message))

    result = await ok(
        session, "research", {"question": QUESTION, "depth": 1}, progress_callback=on_progress
    )
    report = result.content[0].text
    assert "table" in report.lower(), report
    assert "src/table.rs" in report, report
    session_id = result.structured_content["session_id"]
    references = result.structured_content["report"]["references"]
    assert any(ref.get("path") == "src/table.rs" for ref in references), references
    assert progress, "no progress notifications"
    values = [value for value, _ in progress]
    assert values == sorted(values) and len(set(values)) == len(values), values
    messages = [message or "" for _, message in progress]
    assert any(message.startswith("Researching:") for message in messages), messages
    assert any(message.startswith("Searched") for message in messages), messages

    await refused(session, "research", {"question": "  "}, "empty_question")
    await refused(session, "research", {"question": QUESTION, "depth": 9}, "invalid_depth")
    await refused(
        session, "research", {"question": QUESTION, "collections": ["nope"]}, "collection_not_found"
    )
    await refused(session, "research", {"question": QUESTION, "depth": "deep"}, "invalid_arguments")
    return {"session": session_id, "progress": len(progress)}


async def exercise(session, version, modern=False):
    if modern:
        # The 2026-07-28 protocol: no handshake, every request stands alone (stateless over HTTP).
        discovered = await session.discover()
        assert "2026-07-28" in discovered.supported_versions, discovered
        assert session.protocol_version == "2026-07-28", session.protocol_version
        capabilities = discovered.capabilities
    else:
        init = await session.initialize()
        capabilities = init.capabilities
    info = session.server_info
    assert info.name == "aiex", info
    assert info.title == "Aiex", info
    assert info.version == version, info
    assert capabilities.tools is not None, capabilities
    tools = await check_tools(session)
    await check_collections(session)
    await check_search(session)
    await check_read(session)
    research = await check_research(session)
    # An unknown tool is a protocol error, as the specification says.
    try:
        await call(session, "no_such_tool", {})
    except MCPError as err:
        assert "not found" in str(err), err
    else:
        raise AssertionError("an unknown tool was called")
    return {"tools": tools, **research}


async def over_stdio(config, data_dir):
    server = StdioServerParameters(
        command=config["binary"],
        args=["--data-dir", data_dir, "-v", "mcp"],
        env=config["env"],
    )
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            return await exercise(session, config["version"])


async def over_http(config):
    url = config["url"]
    async with httpx2.AsyncClient() as plain:
        # The transport is behind the API's keys: no key, no MCP.
        refused_answer = await plain.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"accept": "application/json, text/event-stream"},
        )
        assert refused_answer.status_code == 401, refused_answer.text
        # A browser page from another origin is refused too.
        cross = await plain.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={
                "accept": "application/json, text/event-stream",
                "authorization": f"Bearer {config['key']}",
                "origin": "https://evil.example",
            },
        )
        assert cross.status_code == 403, (cross.status_code, cross.text)
    summary = {}
    for modern in (False, True):
        client = httpx2.AsyncClient(
            headers={"authorization": f"Bearer {config['key']}"},
            timeout=httpx2.Timeout(30.0, read=300.0),
        )
        async with client:
            async with streamable_http_client(url, http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    summary["modern" if modern else "legacy"] = await exercise(
                        session, config["version"], modern
                    )
    return summary


async def main():
    config = json.loads(sys.argv[1])
    summary = {
        "stdio": await over_stdio(config, config["data_dir"]),
        "http": await over_http(config),
    }
    if config.get("relay_data_dir"):
        summary["relay"] = await over_stdio(config, config["relay_data_dir"])
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
