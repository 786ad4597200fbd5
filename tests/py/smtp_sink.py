"""A real SMTP sink for the email tests, built on aiosmtpd (a server nobody here wrote).

    python smtp_sink.py PORT DIR

Every message it receives is written to DIR as NNNNN.eml (the bytes as received) beside
NNNNN.json (the envelope: mailFrom, rcptTos). Each file appears whole (written, then renamed).
Prints "READY" once it accepts connections, and exits when its stdin closes.
"""

import json
import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, f"{self.count:05d}")
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mailFrom": envelope.mail_from, "rcptTos": envelope.rcpt_tos}, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 OK"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
