//! `GET /api/v1/agents/{agentId}/reputation`: the cold start, then the score of the document's
//! five components after completed and failed calls and a review, computed independently here.

use reqwest::StatusCode;
use serde_json::json;

use crate::engine_ws::{
    MockAgent, assert_completed, assert_refunded, echo_call, mcp_call, ws_agent, ws_agent_with,
};
use crate::helpers::{assert_status_error, spawn_app};
use crate::reviews::{assert_close, caller_key, expected_score, expected_stars};

fn path(id: &str) -> String {
    format!("/api/v1/agents/{id}/reputation")
}

#[actix_web::test]
async fn new_agent_is_new_without_stars() {
    let app = spawn_app().await;
    let (owner, _) = app.register_user("owner").await;
    let (id, _) = ws_agent(&app, &owner, "brand-new", 5).await;
    let (status, body) = app.get(&path(&id), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "agentId": id,
            "score": 0.0,
            "stars": null,
            "isNew": true,
            "reviewCount": 0,
            "successRate": 0.0,
            "uptimeRatio": body["uptimeRatio"],
            "avgLatencyMs": null,
            "components": {
                "successRate": 0.0,
                "callVolume": 0.0,
                "earnings": 0.0,
                "uptime": body["components"]["uptime"],
                "reviews": 0.0,
            },
            "totalCalls": 0,
            "completedCalls": 0,
        })
    );
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn score_follows_calls_and_reviews() {
    let app = spawn_app().await;
    let (owner, _) = app.register_user("owner").await;
    let (payer, _) = app.register_user("payer").await;
    let key = caller_key(&app, &payer, "payer-caller").await;
    let price = 250;
    let (id, agent_key) = ws_agent(&app, &owner, "rated-agent", price).await;
    let mut agent = MockAgent::connect(&app, &agent_key).await;

    // Three completed calls and one the agent fails.
    for i in 0..4 {
        let message = format!("m{i}");
        let call_body = echo_call(&id, &message, None);
        let ((status, body), ()) = tokio::join!(mcp_call(&app, &key, &call_body), async {
            let call = agent.next_call().await;
            if i == 2 {
                agent.answer_error(&call, "nope");
            } else {
                agent.answer_echo(&call);
            }
        });
        if i == 2 {
            assert_refunded(status, &body, StatusCode::BAD_GATEWAY, "failed");
        } else {
            assert_completed(status, &body, &message, price);
        }
    }
    let (status, body) = app
        .post_json(
            &format!("/api/v1/agents/{id}/reviews"),
            &json!({ "rating": 4 }),
            Some(&payer),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, rep) = app.get(&path(&id), None).await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    let uptime = rep["uptimeRatio"].as_f64().expect("uptimeRatio");
    assert!((0.0..=1.0).contains(&uptime));
    let score = expected_score(4, 3, 3 * price, uptime, &[4]);
    assert_eq!(rep["agentId"], json!(id));
    assert_eq!(rep["isNew"], json!(false));
    assert_eq!(rep["reviewCount"], json!(1));
    assert_eq!(rep["totalCalls"], json!(4));
    assert_eq!(rep["completedCalls"], json!(3));
    assert_close(&rep["successRate"], 0.75, "successRate");
    assert_close(&rep["score"], score, "score");
    assert_close(&rep["stars"], expected_stars(score), "stars");
    assert!(rep["avgLatencyMs"].is_i64(), "avgLatencyMs in {rep}");
    let c = &rep["components"];
    assert_close(&c["successRate"], 22.5, "components.successRate");
    assert_close(&c["callVolume"], 0.45, "components.callVolume");
    assert_close(&c["earnings"], 0.15, "components.earnings");
    assert_close(
        &c["uptime"],
        ((uptime * 15.0) * 100.0).round() / 100.0,
        "uptime",
    );
    assert_close(&c["reviews"], 24.0, "components.reviews");

    // The detail's cache and discovery's minReputation agree with it.
    let (_, detail) = app.get(&format!("/api/v1/agents/{id}"), None).await;
    assert_eq!(detail["reputationCache"]["score"], rep["score"]);
    assert_eq!(detail["reputationCache"]["stars"], rep["stars"]);
    let (_, found) = app
        .get(
            &format!("/api/v1/agents?minReputation={}", score - 0.1),
            None,
        )
        .await;
    assert_eq!(found["total"], json!(1), "{found}");
    let (_, found) = app
        .get(
            &format!("/api/v1/agents?minReputation={}", score + 0.1),
            None,
        )
        .await;
    assert_eq!(found["total"], json!(0), "{found}");

    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn private_agent_reputation_is_404_to_others() {
    let app = spawn_app().await;
    let (owner, _) = app.register_user("owner").await;
    let (stranger, _) = app.register_user("stranger").await;
    let (id, _) = ws_agent_with(&app, &owner, "secret", 0, "private").await;
    for token in [None, Some(stranger.as_str())] {
        let (status, body) = app.get(&path(&id), token).await;
        assert_status_error(status, &body, StatusCode::NOT_FOUND);
    }
    let (status, body) = app.get(&path(&id), Some(&owner)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["isNew"], json!(true));
    let (status, body) = app
        .get(&path(&uuid::Uuid::new_v4().to_string()), None)
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    app.assert_ledger_balanced().await;
}
