"""Sends one message with Python's smtplib (a client nobody here wrote), for the email tests.

Reads a JSON spec on stdin:
  {"host", "port", "mailFrom", "rcptTo": [...], "starttls": false,
   "message": {"from", "to", "subject", "subjectCharset", "text", "html", "charset",
               "messageId", "headers": {...}, "attachments": [{"name", "mimeType", "base64"}],
               "padBytes": 0},
   "dkim": null | {"key": PEM, "selector", "domain"}, "tamper": null | [old, new]}
and prints the outcome as JSON: {"refused": {rcpt: [code, text]}, "error": null | {"stage",
"code", "message"}}.

With "dkim", dkimpy (an implementation nobody here wrote) signs the message as the sending
domain's server would; "tamper" then replaces the first `old` with `new` in the signed bytes,
as a forger would.
"""

import base64
import json
import smtplib
import ssl
import sys
from email import policy
from email.header import Header
from email.message import EmailMessage

import dkim


def build(spec):
    msg = EmailMessage()
    msg["From"] = spec["from"]
    msg["To"] = spec["to"]
    subject = spec.get("subject", "")
    if spec.get("subjectCharset"):
        msg["Subject"] = Header(subject, spec["subjectCharset"]).encode()
    else:
        msg["Subject"] = subject
    if spec.get("messageId"):
        msg["Message-ID"] = spec["messageId"]
    for name, value in spec.get("headers", {}).items():
        msg[name] = value
    charset = spec.get("charset", "utf-8")
    text, html = spec.get("text"), spec.get("html")
    if spec.get("padBytes"):
        text = (text or "") + "\n" + ("x" * 76 + "\n") * (spec["padBytes"] // 77 + 1)
    if text is not None and html is not None:
        msg.set_content(text, charset=charset)
        msg.add_alternative(html, subtype="html", charset=charset)
    elif html is not None:
        msg.set_content(html, subtype="html", charset=charset)
    else:
        msg.set_content(text or "", charset=charset)
    for a in spec.get("attachments", []):
        maintype, subtype = a.get("mimeType", "application/octet-stream").split("/", 1)
        msg.add_attachment(
            base64.b64decode(a["base64"]), maintype=maintype, subtype=subtype, filename=a["name"]
        )
    return msg


def main():
    spec = json.load(sys.stdin)
    out = {"refused": {}, "error": None}
    try:
        with smtplib.SMTP(spec["host"], spec["port"], timeout=30) as smtp:
            smtp.ehlo("tests.example")
            if spec.get("starttls"):
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                smtp.starttls(context=context)
                smtp.ehlo("tests.example")
                out["tls"] = smtp.sock.version()
            message = build(spec["message"])
            raw = message.as_bytes()
            if spec.get("dkim"):
                d = spec["dkim"]
                # Signed as sent: CRLF line ends.
                raw = message.as_bytes(policy=policy.SMTP)
                raw = (
                    dkim.sign(
                        raw,
                        d["selector"].encode(),
                        d["domain"].encode(),
                        d["key"].encode(),
                    )
                    + raw
                )
            if spec.get("tamper"):
                old, new = spec["tamper"]
                raw = raw.replace(old.encode(), new.encode(), 1)
            refused = smtp.sendmail(spec["mailFrom"], spec["rcptTo"], raw)
            out["refused"] = {k: [v[0], v[1].decode()] for k, v in refused.items()}
    except smtplib.SMTPRecipientsRefused as e:
        out["refused"] = {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}
        out["error"] = {"stage": "rcpt", "code": None, "message": "all recipients refused"}
    except smtplib.SMTPSenderRefused as e:
        out["error"] = {"stage": "mail", "code": e.smtp_code, "message": e.smtp_error.decode()}
    except smtplib.SMTPDataError as e:
        out["error"] = {"stage": "data", "code": e.smtp_code, "message": e.smtp_error.decode()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
