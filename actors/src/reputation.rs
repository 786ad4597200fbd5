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

/// The score, rounded to one decimal.
pub fn score(i: &Inputs) -> f64 {
    let success = ratio(i.completed_calls, i.total_calls) * 30.0;
    let volume = (i.completed_calls as f64 / 100.0).min(1.0) * 15.0;
    let earnings = (i.tokens_earned as f64 / 50_000.0).min(1.0) * 10.0;
    let uptime = ratio(i.checks_healthy, i.checks_total) * 15.0;
    let reviews = if i.review_count > 0 {
        (i.rating_sum as f64 / i.review_count as f64 / 5.0).min(1.0) * 30.0
    } else {
        0.0
    };
    ((success + volume + earnings + uptime + reviews) * 10.0).round() / 10.0
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
