//! The reputation score (0–100) of the marketplace document, from five components:
//! success rate (30), call volume (15), earnings (10), uptime (15) and reviews (30).
//! Stars are half steps: `round(score / 10) / 2`. An agent with no settled call and no review
//! is "New": `isNew: true`, `stars: null`.

use entities::agents;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReputationCache {
    pub score: f64,
    pub stars: Option<f64>,
    pub review_count: i64,
    pub success_rate: f64,
    pub uptime_ratio: f64,
    pub avg_latency_ms: Option<i64>,
    pub is_new: bool,
}

/// The inputs of the formula, as counted for one agent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Inputs {
    pub total_calls: i64,
    pub completed_calls: i64,
    pub tokens_earned: i64,
    pub checks_total: i64,
    pub checks_healthy: i64,
    pub review_count: i64,
    pub rating_sum: i64,
}

impl Inputs {
    pub fn of(agent: &agents::Model) -> Self {
        Self {
            total_calls: agent.total_calls,
            completed_calls: agent.completed_calls,
            tokens_earned: agent.tokens_earned,
            checks_total: agent.checks_total,
            checks_healthy: agent.checks_healthy,
            review_count: agent.review_count,
            rating_sum: agent.rating_sum,
        }
    }

    pub fn is_new(&self) -> bool {
        self.total_calls == 0 && self.review_count == 0
    }
}

fn ratio(num: i64, den: i64) -> f64 {
    if den <= 0 {
        0.0
    } else {
        (num as f64 / den as f64).clamp(0.0, 1.0)
    }
}

/// The points of each of the five components (unrounded).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Components {
    /// `(completed / total_calls) × 30`
    pub success_rate: f64,
    /// `min(completed_calls / 100, 1) × 15`
    pub call_volume: f64,
    /// `min(total_tokens / 50000, 1) × 10`
    pub earnings: f64,
    /// `(healthy_checks / total_checks) × 15`
    pub uptime: f64,
    /// `(avg_rating / 5) × 30`
    pub reviews: f64,
}

impl Components {
    pub fn total(&self) -> f64 {
        self.success_rate + self.call_volume + self.earnings + self.uptime + self.reviews
    }

    /// Each component rounded to two decimals, for display.
    pub fn rounded(&self) -> Self {
        let r = |v: f64| (v * 100.0).round() / 100.0;
        Self {
            success_rate: r(self.success_rate),
            call_volume: r(self.call_volume),
            earnings: r(self.earnings),
            uptime: r(self.uptime),
            reviews: r(self.reviews),
        }
    }
}

/// The points each component contributes to the score.
pub fn components(i: &Inputs) -> Components {
    Components {
        success_rate: ratio(i.completed_calls, i.total_calls) * 30.0,
        call_volume: (i.completed_calls as f64 / 100.0).clamp(0.0, 1.0) * 15.0,
        earnings: (i.tokens_earned as f64 / 50_000.0).clamp(0.0, 1.0) * 10.0,
        uptime: ratio(i.checks_healthy, i.checks_total) * 15.0,
        reviews: if i.review_count > 0 {
            (i.rating_sum as f64 / i.review_count as f64 / 5.0).clamp(0.0, 1.0) * 30.0
        } else {
            0.0
        },
    }
}

/// The score, rounded to one decimal.
pub fn score(i: &Inputs) -> f64 {
    (components(i).total() * 10.0).round() / 10.0
}

/// Stars in half steps from a score.
pub fn stars(score: f64) -> f64 {
    (score / 10.0).round() / 2.0
}

/// The score stored for sorting and filtering: `None` while the agent is New.
pub fn stored_score(i: &Inputs) -> Option<f64> {
    if i.is_new() { None } else { Some(score(i)) }
}

pub fn cache(agent: &agents::Model) -> ReputationCache {
    let i = Inputs::of(agent);
    let score = score(&i);
    ReputationCache {
        score,
        stars: if i.is_new() { None } else { Some(stars(score)) },
        review_count: i.review_count,
        success_rate: ratio(i.completed_calls, i.total_calls),
        uptime_ratio: ratio(i.checks_healthy, i.checks_total),
        avg_latency_ms: (agent.completed_calls > 0)
            .then(|| agent.total_latency_ms / agent.completed_calls),
        is_new: i.is_new(),
    }
}

/// `GET /agents/{agentId}/reputation`: the cache, the inputs and each component's points.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub agent_id: uuid::Uuid,
    pub score: f64,
    pub stars: Option<f64>,
    pub is_new: bool,
    pub review_count: i64,
    pub success_rate: f64,
    pub uptime_ratio: f64,
    pub avg_latency_ms: Option<i64>,
    pub components: Components,
    pub total_calls: i64,
    pub completed_calls: i64,
}

pub fn report(agent: &agents::Model) -> Report {
    let cache = cache(agent);
    Report {
        agent_id: agent.id,
        score: cache.score,
        stars: cache.stars,
        is_new: cache.is_new,
        review_count: cache.review_count,
        success_rate: cache.success_rate,
        uptime_ratio: cache.uptime_ratio,
        avg_latency_ms: cache.avg_latency_ms,
        components: components(&Inputs::of(agent)).rounded(),
        total_calls: agent.total_calls,
        completed_calls: agent.completed_calls,
    }
}

/// The reputation of an agent as `viewer` may see it (private agents are 404 to others).
pub async fn of_agent(
    hub: &crate::Hub,
    agent_id: &str,
    viewer: Option<uuid::Uuid>,
) -> crate::HubResult<Report> {
    let agent = crate::catalog::find_visible(hub, agent_id, viewer).await?;
    Ok(report(&agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_agent_scores_100_and_five_stars() {
        let i = Inputs {
            total_calls: 100,
            completed_calls: 100,
            tokens_earned: 50_000,
            checks_total: 10,
            checks_healthy: 10,
            review_count: 2,
            rating_sum: 10,
        };
        assert_eq!(score(&i), 100.0);
        assert_eq!(stars(score(&i)), 5.0);
    }

    #[test]
    fn stars_are_half_steps() {
        assert_eq!(stars(0.0), 0.0);
        assert_eq!(stars(14.0), 0.5);
        assert_eq!(stars(15.0), 1.0);
        assert_eq!(stars(74.9), 3.5);
        assert_eq!(stars(75.0), 4.0);
    }

    #[test]
    fn new_agent_has_no_stored_score() {
        assert_eq!(stored_score(&Inputs::default()), None);
    }
}
