#!/usr/bin/env python3
# pty_init.py - runs `docket init` on a pseudo-terminal, answers its passphrase prompts,
# and interrupts it (SIGINT, as Ctrl-C) at the prompt named; prints "clean" if nothing of
# the ledger or its key file is left, else what is.
# usage: pty_init.py DOCKET DIR KEYFILE PROMPT  (PROMPT: "node" or "admin")
import os
import pty
import signal
import sys
import time

docket, d, keyout, at = sys.argv[1:5]
env = dict(os.environ)
env.pop("DOCKET_PASSPHRASE", None)
pid, fd = pty.fork()
if pid == 0:
    os.execve(docket, [docket, "init", "--ledger", d, "--admin", "a", "--key-out", keyout], env)
want = b"Passphrase for the node key" if at == "node" else b"New passphrase for the key"
out, answered, deadline = b"", set(), time.time() + 30
while time.time() < deadline:
    try:
        out += os.read(fd, 1024)
    except OSError:
        break
    if want in out:
        os.kill(pid, signal.SIGINT)
        break
    for prompt in (b"Passphrase for the node key", b"New passphrase for the key",
                   b"Repeat passphrase"):
        if out.count(prompt) > len([a for a in answered if a[0] == prompt]):
            answered.add((prompt, out.count(prompt)))
            os.write(fd, b"secret\n")
else:
    os.kill(pid, signal.SIGKILL)  # never reached the prompt: do not wait for it
os.waitpid(pid, 0)
left = [p for p in (d, keyout) if os.path.exists(p)]
print("clean" if not left else "left: " + " ".join(left))
