#!/usr/bin/env python3
"""A stdio MCP upstream for bridge's attack tests (Python 3, stdlib only).

It answers initialize, ping, tools/list, tools/call, prompts/list|get,
resources/list|read|subscribe|unsubscribe|templates/list,
completion/complete, tasks/get|result|list and any other method, and every
answer echoes EXACTLY what this upstream parsed: the method, the params'
name/uri/arguments as Python's json module read them (last duplicate wins,
case-sensitive), and the id it saw. A test compares that with what the
gateway decided on and audited.

Environment:
  ATTACK_UPSTREAM_LOG      every received line is appended here, byte for
                           byte, before it is parsed: proof of what arrived.
  ATTACK_UPSTREAM_CONTROL  optional JSON file, read on every request, that
                           crafts answers:
                             "tools_list_raw": raw JSON text sent as the
                               tools/list result (so duplicate or
                               case-variant keys can be sent as is);
                             "tools": a list used as the tools/list tools.

Tool arguments that change the answer:
  hold_until  a file path: the answer waits until the file exists (at most
              60 s), so a test can keep a request pending without timing.
  reply_id    raw JSON text used as the response's id instead of the
              request's (a response with a chosen id).
  reply       a string added to the tool's text (what a real tool returns).

The tool "secret" returns the canary SECRET_CANARY and "hr_lookup" an
employee id, so masking and policy leaks are visible in the output.
A tools/call with params.task runs as a task (MCP 2025-11-25): the answer
is a CreateTaskResult and the tool's result comes from tasks/result.
"""

import json
import os
import sys
import threading
import time

SECRET_CANARY = "canary-7f3a-SECRET-do-not-leak"
EMPLOYEE_ID = "EMP-424242"

write_lock = threading.Lock()
log_lock = threading.Lock()
tasks = {}
tasks_lock = threading.Lock()

DEFAULT_TOOLS = [
    {"name": "echo", "description": "Echoes what the upstream parsed.",
     "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}}},
    {"name": "secret", "description": "Returns a secret (policy denies it).",
     "inputSchema": {"type": "object"}},
    {"name": "transfer", "description": "Moves money.",
     "inputSchema": {"type": "object", "properties": {"amount": {"type": "number"}, "to": {"type": "string"}}}},
    {"name": "delete_records", "description": "Deletes records.",
     "inputSchema": {"type": "object", "properties": {"table": {"type": "string"}, "where": {"type": "string"}}}},
    {"name": "hr_lookup", "description": "Looks up an employee.",
     "inputSchema": {"type": "object", "properties": {"who": {"type": "string"}}}},
    {"name": "report", "description": "A long report, runnable as a task.",
     "inputSchema": {"type": "object"}, "execution": {"taskSupport": "optional"}},
]

PROMPTS = [
    {"name": "greeting", "description": "A greeting.", "arguments": [{"name": "who"}]},
    {"name": "secret_prompt", "description": "A prompt the policy denies.", "arguments": [{"name": "topic"}]},
]

RESOURCES = [
    {"uri": "file:///public/readme.txt", "name": "readme", "mimeType": "text/plain"},
    {"uri": "file:///secret/keys.txt", "name": "keys", "mimeType": "text/plain"},
]

TEMPLATES = [
    {"uriTemplate": "file:///public/{name}", "name": "public files"},
    {"uriTemplate": "file:///secret/{name}", "name": "secret files"},
]


def control():
    path = os.environ.get("ATTACK_UPSTREAM_CONTROL")
    if not path:
        return {}
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return {}


def log_line(raw):
    path = os.environ.get("ATTACK_UPSTREAM_LOG")
    if not path:
        return
    with log_lock:
        with open(path, "ab") as f:
            f.write(raw.rstrip(b"\r\n") + b"\n")


def send_raw(text):
    with write_lock:
        sys.stdout.buffer.write(text.encode("utf-8") + b"\n")
        sys.stdout.buffer.flush()


def dumps(v):
    return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def response(req_id, result=None, error=None, raw_id=None):
    id_text = raw_id if raw_id is not None else dumps(req_id)
    body = dumps(error) if error is not None else (result if isinstance(result, str) else dumps(result))
    member = "error" if error is not None else "result"
    return '{"jsonrpc":"2.0","id":%s,"%s":%s}' % (id_text, member, body)


def parsed_view(msg):
    """What this upstream read: the method, id, name, uri and arguments."""
    params = msg.get("params")
    view = {"method": msg.get("method"), "id": msg.get("id")}
    if isinstance(params, dict):
        for k in ("name", "uri", "arguments", "ref", "argument", "taskId"):
            if k in params:
                view[k] = params[k]
    return view


def text_result(view, extra=""):
    text = "UPSTREAM-PARSED " + dumps(view) + extra
    return {"content": [{"type": "text", "text": text}], "structuredContent": {"parsed": view}}


def wait_for(path):
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def call_tool(msg, view):
    params = msg.get("params") or {}
    args = params.get("arguments") if isinstance(params, dict) else None
    args = args if isinstance(args, dict) else {}
    extra = ""
    name = params.get("name") if isinstance(params, dict) else None
    if name == "secret":
        extra = " " + SECRET_CANARY
    elif name == "hr_lookup":
        extra = " employee " + EMPLOYEE_ID
    if isinstance(args.get("reply"), str):
        extra += " " + args["reply"]
    return text_result(view, extra), args


def handle_tools_call(msg, view):
    result, args = call_tool(msg, view)
    params = msg.get("params") or {}
    if isinstance(args.get("hold_until"), str):
        wait_for(args["hold_until"])
    raw_id = args.get("reply_id") if isinstance(args.get("reply_id"), str) else None
    if isinstance(params.get("task"), dict):
        with tasks_lock:
            task_id = "task-%d" % (len(tasks) + 1)
            tasks[task_id] = result
        task = {"taskId": task_id, "status": "completed", "createdAt": "2025-11-25T00:00:00Z",
                "lastUpdatedAt": "2025-11-25T00:00:00Z", "ttl": 60000, "pollInterval": 100}
        return response(msg.get("id"), {"task": task}, raw_id=raw_id)
    return response(msg.get("id"), result, raw_id=raw_id)


def handle(msg):
    """Returns the response text for one request, or None."""
    if not isinstance(msg, dict):
        return response(None, error={"code": -32600, "message": "not an object"})
    method = msg.get("method")
    if "id" not in msg:
        return None  # a notification, or a response to a request we never send
    view = parsed_view(msg)
    params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
    req_id = msg.get("id")
    if method == "initialize":
        return response(req_id, {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {"listChanged": True}, "prompts": {}, "resources": {"subscribe": True},
                             "completions": {}, "tasks": {"list": {}, "requests": {"tools": {"call": {}}}}},
            "serverInfo": {"name": "bridge-attack-upstream", "version": "1.0.0"},
        })
    if method == "ping":
        return response(req_id, {})
    if method == "tools/list":
        ctl = control()
        if isinstance(ctl.get("tools_list_raw"), str):
            return response(req_id, ctl["tools_list_raw"])
        return response(req_id, {"tools": ctl.get("tools", DEFAULT_TOOLS)})
    if method == "tools/call":
        return handle_tools_call(msg, view)
    if method == "prompts/list":
        return response(req_id, {"prompts": PROMPTS})
    if method == "prompts/get":
        text = "UPSTREAM-PARSED " + dumps(view)
        return response(req_id, {"messages": [{"role": "user", "content": {"type": "text", "text": text}}]})
    if method == "resources/list":
        return response(req_id, {"resources": RESOURCES})
    if method == "resources/templates/list":
        return response(req_id, {"resourceTemplates": TEMPLATES})
    if method == "resources/read":
        uri = params.get("uri")
        text = "UPSTREAM-PARSED " + dumps(view)
        if isinstance(uri, str) and uri.startswith("file:///secret/"):
            text += " " + SECRET_CANARY
        return response(req_id, {"contents": [{"uri": uri if isinstance(uri, str) else "", "mimeType": "text/plain", "text": text}]})
    if method in ("resources/subscribe", "resources/unsubscribe"):
        return response(req_id, {})
    if method == "completion/complete":
        return response(req_id, {"completion": {"values": ["UPSTREAM-PARSED " + dumps(view), SECRET_CANARY], "total": 2, "hasMore": False}})
    if method == "tasks/result":
        with tasks_lock:
            result = tasks.get(params.get("taskId"))
        if result is None:
            return response(req_id, error={"code": -32602, "message": "no such task"})
        return response(req_id, result)
    if method == "tasks/get":
        return response(req_id, {"taskId": params.get("taskId"), "status": "completed", "ttl": 60000,
                                 "createdAt": "2025-11-25T00:00:00Z", "lastUpdatedAt": "2025-11-25T00:00:00Z"})
    if method == "tasks/list":
        with tasks_lock:
            ids = list(tasks)
        return response(req_id, {"tasks": [{"taskId": t, "status": "completed"} for t in ids]})
    # Any other method: answered, so a test can see whether it was let through.
    return response(req_id, {"parsed": view})


def serve_line(raw):
    try:
        msg = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        send_raw(response(None, error={"code": -32700, "message": "parse error"}))
        return
    if isinstance(msg, list):
        out = [r for r in (handle(m) for m in msg) if r is not None]
        if out:
            send_raw("[" + ",".join(out) + "]")
        return
    out = handle(msg)
    if out is not None:
        send_raw(out)


def main():
    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        log_line(raw)
        # Each request is answered on its own thread, so a held call does
        # not block the ones after it (as a real concurrent server).
        threading.Thread(target=serve_line, args=(raw,), daemon=True).start()


if __name__ == "__main__":
    main()
