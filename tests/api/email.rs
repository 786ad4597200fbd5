//! Email: tasks from anyone's mailbox, results as replies. Messages are sent with Python's
//! smtplib to the hub's real SMTP listener, agents poll for their tasks over HTTP, and the
//! replies are received by a real SMTP server (aiosmtpd) that the hub relays to.

use crate::helpers::{TestApp, assert_status_error, spawn_app_with};
use crate::mail_support::{DnsServer, Received, Sink, dkim_key, send, spec};
use agenthub::config::Settings;
use base64::Engine;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use std::time::Duration;

const START: i64 = 10_000;
const DOMAIN: &str = "mail.localhost";

async fn mail_app(sink: &Sink, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let relay = sink.relay_url();
    spawn_app_with(move |s| {
        s.smtp_addr = "127.0.0.1:0".into();
        s.smtp_relay = Some(relay);
        tweak(s);
    })
    .await
}

fn smtp(app: &TestApp) -> u16 {
    app.smtp_port.expect("the SMTP listener is on")
}

/// A plain-mode agent that polls for its tasks; returns its API key.
async fn poll_agent(
    app: &TestApp,
    owner: &str,
    slug: &str,
    price: i64,
    visibility: &str,
) -> String {
    let (_, key) = app
        .create_agent(
            owner,
            &json!({
                "name": format!("Agent {slug}"),
                "slug": slug,
                "description": "answers mail",
                "deliveryMode": "poll",
                "visibility": visibility,
                "pricing": if price > 0 { json!({ "model": "per-call", "pricePerCall": price }) } else { json!({ "model": "free" }) },
            }),
        )
        .await;
    key
}

/// Long-polls until the agent has a task; returns it (the test expects exactly one).
async fn next_task(app: &TestApp, key: &str) -> Value {
    let tasks = tasks(app, key, 1).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    tasks[0].clone()
}

/// Long-polls until the agent has leased `n` tasks (a poll hands out every pending task).
async fn tasks(app: &TestApp, key: &str, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    for _ in 0..4 {
        let (status, body) = app.get("/tasks/poll?wait=5", Some(key)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        got.extend(body["tasks"].as_array().cloned().unwrap_or_default());
        if got.len() >= n {
            return got;
        }
    }
    let mail: Vec<(String, Option<String>)> = entities::mail_messages::Entity::find()
        .all(&app.hub.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.status, m.note))
        .collect();
    panic!("no task reached the agent within 20 s; mail: {mail:?}");
}

async fn answer(app: &TestApp, key: &str, task_id: &str, body: Value) {
    let (status, resp) = app
        .post_json(&format!("/tasks/{task_id}/result"), &body, Some(key))
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
}

fn accepted(outcome: &Value) {
    assert_eq!(outcome["error"], Value::Null, "{outcome}");
    assert_eq!(outcome["refused"], json!({}), "{outcome}");
}

fn refused_code(outcome: &Value, rcpt: &str) -> i64 {
    outcome["refused"][rcpt][0]
        .as_i64()
        .unwrap_or_else(|| panic!("{rcpt} was not refused: {outcome}"))
}

async fn balance(app: &TestApp, token: &str) -> i64 {
    let (_, body) = app.get("/api/v1/billing/balance", Some(token)).await;
    body["balance"].as_i64().expect("balance")
}

async fn audit_actions(app: &TestApp, token: &str) -> Vec<String> {
    let (status, body) = app.get("/api/v1/audit/logs?limit=100", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

fn assert_reply_headers(
    reply: &Received,
    from_slug: &str,
    to: &str,
    subject: &str,
    in_reply_to: &str,
) {
    let from = reply.header("From").unwrap_or_default();
    assert!(
        from.contains(&format!("{from_slug}@{DOMAIN}")),
        "From: {from}"
    );
    assert_eq!(reply.mail_from, format!("{from_slug}@{DOMAIN}"));
    assert_eq!(reply.rcpt_tos, vec![to.to_string()]);
    assert_eq!(reply.subject(), format!("Re: {subject}"));
    assert_eq!(reply.header("In-Reply-To").as_deref(), Some(in_reply_to));
    let references = reply.header("References").unwrap_or_default();
    assert!(references.contains(in_reply_to), "References: {references}");
    assert_eq!(
        reply.header("Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert!(
        reply
            .header("Message-ID")
            .is_some_and(|id| id.ends_with(&format!("@{DOMAIN}>")))
    );
}

#[actix_web::test]
async fn a_mailed_task_reaches_the_agent_and_the_result_comes_back_as_a_threaded_reply() {
    let sink = Sink::start().await;
    let app = mail_app(&sink, |_| {}).await;
    let (owner, _) = app
        .register("owner@example.com", "mailowner", "password123")
        .await;
    let key = poll_agent(&app, &owner, "echo", 0, "public").await;

    let outcome = send(spec(
        smtp(&app),
        "ann@example.org",
        &["echo@mail.localhost"],
        json!({ "subject": "Summarise this", "text": "The quick brown fox.",
                "messageId": "<plain-1@example.org>" }),
    ))
    .await;
    accepted(&outcome);

    let task = next_task(&app, &key).await;
    assert_eq!(
        task["task"], "Summarise this\n\nThe quick brown fox.",
        "{task}"
    );
    assert_eq!(task["buyer"], "ann@example.org", "{task}");
    assert_eq!(task["files"], json!([]), "{task}");
    assert!(task["jobId"].is_i64(), "{task}");
    answer(
        &app,
        &key,
        task["id"].as_str().unwrap(),
        json!({ "result": "A fox, quickly." }),
    )
    .await;

    let replies = sink.wait_for(1, 20).await;
    let reply = &replies[0];
    assert_reply_headers(
        reply,
        "echo",
        "ann@example.org",
        "Summarise this",
        "<plain-1@example.org>",
    );
    assert!(reply.body().contains("A fox, quickly."), "{}", reply.body());
    assert!(
        reply.body().contains("Nothing was charged"),
        "{}",
        reply.body()
    );

    // The owner sees the task in their task list, and both ends of it in the audit log.
    let (_, tasks) = app.get("/api/v1/tasks", Some(&owner)).await;
    assert_eq!(tasks["total"], 1, "{tasks}");
    assert_eq!(tasks["data"][0]["status"], "completed", "{tasks}");
    assert_eq!(tasks["data"][0]["result"], "A fox, quickly.", "{tasks}");
    // The row is closed (and `email.replied` recorded) just after the reply is handed over, so
    // the sink may have it a moment before the audit log does.
    let mut actions = audit_actions(&app, &owner).await;
    for _ in 0..100 {
        if actions.contains(&"email.replied".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        actions = audit_actions(&app, &owner).await;
    }
    assert!(
        actions.contains(&"email.received".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"email.replied".to_string()),
        "{actions:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1, "exactly one reply");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn html_bodies_character_sets_and_attachments_are_decoded() {
    let sink = Sink::start().await;
    let app = mail_app(&sink, |_| {}).await;
    let (owner, _) = app.register_user("decoder").await;
    let key = poll_agent(&app, &owner, "reader", 0, "public").await;
    let to = ["reader@mail.localhost"];
    let png = [0x89u8, b'P', b'N', b'G', 0, 1, 2, 255, 254];
    let csv = "name,amount\nçà,3\n";
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

    for message in [
        json!({ "subject": "html", "html": "<html><body><p>Hello &amp; <b>goodbye</b></p><p>second&nbsp;line</p><script>x()</script></body></html>" }),
        json!({ "subject": "Café crème", "subjectCharset": "iso-8859-1", "charset": "iso-8859-1",
                "text": "Ça coûte très cher" }),
        json!({ "subject": "koi8", "charset": "koi8-r", "text": "Привет, мир" }),
        json!({ "subject": "files", "text": "See attached.", "attachments": [
            { "name": "pixel.png", "mimeType": "image/png", "base64": b64(&png) },
            { "name": "data.csv", "mimeType": "text/csv", "base64": b64(csv.as_bytes()) } ] }),
    ] {
        accepted(&send(spec(smtp(&app), "writer@example.org", &to, message)).await);
    }

    let mut seen = std::collections::HashMap::new();
    for task in tasks(&app, &key, 4).await {
        let text = task["task"].as_str().unwrap().to_string();
        let subject = text.lines().next().unwrap().to_string();
        seen.insert(subject, task);
    }
    assert_eq!(seen["html"]["task"], "html\n\nHello & goodbye\nsecond line");
    assert_eq!(
        seen["Café crème"]["task"],
        "Café crème\n\nÇa coûte très cher"
    );
    assert_eq!(seen["koi8"]["task"], "koi8\n\nПривет, мир");
    let files = seen["files"]["files"].as_array().unwrap();
    assert_eq!(seen["files"]["task"], "files\n\nSee attached.");
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(
        files[0],
        json!({ "name": "pixel.png", "mimeType": "image/png", "content": b64(&png) })
    );
    assert_eq!(files[1]["name"], "data.csv");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(files[1]["content"].as_str().unwrap())
            .unwrap(),
        csv.as_bytes()
    );
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn only_mail_the_hub_can_deliver_is_accepted() {
    let sink = Sink::start().await;
    let app = mail_app(&sink, |s| s.mail_max_bytes = 64 * 1024).await;
    let (owner, _) = app
        .register("boss@example.com", "boss", "password123")
        .await;
    poll_agent(&app, &owner, "open", 0, "public").await;
    poll_agent(&app, &owner, "secret", 0, "private").await;
    poll_agent(&app, &owner, "resting", 0, "public").await;
    let (status, agents) = app.get("/api/v1/agents/resting", Some(&owner)).await;
    assert_eq!(status, StatusCode::OK, "{agents}");
    let (status, body) = app
        .patch(
            &format!("/api/v1/agents/{}/status", agents["id"].as_str().unwrap()),
            &json!({ "status": "inactive" }),
            Some(&owner),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let port = smtp(&app);
    let msg = || json!({ "subject": "hi", "text": "hello" });

    // Unknown agents, other domains (never an open relay), private agents of someone else,
    // inactive agents: refused at RCPT TO.
    for (rcpt, code) in [
        ("nobody@mail.localhost", 550),
        ("someone@example.com", 550),
        ("open@mail.localhost.evil.org", 550),
        ("secret@mail.localhost", 550),
        ("resting@mail.localhost", 550),
    ] {
        let outcome = send(spec(port, "stranger@example.org", &[rcpt], msg())).await;
        assert_eq!(refused_code(&outcome, rcpt), code, "{rcpt}: {outcome}");
    }
    // The private agent takes its owner's mail; the public one anyone's.
    accepted(
        &send(spec(
            port,
            "boss@example.com",
            &["secret@mail.localhost"],
            msg(),
        ))
        .await,
    );
    accepted(
        &send(spec(
            port,
            "stranger@example.org",
            &["open@mail.localhost"],
            msg(),
        ))
        .await,
    );
    // Mixed recipients: the good one is accepted, the bad one refused.
    let outcome = send(spec(
        port,
        "stranger@example.org",
        &["open@mail.localhost", "nobody@mail.localhost"],
        msg(),
    ))
    .await;
    assert_eq!(outcome["error"], Value::Null, "{outcome}");
    assert_eq!(refused_code(&outcome, "nobody@mail.localhost"), 550);

    // Too big: refused (SIZE is announced, and smtplib declares the size at MAIL FROM).
    let outcome = send(spec(
        port,
        "stranger@example.org",
        &["open@mail.localhost"],
        json!({ "subject": "big", "text": "x", "padBytes": 100_000 }),
    ))
    .await;
    assert_eq!(outcome["error"]["code"], 552, "{outcome}");

    // The three accepted messages become tasks (in the background, after the 250); nothing of
    // the refused mail does.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, tasks) = app.get("/api/v1/tasks", Some(&owner)).await;
        if tasks["total"].as_i64() >= Some(3) || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, tasks) = app.get("/api/v1/tasks", Some(&owner)).await;
    assert_eq!(tasks["total"], 3, "{tasks}");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn one_sender_is_rate_limited() {
    let sink = Sink::start().await;
    let app = mail_app(&sink, |s| s.mail_rate_per_hour = 3).await;
    let (owner, _) = app.register_user("limited").await;
    poll_agent(&app, &owner, "busy", 0, "public").await;
    let port = smtp(&app);
    let to = ["busy@mail.localhost"];
    for _ in 0..3 {
        accepted(
            &send(spec(
                port,
                "eager@example.org",
                &to,
                json!({ "subject": "s", "text": "t" }),
            ))
            .await,
        );
    }
    let outcome = send(spec(
        port,
        "eager@example.org",
        &to,
        json!({ "subject": "s", "text": "t" }),
    ))
    .await;
    assert_eq!(
        refused_code(&outcome, "busy@mail.localhost"),
        450,
        "{outcome}"
    );
    // Another sender is not affected.
    accepted(
        &send(spec(
            port,
            "calm@example.org",
            &to,
            json!({ "subject": "s", "text": "t" }),
        ))
        .await,
    );
}

#[actix_web::test]
async fn automatic_mail_and_mail_from_the_hub_itself_are_never_answered() {
    let sink = Sink::start().await;
    let app = mail_app(&sink, |_| {}).await;
    let (owner, _) = app.register_user("quiet").await;
    let key = poll_agent(&app, &owner, "quiet", 0, "public").await;
    poll_agent(&app, &owner, "other", 0, "public").await;
    let port = smtp(&app);
    let to = ["quiet@mail.localhost"];
    let automatic = [
        (
            "bot@example.org",
            json!({ "subject": "Out of office", "text": "away",
            "headers": { "Auto-Submitted": "auto-replied" } }),
        ),
        (
            "news@example.org",
            json!({ "subject": "Newsletter", "text": "news",
            "headers": { "Precedence": "bulk" } }),
        ),
        (
            "list@example.org",
            json!({ "subject": "[list] hi", "text": "list mail",
            "headers": { "List-Id": "<dev.lists.example.org>" } }),
        ),
        (
            "",
            json!({ "from": "MAILER-DAEMON@example.org", "subject": "Undelivered Mail", "text": "bounce" }),
        ),
        (
            "mailer-daemon@example.org",
            json!({ "subject": "Delivery Status", "text": "dsn" }),
        ),
        // Another agent of this hub: two agents can never mail each other in a loop.
        (
            "other@mail.localhost",
            json!({ "subject": "Re: ping", "text": "pong" }),
        ),
    ];
    for (from, message) in automatic {
        accepted(&send(spec(port, from, &to, message)).await);
    }
    // A person's mail after them is answered, and is the only thing answered.
    accepted(
        &send(spec(
            port,
            "person@example.org",
            &to,
            json!({ "subject": "Real question", "text": "?", "messageId": "<q@example.org>" }),
        ))
        .await,
    );
    let task = next_task(&app, &key).await;
    assert_eq!(task["buyer"], "person@example.org", "{task}");
    answer(
        &app,
        &key,
        task["id"].as_str().unwrap(),
        json!({ "result": "answer" }),
    )
    .await;
    let replies = sink.wait_for(1, 20).await;
    assert_eq!(replies[0].rcpt_tos, vec!["person@example.org".to_string()]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1, "automatic mail was answered");
    let (_, tasks) = app.get("/api/v1/tasks", Some(&owner)).await;
    assert_eq!(tasks["total"], 1, "automatic mail became a task: {tasks}");
    let ignored = audit_actions(&app, &owner)
        .await
        .iter()
        .filter(|a| *a == "email.ignored")
        .count();
    assert_eq!(ignored, 6);
}

#[actix_web::test]
async fn a_paid_agent_charges_only_an_authenticated_account_holder() {
    let sink = Sink::start().await;
    let app = mail_app(&sink, |s| {
        s.mail_trusted_authserv = Some("mx.tests.example".into())
    })
    .await;
    let (owner, _) = app
        .register("seller@example.com", "seller", "password123")
        .await;
    let (bob, _) = app.register("bob@example.org", "bob", "password123").await;
    let key = poll_agent(&app, &owner, "paid", 25, "public").await;
    let port = smtp(&app);
    let to = ["paid@mail.localhost"];
    let good =
        "mx.tests.example; dkim=pass header.d=example.org; spf=pass smtp.mailfrom=bob@example.org";

    // A stranger, an account holder without authentication, and a forged verdict from an
    // untrusted server: each gets an explanation of how to pay, and nothing runs.
    for (from, headers, id) in [
        ("carol@example.org", json!({}), "<p1@example.org>"),
        ("bob@example.org", json!({}), "<p2@example.org>"),
        (
            "bob@example.org",
            json!({ "Authentication-Results": "evil.example; dkim=pass header.d=example.org" }),
            "<p3@example.org>",
        ),
    ] {
        accepted(&send(spec(port, from, &to,
            json!({ "subject": "Do it", "text": "please", "messageId": id, "headers": headers }))).await);
    }
    let replies = sink.wait_for(3, 20).await;
    for reply in &replies {
        let body = reply.body();
        assert!(body.contains("charges 25 tokens"), "{body}");
        assert!(body.contains("register"), "{body}");
        assert!(
            body.contains("Nothing was run and nothing was charged"),
            "{body}"
        );
        assert_eq!(
            reply.header("Auto-Submitted").as_deref(),
            Some("auto-replied")
        );
    }
    let (_, polled) = app.get("/tasks/poll", Some(&key)).await;
    assert_eq!(polled["tasks"], json!([]), "{polled}");
    assert_eq!(balance(&app, &bob).await, START);

    // Authenticated by the trusted upstream: charged to bob's account.
    accepted(
        &send(spec(
            port,
            "bob@example.org",
            &to,
            json!({ "subject": "Do it", "text": "please", "messageId": "<p4@example.org>",
                "headers": { "Authentication-Results": good } }),
        ))
        .await,
    );
    let task = next_task(&app, &key).await;
    assert_eq!(task["buyer"], "bob@example.org");
    assert_eq!(balance(&app, &bob).await, START - 25);
    answer(
        &app,
        &key,
        task["id"].as_str().unwrap(),
        json!({ "result": "done" }),
    )
    .await;
    let replies = sink.wait_for(4, 20).await;
    let body = replies[3].body();
    assert!(body.contains("done"), "{body}");
    assert!(body.contains("25 tokens were charged"), "{body}");
    assert_eq!(balance(&app, &bob).await, START - 25);
    assert_eq!(balance(&app, &owner).await, START + 25);
    // Both the payer and the owner see the task.
    let (_, mine) = app.get("/api/v1/tasks", Some(&bob)).await;
    assert_eq!(mine["total"], 1, "{mine}");
    let (_, theirs) = app.get("/api/v1/tasks", Some(&owner)).await;
    assert_eq!(theirs["total"], 1, "{theirs}");
    app.assert_ledger_balanced().await;
}

/// Asserts a reply is the "how to pay" explanation, sent to `to`.
fn assert_how_to_pay(reply: &Received, to: &str) {
    assert_eq!(reply.rcpt_tos, vec![to.to_string()]);
    let body = reply.body();
    assert!(body.contains("charges 25 tokens"), "{body}");
    assert!(
        body.contains("Nothing was run and nothing was charged"),
        "{body}"
    );
}

#[actix_web::test]
async fn without_a_trusted_upstream_spf_of_the_sender_domain_lets_a_paid_agent_charge() {
    // The hub checks SPF itself: spf.example lets 127.0.0.1 (the test's SMTP client) send,
    // nospf.example does not.
    let dns = DnsServer::start(json!([
        ["spf.example", "TXT", "v=spf1 ip4:127.0.0.1 -all"],
        ["nospf.example", "TXT", "v=spf1 ip4:192.0.2.1 -all"],
    ]))
    .await;
    let sink = Sink::start().await;
    let app = mail_app(&sink, |s| s.mail_dns = Some(dns.addr())).await;
    let (owner, _) = app
        .register("seller@example.com", "seller", "password123")
        .await;
    let (bob, _) = app.register("bob@spf.example", "bob", "password123").await;
    let (dan, _) = app
        .register("dan@nospf.example", "dan", "password123")
        .await;
    let key = poll_agent(&app, &owner, "paid", 25, "public").await;
    let port = smtp(&app);
    let to = ["paid@mail.localhost"];

    // SPF fails for dan's domain: an explanation, nothing runs, nothing is charged.
    accepted(
        &send(spec(
            port,
            "dan@nospf.example",
            &to,
            json!({ "subject": "Do it", "text": "please", "messageId": "<s1@nospf.example>" }),
        ))
        .await,
    );
    let replies = sink.wait_for(1, 20).await;
    assert_how_to_pay(&replies[0], "dan@nospf.example");
    let (_, polled) = app.get("/tasks/poll", Some(&key)).await;
    assert_eq!(polled["tasks"], json!([]), "{polled}");
    assert_eq!(balance(&app, &dan).await, START);

    // SPF passes for bob's domain, which is also his From domain: the task runs on his account.
    accepted(
        &send(spec(
            port,
            "bob@spf.example",
            &to,
            json!({ "subject": "Do it", "text": "please", "messageId": "<s2@spf.example>" }),
        ))
        .await,
    );
    let task = next_task(&app, &key).await;
    assert_eq!(task["buyer"], "bob@spf.example");
    assert_eq!(balance(&app, &bob).await, START - 25);
    answer(
        &app,
        &key,
        task["id"].as_str().unwrap(),
        json!({ "result": "done" }),
    )
    .await;
    let replies = sink.wait_for(2, 20).await;
    assert_eq!(replies[1].rcpt_tos, vec!["bob@spf.example".to_string()]);
    let body = replies[1].body();
    assert!(body.contains("25 tokens were charged"), "{body}");
    assert_eq!(balance(&app, &bob).await, START - 25);
    assert_eq!(balance(&app, &owner).await, START + 25);
    // The SMTP client's address is kept with each message (the SPF check reads it).
    let mail = entities::mail_messages::Entity::find()
        .all(&app.hub.db)
        .await
        .unwrap();
    assert_eq!(mail.len(), 2);
    assert!(
        mail.iter()
            .all(|m| m.client_ip.as_deref() == Some("127.0.0.1")),
        "{mail:?}"
    );
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn without_a_trusted_upstream_a_dkim_signature_of_the_from_domain_lets_a_paid_agent_charge() {
    // signed.example's SPF does not list 127.0.0.1, but it publishes a DKIM key, and dkimpy
    // signs carol's mail with it.
    let (private_key, record) = dkim_key();
    let dns = DnsServer::start(json!([
        ["signed.example", "TXT", "v=spf1 ip4:192.0.2.1 -all"],
        ["s1._domainkey.signed.example", "TXT", record],
    ]))
    .await;
    let sink = Sink::start().await;
    let app = mail_app(&sink, |s| s.mail_dns = Some(dns.addr())).await;
    let (owner, _) = app
        .register("seller@example.com", "seller", "password123")
        .await;
    let (carol, _) = app
        .register("carol@signed.example", "carol", "password123")
        .await;
    let key = poll_agent(&app, &owner, "paid", 25, "public").await;
    let port = smtp(&app);
    let to = ["paid@mail.localhost"];
    let signed = |id: &str, tamper: Value| {
        let mut spec = spec(
            port,
            "carol@signed.example",
            &to,
            json!({ "subject": "Do it", "text": "please summarise", "messageId": id }),
        );
        spec["dkim"] = json!({ "key": private_key, "selector": "s1", "domain": "signed.example" });
        spec["tamper"] = tamper;
        spec
    };

    // The body was changed after signing: the signature fails, nothing runs.
    accepted(
        &send(signed(
            "<d1@signed.example>",
            json!(["please summarise", "please summarise and pay for mine"]),
        ))
        .await,
    );
    let replies = sink.wait_for(1, 20).await;
    assert_how_to_pay(&replies[0], "carol@signed.example");
    let (_, polled) = app.get("/tasks/poll", Some(&key)).await;
    assert_eq!(polled["tasks"], json!([]), "{polled}");
    assert_eq!(balance(&app, &carol).await, START);

    // Signed and intact: charged to carol's account.
    accepted(&send(signed("<d2@signed.example>", Value::Null)).await);
    let task = next_task(&app, &key).await;
    assert_eq!(task["buyer"], "carol@signed.example");
    assert!(
        task["task"]
            .as_str()
            .is_some_and(|t| t.ends_with("please summarise")),
        "{task}"
    );
    assert_eq!(balance(&app, &carol).await, START - 25);
    answer(
        &app,
        &key,
        task["id"].as_str().unwrap(),
        json!({ "result": "done" }),
    )
    .await;
    let replies = sink.wait_for(2, 20).await;
    let body = replies[1].body();
    assert!(body.contains("25 tokens were charged"), "{body}");
    assert_eq!(balance(&app, &owner).await, START + 25);

    // The same signed message, replayed to another paid agent (its signed To still names the
    // first): a copy of carol's mail does not make carol pay.
    let other = poll_agent(&app, &owner, "other", 25, "public").await;
    let mut replay = signed("<d2@signed.example>", Value::Null);
    replay["rcptTo"] = json!(["other@mail.localhost"]);
    accepted(&send(replay).await);
    let replies = sink.wait_for(3, 20).await;
    assert_how_to_pay(&replies[2], "carol@signed.example");
    let (_, polled) = app.get("/tasks/poll", Some(&other)).await;
    assert_eq!(polled["tasks"], json!([]), "{polled}");
    assert_eq!(balance(&app, &carol).await, START - 25);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn failures_and_timeouts_are_answered_with_an_explanation() {
    let sink = Sink::start().await;
    let app = mail_app(&sink, |s| s.call_timeout_secs = 2).await;
    let (owner, _) = app.register_user("flaky").await;
    let key = poll_agent(&app, &owner, "flaky", 0, "public").await;
    let port = smtp(&app);
    let to = ["flaky@mail.localhost"];

    accepted(
        &send(spec(
            port,
            "a@example.org",
            &to,
            json!({ "subject": "Parse", "text": "%%%" }),
        ))
        .await,
    );
    let task = next_task(&app, &key).await;
    answer(
        &app,
        &key,
        task["id"].as_str().unwrap(),
        json!({ "error": "cannot parse the input" }),
    )
    .await;
    let replies = sink.wait_for(1, 20).await;
    assert_eq!(replies[0].subject(), "Re: Parse");
    let body = replies[0].body();
    assert!(
        body.contains("could not complete your task: cannot parse the input"),
        "{body}"
    );
    assert!(body.contains("Nothing was charged"), "{body}");

    accepted(
        &send(spec(
            port,
            "b@example.org",
            &to,
            json!({ "subject": "Slow", "text": "zzz" }),
        ))
        .await,
    );
    let replies = sink.wait_for(2, 20).await;
    assert_eq!(replies[1].rcpt_tos, vec!["b@example.org".to_string()]);
    let body = replies[1].body();
    assert!(
        body.contains("did not answer your task within 2 seconds"),
        "{body}"
    );
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn an_agent_without_a_task_tool_explains_by_reply() {
    let sink = Sink::start().await;
    let app = mail_app(&sink, |_| {}).await;
    let (owner, _) = app.register_user("mcpowner").await;
    app.create_ws_agent(&owner, "Tools Only", "tools-only")
        .await;
    accepted(
        &send(spec(
            smtp(&app),
            "c@example.org",
            &["tools-only@mail.localhost"],
            json!({ "subject": "Hello", "text": "do something" }),
        ))
        .await,
    );
    let replies = sink.wait_for(1, 20).await;
    assert!(
        replies[0].body().contains("does not take tasks by email"),
        "{}",
        replies[0].body()
    );
    assert_eq!(replies[0].subject(), "Re: Hello");
}

#[actix_web::test]
async fn raw_messages_over_http_need_the_inbound_secret() {
    let sink = Sink::start().await;
    let secret = "an-inbound-secret-of-some-length";
    let app = mail_app(&sink, |s| s.mail_inbound_secret = Some(secret.into())).await;
    let (owner, _) = app.register_user("httpmail").await;
    let key = poll_agent(&app, &owner, "webmail", 0, "public").await;
    let raw = "From: Dora <dora@example.org>\r\nTo: webmail@mail.localhost\r\nSubject: Via HTTP\r\n\
               Message-ID: <h1@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nfrom a provider\r\n";
    let post = |auth: Option<&str>, query: &str| {
        let mut req = app
            .client
            .post(app.url(&format!("/api/v1/email/inbound{query}")))
            .header("Content-Type", "message/rfc822")
            .body(raw);
        if let Some(a) = auth {
            req = req.header("Authorization", format!("Bearer {a}"));
        }
        req.send()
    };
    for auth in [None, Some("wrong-secret-wrong-secret")] {
        let resp = post(auth, "").await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    }
    // An unknown recipient is a 400 naming it; nothing is stored.
    let resp = post(Some(secret), "?to=nobody@mail.localhost")
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_status_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"][0]["field"], "to", "{body}");

    let resp = post(Some(secret), "").await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["accepted"][0]["recipient"], "webmail@mail.localhost",
        "{body}"
    );
    let task = next_task(&app, &key).await;
    assert_eq!(task["task"], "Via HTTP\n\nfrom a provider");
    assert_eq!(task["buyer"], "dora@example.org");
    answer(
        &app,
        &key,
        task["id"].as_str().unwrap(),
        json!({ "result": "ok" }),
    )
    .await;
    let replies = sink.wait_for(1, 20).await;
    assert_reply_headers(
        &replies[0],
        "webmail",
        "dora@example.org",
        "Via HTTP",
        "<h1@example.org>",
    );

    // Off when no secret is configured.
    let plain = spawn_app_with(|_| {}).await;
    let (status, body) = plain
        .post_json("/api/v1/email/inbound", &json!({}), Some(secret))
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
}

/// Talks SMTP byte by byte, to check what smtplib cannot: pipelined commands, and a client
/// that streams more data than `SIZE` allows without declaring it.
#[actix_web::test]
async fn pipelined_commands_and_undeclared_oversized_data() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sink = Sink::start().await;
    let app = mail_app(&sink, |s| s.mail_max_bytes = 4096).await;
    let (owner, _) = app.register_user("raw").await;
    let key = poll_agent(&app, &owner, "raw", 0, "public").await;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", smtp(&app)))
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let mut read_until = async |conn: &mut tokio::net::TcpStream, want: &str| {
        let mut got = String::new();
        while !got.contains(want) {
            let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {want:?} in {got:?}"))
                .unwrap();
            assert!(n > 0, "closed; got {got:?}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        got
    };
    let greeting = read_until(&mut conn, "\r\n").await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    conn.write_all(b"EHLO raw.example\r\n").await.unwrap();
    let ehlo = read_until(&mut conn, "250 ").await;
    for ext in ["PIPELINING", "SIZE 4096", "8BITMIME"] {
        assert!(ehlo.contains(ext), "{ext} not in {ehlo}");
    }
    // One write, the whole transaction (RFC 2920).
    conn.write_all(
        b"MAIL FROM:<p@example.org>\r\nRCPT TO:<raw@mail.localhost>\r\nRCPT TO:<no@mail.localhost>\r\nDATA\r\n",
    )
    .await
    .unwrap();
    let replies = read_until(&mut conn, "354").await;
    let codes: Vec<&str> = replies.lines().map(|l| &l[..3]).collect();
    assert_eq!(codes, ["250", "250", "550", "354"], "{replies}");
    let body = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "y".repeat(10_000));
    conn.write_all(body.as_bytes()).await.unwrap();
    let too_big = read_until(&mut conn, "\r\n").await;
    assert!(too_big.starts_with("552 "), "{too_big}");
    // The session goes on: a small message is accepted.
    conn.write_all(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<raw@mail.localhost>\r\nDATA\r\n")
        .await
        .unwrap();
    read_until(&mut conn, "354").await;
    conn.write_all(b"Subject: small\r\n\r\n..dot-stuffed line\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    let end = read_until(&mut conn, "221").await;
    assert!(end.starts_with("250 "), "{end}");
    let task = next_task(&app, &key).await;
    assert_eq!(task["task"], "small\n\n.dot-stuffed line", "{task}");
    let (_, tasks) = app.get("/api/v1/tasks", Some(&owner)).await;
    assert_eq!(tasks["total"], 1, "{tasks}");
}

#[actix_web::test]
async fn starttls_is_offered_with_a_certificate() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=mail.localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is needed to make a test certificate");
    assert!(status.success());
    let app = mail_app(&sink, |s| {
        s.smtp_tls_cert = Some(cert.clone());
        s.smtp_tls_key = Some(key.clone());
    })
    .await;
    let (owner, _) = app.register_user("tls").await;
    let agent_key = poll_agent(&app, &owner, "secure", 0, "public").await;
    let mut request = spec(
        smtp(&app),
        "t@example.org",
        &["secure@mail.localhost"],
        json!({ "subject": "Over TLS", "text": "sealed" }),
    );
    request["starttls"] = json!(true);
    let outcome = send(request).await;
    accepted(&outcome);
    assert!(
        outcome["tls"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{outcome}"
    );
    let task = next_task(&app, &agent_key).await;
    assert_eq!(task["task"], "Over TLS\n\nsealed");
}
