//! What tokens cost: the built-in price table (`data/prices.yaml`, with the date and sources of
//! its figures) under the config's `prices:`, and the cost of a usage in exact integer units.

use crate::config::PriceConfig;
use crate::usage::TokenUsage;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

/// Money in the smallest unit the router counts: a millionth of a millionth of a US dollar.
/// A price per million tokens with up to six decimals is a whole number of these per token,
/// so every cost is exact and sums never drift.
pub type Picodollars = u64;

/// Picodollars in a dollar.
pub const PICODOLLARS_PER_USD: u64 = 1_000_000_000_000;

/// The built-in table as the file holds it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    date: String,
    sources: Vec<String>,
    models: BTreeMap<String, PriceConfig>,
}

static BUILT_IN: LazyLock<Table> = LazyLock::new(|| {
    // The file is part of the crate and checked by a test: it always parses.
    serde_yaml::from_str(include_str!("../../data/prices.yaml")).unwrap_or_else(|_| Table {
        date: String::new(),
        sources: Vec::new(),
        models: BTreeMap::new(),
    })
});

/// The date of the built-in table's figures, and where they come from.
pub fn built_in_source() -> (&'static str, &'static [String]) {
    (&BUILT_IN.date, &BUILT_IN.sources)
}

/// One model's prices, per token, in picodollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    /// A prompt token not read from or written to a cache.
    pub input: Picodollars,
    /// A completion token.
    pub output: Picodollars,
    /// A prompt token read from the provider's cache.
    pub cache_read: Picodollars,
    /// A prompt token written to the provider's cache.
    pub cache_write: Picodollars,
}

/// Dollars per million tokens as picodollars per token (exact to six decimals).
fn per_token(usd_per_million: f64) -> Picodollars {
    // Checked at load: finite and not negative.
    (usd_per_million * 1_000_000.0).round() as Picodollars
}

impl Price {
    fn of(p: &PriceConfig) -> Self {
        Self {
            input: per_token(p.input),
            output: per_token(p.output),
            cache_read: per_token(p.cache_read.unwrap_or(p.input)),
            cache_write: per_token(p.cache_write.unwrap_or(p.input)),
        }
    }

    /// What `usage` costs: cache reads and writes at their own prices, the rest of the prompt
    /// at the input price, the completion at the output price.
    pub fn cost(&self, usage: &TokenUsage) -> Picodollars {
        let cached = usage
            .cache_read_tokens
            .saturating_add(usage.cache_write_tokens);
        let plain = usage.prompt_tokens.saturating_sub(cached);
        let terms = [
            (plain, self.input),
            (usage.cache_read_tokens, self.cache_read),
            (usage.cache_write_tokens, self.cache_write),
            (usage.completion_tokens, self.output),
        ];
        terms.iter().fold(0u64, |sum, (tokens, price)| {
            sum.saturating_add(tokens.saturating_mul(*price))
        })
    }
}

/// Prices by model: the config's entries over the built-in table.
#[derive(Debug, Default)]
pub struct Prices {
    /// The config's `prices:`, by the key as written (`model`, or `provider/model`).
    configured: HashMap<String, Price>,
    /// The same entries by provider, then model (each key split at its first `/`), so a
    /// lookup on the request path builds no string.
    by_provider: HashMap<String, HashMap<String, Price>>,
}

impl Prices {
    /// The table with the config's `prices:` over the built-in one. Entries with a price that
    /// is negative or not a number are reported in `problems` as (key, message).
    pub(crate) fn new(
        configured: &BTreeMap<String, PriceConfig>,
        problems: &mut Vec<(String, String)>,
    ) -> Self {
        let mut out = HashMap::new();
        for (name, p) in configured {
            let figures = [Some(p.input), Some(p.output), p.cache_read, p.cache_write];
            if figures
                .into_iter()
                .flatten()
                .any(|f| !f.is_finite() || f < 0.0)
            {
                problems.push((
                    format!("prices.{name}"),
                    "a price is a number of dollars per million tokens, 0 or more".into(),
                ));
                continue;
            }
            out.insert(name.clone(), Price::of(p));
        }
        let mut by_provider: HashMap<String, HashMap<String, Price>> = HashMap::new();
        for (name, price) in &out {
            if let Some((provider, model)) = name.split_once('/') {
                let models = by_provider.entry(provider.to_string()).or_default();
                models.insert(model.to_string(), *price);
            }
        }
        Self {
            configured: out,
            by_provider,
        }
    }

    /// The price of `model` on `provider`: the config's `provider/model`, its `model`, else
    /// the built-in table's `model`. `None` for a model without a price (it costs 0).
    pub fn get(&self, provider: &str, model: &str) -> Option<Price> {
        (self.by_provider.get(provider))
            .and_then(|models| models.get(model))
            .or_else(|| self.configured.get(model))
            .copied()
            .or_else(|| BUILT_IN.models.get(model).map(Price::of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_table_parses_and_names_its_sources() {
        let table: Table = serde_yaml::from_str(include_str!("../../data/prices.yaml")).unwrap();
        assert!(!table.models.is_empty());
        assert!(!table.sources.is_empty());
        assert_eq!(table.date.len(), 10, "date as YYYY-MM-DD");
        for (model, p) in &table.models {
            let figures = [Some(p.input), Some(p.output), p.cache_read, p.cache_write];
            assert!(
                figures
                    .into_iter()
                    .flatten()
                    .all(|f| f.is_finite() && f >= 0.0),
                "{model}"
            );
        }
    }

    #[test]
    fn cache_tokens_are_priced_apart_and_costs_are_exact() {
        let mut problems = Vec::new();
        let config: BTreeMap<String, PriceConfig> = serde_yaml::from_str(
            "m: {input: 2.5, output: 10, cache_read: 1.25, cache_write: 3.125}\n\
             p/m: {input: 0.0375, output: 0.15}\n",
        )
        .unwrap();
        let prices = Prices::new(&config, &mut problems);
        assert!(problems.is_empty());
        let usage = TokenUsage {
            prompt_tokens: 1_000,
            completion_tokens: 100,
            total_tokens: 1_100,
            cache_read_tokens: 600,
            cache_write_tokens: 100,
        };
        // 300 plain × 2.5 + 600 × 1.25 + 100 × 3.125 + 100 × 10, per million, in picodollars.
        let m = prices.get("other", "m").unwrap();
        assert_eq!(
            m.cost(&usage),
            (300 * 2_500_000) + (600 * 1_250_000) + (100 * 3_125_000) + (100 * 10_000_000)
        );
        // A provider's own entry wins; cache prices default to the input price.
        let pm = prices.get("p", "m").unwrap();
        assert_eq!(pm.cost(&usage), 1_000 * 37_500 + 100 * 150_000);
        assert_eq!(prices.get("p", "no-such-model"), None);
    }

    #[test]
    fn a_negative_price_is_a_problem() {
        let config: BTreeMap<String, PriceConfig> =
            serde_yaml::from_str("m: {input: -1, output: 1}\n").unwrap();
        let mut problems = Vec::new();
        let prices = Prices::new(&config, &mut problems);
        assert_eq!(problems[0].0, "prices.m");
        assert_eq!(prices.configured.len(), 0);
    }
}
