#!/usr/bin/env python3
"""Runs a stdio MCP server and records every line it receives.

    python3 tee_upstream.py COMMAND [ARGS...]

Each line the gateway writes is appended, byte for byte, to the file named
by ATTACK_UPSTREAM_LOG before it is passed to COMMAND's stdin; COMMAND's
stdout and stderr pass through unchanged. bridge's attack tests put it in
front of @modelcontextprotocol/server-everything to prove what reached it.
"""

import os
import subprocess
import sys
import threading


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: tee_upstream.py COMMAND [ARGS...]\n")
        return 2
    log_path = os.environ.get("ATTACK_UPSTREAM_LOG")
    child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer)

    def pump():
        try:
            for raw in sys.stdin.buffer:
                if log_path:
                    with open(log_path, "ab") as f:
                        f.write(raw.rstrip(b"\r\n") + b"\n")
                child.stdin.write(raw)
                child.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                child.stdin.close()
            except OSError:
                pass

    threading.Thread(target=pump, daemon=True).start()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
