//! Calls through the engine: POST /api/v1/mcp/call, the caller socket /api/v1/mcp/ws,
//! test-call, billing of every outcome, idempotency and concurrency.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::engine_ws::{
    AgentOpts, MockAgent, assert_completed, assert_echo_request, assert_refunded, balance,
    echo_call, mcp_call, next_json, rows_of, send_json, wait_online, ws_agent, ws_agent_with,
    ws_connect,
};
use crate::helpers::{
    TestApp, assert_coded, assert_status_error, assert_validation, spawn_app, spawn_app_with,
};

/// A payer (user + caller agent key) and a payee (user + target agent id/key).
struct Pair {
    payer: String,
    caller_key: String,
    owner: String,
    target: String,
    target_key: String,
}

async fn pair(app: &TestApp, price: i64) -> Pair {
    let (payer, _) = app.register_user("payer").await;
    let (owner, _) = app.register_user("owner").await;
    let (_, caller_key) = ws_agent(app, &payer, "caller-agent", 0).await;
    let (target, target_key) = ws_agent(app, &owner, "target-agent", price).await;
    Pair {
        payer,
        caller_key,
        owner,
        target,
        target_key,
    }
}

/// Runs a call while the agent answers it with the echo (asserting the request it sees).
async fn echo_roundtrip(
    app: &TestApp,
    agent: &mut MockAgent,
    key: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let message = body["arguments"]["message"]
        .as_str()
        .expect("message")
        .to_string();
    let (resp, ()) = tokio::join!(async { mcp_call(app, key, body).await }, async {
        let call = agent.next_call().await;
        assert_echo_request(&call, &message);
        agent.answer_echo(&call);
    });
    resp
}

/// The next call the agent sees must be `message` (proves nothing was delivered before it).
async fn expect_next_call_is(
    app: &TestApp,
    agent: &mut MockAgent,
    key: &str,
    target: &str,
    message: &str,
) {
    let (status, body) = echo_roundtrip(app, agent, key, &echo_call(target, message, None)).await;
    assert_eq!(status, StatusCode::OK, "marker call: {body}");
}

#[actix_web::test]
async fn paid_call_completes_and_moves_tokens() {
    let app = spawn_app().await;
    let p = pair(&app, 5).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;

    let (resp, call) = tokio::join!(
        async {
            mcp_call(
                &app,
                &p.caller_key,
                &echo_call(&p.target, "Hello!", Some("rid-paid-1")),
            )
            .await
        },
        async {
            let call = agent.next_call().await;
            agent.answer_echo(&call);
            call
        }
    );
    let task_id = assert_echo_request(&call, "Hello!");
    assert!(call.get("timestamp").is_some(), "timestamp in {call}");
    assert!(!task_id.is_empty());
    let (status, body) = resp;
    assert_completed(status, &body, "Hello!", 5);
    assert_eq!(body["requestId"], json!("rid-paid-1"));
    assert_eq!(
        body["result"],
        json!({ "content": [{ "type": "text", "text": "Echo: Hello!" }] })
    );

    assert_eq!(balance(&app, &p.payer).await, (9995, 0));
    assert_eq!(balance(&app, &p.caller_key).await, (9995, 0));
    assert_eq!(balance(&app, &p.owner).await, (10005, 0));
    assert_eq!(balance(&app, &p.target_key).await, (10005, 0));

    let charges = rows_of(&app, &p.payer, "charge").await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["amount"], json!(-5), "{charges:?}");
    assert_eq!(charges[0]["requestId"], json!("rid-paid-1"), "{charges:?}");
    assert_eq!(charges[0]["balanceAfter"], json!(9995), "{charges:?}");
    assert!(rows_of(&app, &p.payer, "earning").await.is_empty());
    let earnings = rows_of(&app, &p.owner, "earning").await;
    assert_eq!(earnings.len(), 1, "{earnings:?}");
    assert_eq!(earnings[0]["amount"], json!(5), "{earnings:?}");
    assert_eq!(earnings[0]["balanceAfter"], json!(10005), "{earnings:?}");
    assert!(rows_of(&app, &p.owner, "charge").await.is_empty());

    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn free_call_charges_nothing_and_generates_a_request_id() {
    let app = spawn_app().await;
    let p = pair(&app, 0).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let (status, body) = echo_roundtrip(
        &app,
        &mut agent,
        &p.caller_key,
        &echo_call(&p.target, "free", None),
    )
    .await;
    assert_completed(status, &body, "free", 0);
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    assert_eq!(balance(&app, &p.owner).await, (10000, 0));
    assert!(rows_of(&app, &p.payer, "charge").await.is_empty());
    assert!(rows_of(&app, &p.owner, "earning").await.is_empty());
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn agent_error_is_502_failed_and_refunded() {
    let app = spawn_app().await;
    let p = pair(&app, 5).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let ((status, body), ()) = tokio::join!(
        async {
            mcp_call(
                &app,
                &p.caller_key,
                &echo_call(&p.target, "boom", Some("rid-err")),
            )
            .await
        },
        async {
            let call = agent.next_call().await;
            assert_echo_request(&call, "boom");
            agent.answer_error(&call, "Something went wrong");
        }
    );
    assert_refunded(status, &body, StatusCode::BAD_GATEWAY, "failed");
    assert_eq!(body["requestId"], json!("rid-err"));
    assert_eq!(
        body["error"]["message"],
        json!("Something went wrong"),
        "{body}"
    );
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    assert_eq!(balance(&app, &p.owner).await, (10000, 0));
    assert!(rows_of(&app, &p.payer, "charge").await.is_empty());
    assert!(rows_of(&app, &p.owner, "earning").await.is_empty());
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn unanswered_call_times_out_504_and_refunds() {
    let app = spawn_app_with(|s| s.call_timeout_secs = 2).await;
    let p = pair(&app, 5).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let ((status, body), ()) = tokio::join!(
        async {
            mcp_call(
                &app,
                &p.caller_key,
                &echo_call(&p.target, "slow", Some("rid-slow")),
            )
            .await
        },
        async {
            let call = agent.next_call().await;
            assert_echo_request(&call, "slow");
            // Never answered.
        }
    );
    assert_refunded(status, &body, StatusCode::GATEWAY_TIMEOUT, "timeout");
    assert_eq!(body["requestId"], json!("rid-slow"));
    let duration = body["durationMs"].as_u64().expect("durationMs");
    assert!(
        (1900..10_000).contains(&duration),
        "durationMs {duration} for a 2 s deadline"
    );
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    assert_eq!(balance(&app, &p.owner).await, (10000, 0));
    assert!(rows_of(&app, &p.payer, "charge").await.is_empty());

    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn late_answer_to_a_timed_out_call_settles_nothing() {
    let app = spawn_app_with(|s| s.call_timeout_secs = 1).await;
    let p = pair(&app, 5).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let ((status, body), call) = tokio::join!(
        async { mcp_call(&app, &p.caller_key, &echo_call(&p.target, "late", None)).await },
        agent.next_call()
    );
    assert_refunded(status, &body, StatusCode::GATEWAY_TIMEOUT, "timeout");
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    agent.answer_echo(&call);
    // A marker call on the same socket: the hub has read the late answer before the marker's.
    // (Whether it answers the late one with an error frame is not part of the contract.)
    let ((status, marker), ()) = tokio::join!(
        async { mcp_call(&app, &p.caller_key, &echo_call(&p.target, "marker", None)).await },
        async {
            loop {
                let frame = agent.next_frame().await;
                if frame["type"] == json!("error") {
                    continue;
                }
                assert_echo_request(&frame, "marker");
                agent.answer_echo(&frame);
                break;
            }
        }
    );
    assert_completed(status, &marker, "marker", 5);
    assert_eq!(balance(&app, &p.payer).await, (9995, 0));
    assert_eq!(balance(&app, &p.owner).await, (10005, 0));
    assert_eq!(rows_of(&app, &p.owner, "earning").await.len(), 1);
    assert_eq!(rows_of(&app, &p.payer, "charge").await.len(), 1);
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn agent_disconnecting_mid_call_is_502_and_refunded() {
    let app = spawn_app().await;
    let p = pair(&app, 5).await;
    let agent = MockAgent::connect(&app, &p.target_key).await;
    let (app_ref, payer) = (&app, &p.payer);
    let ((status, body), ()) = tokio::join!(
        async {
            mcp_call(
                &app,
                &p.caller_key,
                &echo_call(&p.target, "bye", Some("rid-bye")),
            )
            .await
        },
        async move {
            let mut agent = agent;
            let call = agent.next_call().await;
            assert_echo_request(&call, "bye");
            assert_eq!(
                balance(app_ref, payer).await,
                (9995, 5),
                "reserved while running"
            );
            agent.disconnect().await;
        }
    );
    assert_refunded(status, &body, StatusCode::BAD_GATEWAY, "failed");
    assert_eq!(body["requestId"], json!("rid-bye"));
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    assert_eq!(balance(&app, &p.owner).await, (10000, 0));
    assert!(rows_of(&app, &p.payer, "charge").await.is_empty());
    assert!(rows_of(&app, &p.owner, "earning").await.is_empty());
    wait_online(&app, &p.target, None, false).await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn offline_agent_is_503_agent_offline_nothing_charged() {
    let app = spawn_app().await;
    let p = pair(&app, 5).await;
    let (status, body) = mcp_call(&app, &p.caller_key, &echo_call(&p.target, "x", None)).await;
    assert_coded(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "AGENT_OFFLINE",
    );
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    assert!(rows_of(&app, &p.payer, "charge").await.is_empty());

    // Connected then gone: offline again.
    let agent = MockAgent::connect(&app, &p.target_key).await;
    agent.disconnect().await;
    wait_online(&app, &p.target, None, false).await;
    let (status, body) = mcp_call(&app, &p.caller_key, &echo_call(&p.target, "x", None)).await;
    assert_coded(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "AGENT_OFFLINE",
    );
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn price_over_max_cost_is_400_then_a_retry_with_more_works() {
    let app = spawn_app().await;
    let p = pair(&app, 50).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let mut body = echo_call(&p.target, "pricey", Some("rid-max"));
    body["maxCost"] = json!(10);
    let (status, resp) = mcp_call(&app, &p.caller_key, &body).await;
    assert_coded(status, &resp, StatusCode::BAD_REQUEST, "PRICE_EXCEEDS_MAX");
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    assert!(rows_of(&app, &p.payer, "charge").await.is_empty());

    body["maxCost"] = json!(50);
    let (status, resp) = echo_roundtrip(&app, &mut agent, &p.caller_key, &body).await;
    assert_completed(status, &resp, "pricey", 50);
    assert_eq!(resp["requestId"], json!("rid-max"));
    assert_eq!(balance(&app, &p.payer).await, (9950, 0));
    assert_eq!(balance(&app, &p.owner).await, (10050, 0));
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn price_over_balance_is_402_and_the_agent_sees_nothing() {
    let app = spawn_app().await;
    let p = pair(&app, 20000).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let (status, body) = mcp_call(
        &app,
        &p.caller_key,
        &echo_call(&p.target, "rich", Some("rid-poor")),
    )
    .await;
    assert_coded(
        status,
        &body,
        StatusCode::PAYMENT_REQUIRED,
        "INSUFFICIENT_TOKENS",
    );
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    assert!(rows_of(&app, &p.payer, "charge").await.is_empty());

    // The first thing the agent sees is the owner's test call, not the refused call.
    let ((status, body), ()) = tokio::join!(
        async {
            app.post_json(
                &format!("/api/v1/agents/{}/test-call", p.target),
                &json!({ "toolName": "echo", "arguments": { "message": "marker" } }),
                Some(&p.owner),
            )
            .await
        },
        async {
            let call = agent.next_call().await;
            assert_echo_request(&call, "marker");
            agent.answer_echo(&call);
        }
    );
    assert_completed(status, &body, "marker", 0);
    assert_eq!(balance(&app, &p.owner).await, (10000, 0));
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn inactive_agent_is_503_agent_unavailable() {
    let app = spawn_app().await;
    let p = pair(&app, 5).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    wait_online(&app, &p.target, None, true).await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/agents/{}/status", p.target),
            &json!({ "status": "inactive" }),
            Some(&p.owner),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = mcp_call(&app, &p.caller_key, &echo_call(&p.target, "x", None)).await;
    assert_coded(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "AGENT_UNAVAILABLE",
    );
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));

    let (status, body) = app
        .patch(
            &format!("/api/v1/agents/{}/status", p.target),
            &json!({ "status": "active" }),
            Some(&p.owner),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    expect_next_call_is(&app, &mut agent, &p.caller_key, &p.target, "active again").await;
    assert_eq!(balance(&app, &p.payer).await, (9995, 0));
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn private_agent_is_callable_by_its_owner_only() {
    let app = spawn_app().await;
    let (alice, _) = app.register_user("alice").await;
    let (bob, _) = app.register_user("bob").await;
    let (private_id, private_key) =
        ws_agent_with(&app, &alice, "alice-private", 3, "private").await;
    let (_, alice_caller) = ws_agent(&app, &alice, "alice-caller", 0).await;
    let (_, bob_caller) = ws_agent(&app, &bob, "bob-caller", 0).await;
    let mut agent = MockAgent::connect(&app, &private_key).await;
    wait_online(&app, &private_id, Some(&alice), true).await;

    let (status, body) = echo_roundtrip(
        &app,
        &mut agent,
        &alice_caller,
        &echo_call(&private_id, "mine", None),
    )
    .await;
    assert_completed(status, &body, "mine", 3);
    // Alice pays herself: net zero.
    assert_eq!(balance(&app, &alice).await, (10000, 0));

    let (status, body) = mcp_call(&app, &bob_caller, &echo_call(&private_id, "theirs", None)).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(balance(&app, &bob).await, (10000, 0));
    let (status, body) = app
        .get(&format!("/api/v1/agents/{private_id}/tools"), Some(&bob))
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    // Nothing reached the agent for Bob.
    expect_next_call_is(&app, &mut agent, &alice_caller, &private_id, "marker").await;
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn call_validation_and_unknown_targets() {
    let app = spawn_app().await;
    let p = pair(&app, 5).await;
    let (status, body) = mcp_call(
        &app,
        &p.caller_key,
        &json!({ "toolName": "echo", "arguments": {} }),
    )
    .await;
    assert_validation(status, &body, "targetAgentId");
    let (status, body) = mcp_call(
        &app,
        &p.caller_key,
        &json!({ "targetAgentId": p.target, "arguments": {} }),
    )
    .await;
    assert_validation(status, &body, "toolName");
    let (status, body) = mcp_call(&app, &p.caller_key, &json!({})).await;
    assert_validation(status, &body, "targetAgentId");
    assert_validation(status, &body, "toolName");

    for target in [
        "00000000-0000-0000-0000-000000000000",
        &uuid::Uuid::new_v4().to_string(),
        "not-a-uuid",
    ] {
        let (status, body) = mcp_call(&app, &p.caller_key, &echo_call(target, "x", None)).await;
        assert_status_error(status, &body, StatusCode::NOT_FOUND);
    }
    // A JWT or nothing is not an API key.
    let (status, body) = mcp_call(&app, &p.payer, &echo_call(&p.target, "x", None)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post_json("/api/v1/mcp/call", &echo_call(&p.target, "x", None), None)
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn same_request_id_while_running_waits_for_the_one_call() {
    let app = spawn_app().await;
    let p = pair(&app, 7).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let body = echo_call(&p.target, "once", Some("rid-dup"));
    let (first, second, ()) = tokio::join!(
        async { mcp_call(&app, &p.caller_key, &body).await },
        mcp_call(&app, &p.caller_key, &body),
        async {
            let call = agent.next_call().await;
            assert_echo_request(&call, "once");
            // Both requests are in flight now; exactly one reaches the agent.
            agent.expect_quiet(Duration::from_millis(500)).await;
            agent.answer_echo(&call);
        }
    );
    assert_completed(first.0, &first.1, "once", 7);
    assert_eq!(first.1["requestId"], json!("rid-dup"));
    assert_eq!(second.0, StatusCode::OK, "{}", second.1);
    assert_eq!(first.1, second.1, "both requests get the same body");
    assert_eq!(balance(&app, &p.payer).await, (9993, 0));
    assert_eq!(balance(&app, &p.owner).await, (10007, 0));
    assert_eq!(rows_of(&app, &p.payer, "charge").await.len(), 1);
    assert_eq!(rows_of(&app, &p.owner, "earning").await.len(), 1);
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn same_request_id_after_completion_replays_the_stored_answer() {
    let app = spawn_app().await;
    let p = pair(&app, 7).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let body = echo_call(&p.target, "stored", Some("rid-done"));
    let (status, first) = echo_roundtrip(&app, &mut agent, &p.caller_key, &body).await;
    assert_completed(status, &first, "stored", 7);

    for _ in 0..2 {
        let (status, again) = mcp_call(&app, &p.caller_key, &body).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again, first, "the stored answer, same transactionId");
    }
    assert_eq!(balance(&app, &p.payer).await, (9993, 0));
    assert_eq!(balance(&app, &p.owner).await, (10007, 0));
    let charges = rows_of(&app, &p.payer, "charge").await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    // The replays never reached the agent.
    expect_next_call_is(&app, &mut agent, &p.caller_key, &p.target, "marker").await;
    assert_eq!(balance(&app, &p.payer).await, (9986, 0));
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn same_request_id_after_a_failure_is_a_new_attempt_charged_once() {
    let app = spawn_app().await;
    let p = pair(&app, 7).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let body = echo_call(&p.target, "retry", Some("rid-retry"));
    let ((status, failed), ()) = tokio::join!(
        async { mcp_call(&app, &p.caller_key, &body).await },
        async {
            let call = agent.next_call().await;
            assert_echo_request(&call, "retry");
            agent.answer_error(&call, "Something went wrong");
        }
    );
    assert_refunded(status, &failed, StatusCode::BAD_GATEWAY, "failed");
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));

    let (status, done) = echo_roundtrip(&app, &mut agent, &p.caller_key, &body).await;
    assert_completed(status, &done, "retry", 7);
    assert_eq!(done["requestId"], json!("rid-retry"));
    assert_eq!(balance(&app, &p.payer).await, (9993, 0));

    // A third try replays the success.
    let (status, again) = mcp_call(&app, &p.caller_key, &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, done);
    assert_eq!(balance(&app, &p.payer).await, (9993, 0));
    assert_eq!(balance(&app, &p.owner).await, (10007, 0));
    assert_eq!(rows_of(&app, &p.payer, "charge").await.len(), 1);
    assert_eq!(rows_of(&app, &p.owner, "earning").await.len(), 1);
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn same_request_id_with_other_arguments_tool_or_target_is_409() {
    let app = spawn_app().await;
    let p = pair(&app, 7).await;
    let (other_target, _) = ws_agent(&app, &p.owner, "other-target", 7).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let body = echo_call(&p.target, "original", Some("rid-conflict"));
    let (status, first) = echo_roundtrip(&app, &mut agent, &p.caller_key, &body).await;
    assert_completed(status, &first, "original", 7);

    let mut other_args = body.clone();
    other_args["arguments"] = json!({ "message": "changed" });
    let mut other_tool = body.clone();
    other_tool["toolName"] = json!("upper");
    let mut other_target_body = body.clone();
    other_target_body["targetAgentId"] = json!(other_target);
    for changed in [other_args, other_tool, other_target_body] {
        let (status, resp) = mcp_call(&app, &p.caller_key, &changed).await;
        assert_coded(status, &resp, StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT");
    }
    // A higher maxCost is not a conflict.
    let mut more = body.clone();
    more["maxCost"] = json!(100);
    let (status, again) = mcp_call(&app, &p.caller_key, &more).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    assert_eq!(balance(&app, &p.payer).await, (9993, 0));
    expect_next_call_is(&app, &mut agent, &p.caller_key, &p.target, "marker").await;
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn caller_socket_runs_calls_and_reports_errors() {
    let app = spawn_app().await;
    let p = pair(&app, 2).await;
    let (offline_target, _) = ws_agent(&app, &p.owner, "offline-target", 2).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let mut ws = ws_connect(app.port, "/api/v1/mcp/ws", &p.caller_key)
        .await
        .expect("caller socket");

    send_json(
        &mut ws,
        &json!({
            "type": "tool_call_request",
            "requestId": "c1",
            "payload": {
                "targetAgentId": p.target,
                "toolName": "echo",
                "arguments": { "message": "Hello!" },
                "maxCost": 100,
            },
        }),
    )
    .await;
    let call = agent.next_call().await;
    assert_echo_request(&call, "Hello!");
    agent.answer_echo(&call);
    let frame = next_json(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(frame["type"], json!("tool_call_response"), "{frame}");
    assert_eq!(frame["requestId"], json!("c1"), "{frame}");
    assert!(frame["timestamp"].is_string(), "{frame}");
    let payload = &frame["payload"];
    assert_completed(StatusCode::OK, payload, "Hello!", 2);
    assert_eq!(payload["requestId"], json!("c1"), "{frame}");
    assert_eq!(balance(&app, &p.payer).await, (9998, 0));
    assert_eq!(balance(&app, &p.owner).await, (10002, 0));

    // The same requestId over HTTP replays the stored body: one logical call per account.
    let (status, replay) = mcp_call(
        &app,
        &p.caller_key,
        &json!({ "targetAgentId": p.target, "toolName": "echo",
                 "arguments": { "message": "Hello!" }, "requestId": "c1" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(&replay, payload);

    send_json(
        &mut ws,
        &json!({
            "type": "tool_call_request",
            "requestId": "c2",
            "payload": {
                "targetAgentId": offline_target,
                "toolName": "echo",
                "arguments": { "message": "nobody" },
                "maxCost": 100,
            },
        }),
    )
    .await;
    let frame = next_json(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(frame["type"], json!("tool_call_response"), "{frame}");
    assert_eq!(frame["requestId"], json!("c2"), "{frame}");
    let error = &frame["payload"]["error"];
    assert_eq!(error["statusCode"], json!(503), "{frame}");
    assert_eq!(error["code"], json!("AGENT_OFFLINE"), "{frame}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{frame}"
    );

    send_json(
        &mut ws,
        &json!({
            "type": "tool_call_request",
            "requestId": "c3",
            "payload": {
                "targetAgentId": p.target,
                "toolName": "echo",
                "arguments": { "message": "too dear" },
                "maxCost": 1,
            },
        }),
    )
    .await;
    let frame = next_json(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(frame["requestId"], json!("c3"), "{frame}");
    assert_eq!(
        frame["payload"]["error"]["statusCode"],
        json!(400),
        "{frame}"
    );
    assert_eq!(
        frame["payload"]["error"]["code"],
        json!("PRICE_EXCEEDS_MAX"),
        "{frame}"
    );
    assert_eq!(balance(&app, &p.payer).await, (9998, 0));

    // A bad key cannot open the caller socket.
    let refused = ws_connect(
        app.port,
        "/api/v1/mcp/ws",
        &format!("amp_{}", "0".repeat(48)),
    )
    .await
    .err();
    assert_eq!(refused, Some(401));
    drop(ws);
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn caller_socket_carries_twenty_calls_in_flight_answered_in_reverse() {
    let app = spawn_app().await;
    let p = pair(&app, 1).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let mut ws = ws_connect(app.port, "/api/v1/mcp/ws", &p.caller_key)
        .await
        .expect("caller socket");
    for i in 0..20 {
        send_json(
            &mut ws,
            &json!({
                "type": "tool_call_request",
                "requestId": format!("r{i}"),
                "payload": {
                    "targetAgentId": p.target,
                    "toolName": "echo",
                    "arguments": { "message": format!("m{i}") },
                    "maxCost": 100,
                },
            }),
        )
        .await;
    }
    let mut calls = Vec::new();
    for _ in 0..20 {
        calls.push(agent.next_call().await);
    }
    let mut seen: Vec<String> = calls
        .iter()
        .map(|c| {
            c["payload"]["params"]["arguments"]["message"]
                .as_str()
                .expect("message")
                .to_string()
        })
        .collect();
    seen.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected, "the agent sees every call once");
    for call in calls.iter().rev() {
        agent.answer_echo(call);
    }
    let mut answers: HashMap<String, Value> = HashMap::new();
    for _ in 0..20 {
        let frame = next_json(&mut ws, Duration::from_secs(10)).await;
        assert_eq!(frame["type"], json!("tool_call_response"), "{frame}");
        let rid = frame["requestId"].as_str().expect("requestId").to_string();
        assert!(answers.insert(rid, frame).is_none(), "duplicate response");
    }
    for i in 0..20 {
        let frame = answers
            .get(&format!("r{i}"))
            .unwrap_or_else(|| panic!("no answer for r{i}"));
        assert_completed(StatusCode::OK, &frame["payload"], &format!("m{i}"), 1);
        assert_eq!(frame["payload"]["requestId"], json!(format!("r{i}")));
    }
    assert_eq!(balance(&app, &p.payer).await, (9980, 0));
    assert_eq!(balance(&app, &p.owner).await, (10020, 0));
    assert_eq!(rows_of(&app, &p.payer, "charge").await.len(), 20);
    drop(ws);
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn test_call_by_the_owner_is_free_others_are_refused() {
    let app = spawn_app().await;
    let p = pair(&app, 9).await;
    let mut agent = MockAgent::connect(&app, &p.target_key).await;
    let path = format!("/api/v1/agents/{}/test-call", p.target);
    let args = json!({ "toolName": "echo", "arguments": { "message": "try me" } });

    let ((status, body), ()) = tokio::join!(
        async { app.post_json(&path, &args, Some(&p.owner)).await },
        async {
            let call = agent.next_call().await;
            assert_echo_request(&call, "try me");
            agent.answer_echo(&call);
        }
    );
    assert_completed(status, &body, "try me", 0);
    assert_eq!(body["billing"]["tokensCharged"], json!(0));
    assert_eq!(balance(&app, &p.owner).await, (10000, 0));
    assert_eq!(balance(&app, &p.payer).await, (10000, 0));
    assert!(rows_of(&app, &p.owner, "charge").await.is_empty());
    assert!(rows_of(&app, &p.owner, "earning").await.is_empty());

    let (status, body) = app.post_json(&path, &args, None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.post_json(&path, &args, Some(&p.payer)).await;
    assert_status_error(status, &body, StatusCode::FORBIDDEN);
    // Neither refused test call reached the agent.
    expect_next_call_is(&app, &mut agent, &p.caller_key, &p.target, "marker").await;
    assert_eq!(balance(&app, &p.payer).await, (9991, 0));
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn two_hundred_concurrent_paid_calls_balance_exactly() {
    let app = spawn_app().await;
    let prices = [1i64, 2, 3, 5];
    let mut tokens = Vec::new();
    let mut targets = Vec::new();
    let mut callers = Vec::new();
    let mut agents = Vec::new();
    for (i, price) in prices.iter().enumerate() {
        let (token, _) = app.register_user(&format!("user{i}")).await;
        let (target, target_key) = ws_agent(&app, &token, &format!("paid-{i}"), *price).await;
        let (_, caller_key) = ws_agent(&app, &token, &format!("caller-{i}"), 0).await;
        agents.push(
            MockAgent::connect_opts(
                &app,
                &target_key,
                AgentOpts {
                    auto_echo: true,
                    ..AgentOpts::default()
                },
            )
            .await,
        );
        tokens.push(token);
        targets.push(target);
        callers.push(caller_key);
    }
    let mut expected = [10_000i64; 4];
    let mut plan = Vec::new();
    for k in 0..200usize {
        let from = k % 4;
        let to = (k / 4 + k) % 4;
        expected[from] -= prices[to];
        expected[to] += prices[to];
        plan.push((k, from, to));
    }
    let futures = plan.iter().map(|&(k, from, to)| {
        let body = echo_call(&targets[to], &format!("n{k}"), Some(&format!("bulk-{k}")));
        let key = callers[from].clone();
        let app = &app;
        async move { (k, to, mcp_call(app, &key, &body).await) }
    });
    let results = futures_util::future::join_all(futures).await;
    for (k, to, (status, body)) in results {
        assert_completed(status, &body, &format!("n{k}"), prices[to]);
        assert_eq!(body["requestId"], json!(format!("bulk-{k}")));
    }
    let mut total = 0;
    for (i, token) in tokens.iter().enumerate() {
        let (bal, reserved) = balance(&app, token).await;
        assert_eq!((bal, reserved), (expected[i], 0), "user{i}");
        total += bal + reserved;
    }
    assert_eq!(total, 40_000);
    let report = app.ledger_report().await;
    assert_eq!(report.granted, 40_000);
    assert_eq!(report.user_balances, 40_000);
    assert_eq!(report.user_reserved, 0);
    for agent in agents {
        agent.disconnect().await;
    }
    app.assert_ledger_balanced().await;
}
